//! An accepted message: the `250 2.6.0 ... Queued mail for delivery` reply, and what Exchange
//! does with the cross-premises headers Exchange Online sends (`X-MS-Exchange-CrossPremises-*`):
//! with a capability that trusts the session (`AcceptCloudServicesMail`, `AcceptOorgProtocol`)
//! they are promoted to organisation headers (`X-MS-Exchange-Organization-*`) and the message
//! counts as internal; without it the header firewall removes them and any organisation header,
//! and the message arrives anonymous (`X-MS-Exchange-Organization-AuthAs: Anonymous`).

use std::sync::Arc;

use hybridlab_model::reply::Reply;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{ClientCertificateFacts, ReceiveSession};
use crate::connector::Capability;
use crate::server::mix;

const CROSS: &str = "X-MS-Exchange-CrossPremises-";
const ORG: &str = "X-MS-Exchange-Organization-";

/// How the message body came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transfer {
    /// DATA.
    Data,
    /// BDAT chunks.
    Bdat,
}

/// What became of the cross-premises headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrossPremises {
    /// Promoted to organisation headers: the message is internal.
    Honoured,
    /// Removed by the header firewall: the message is anonymous/external.
    Dropped,
    /// The message carried none (and the session earned no capability).
    Absent,
}

/// One accepted message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedMessage {
    /// The server that accepted it.
    pub server: String,
    /// `SERVER\Connector`.
    pub connector_id: String,
    /// The RECV-log session id.
    pub session_id: String,
    /// Exchange's internal id (as in the 250 reply).
    pub internal_id: u64,
    /// The `Message-ID` (angle brackets kept), or one made up.
    pub message_id: String,
    /// When the 250 was sent.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// The client address the server saw.
    pub peer: std::net::SocketAddr,
    /// The EHLO name.
    pub helo: Option<String>,
    /// MAIL FROM.
    pub mail_from: String,
    /// The XOORG parameter of MAIL FROM (the sending organisation), when given.
    pub xoorg: Option<String>,
    /// RCPT TO, in order.
    pub rcpt_to: Vec<String>,
    /// Size in bytes.
    pub size: usize,
    /// DATA or BDAT.
    pub transfer: Transfer,
    /// TLS protocol (`TLSv1_2`), when the session was encrypted.
    pub tls_protocol: Option<String>,
    /// The client certificate, when one was sent.
    pub client_certificate: Option<ClientCertificateFacts>,
    /// Capabilities the session had.
    pub capabilities: Vec<Capability>,
    /// What became of the cross-premises headers.
    pub cross_premises: CrossPremises,
    /// `Internal` or `Anonymous`: how the organisation sees the sender.
    pub auth_as: String,
    /// Names of the headers promoted (`X-MS-Exchange-CrossPremises-AuthAs` ...).
    pub promoted_headers: Vec<String>,
    /// Names of the headers the header firewall removed.
    pub removed_headers: Vec<String>,
    /// The header section as stored after that processing, in order.
    pub headers: Vec<(String, String)>,
    /// The 250 reply.
    pub reply: Reply,
    /// The bytes as received.
    #[serde(skip)]
    pub raw: Arc<[u8]>,
}

impl ReceiveSession {
    /// The data is complete; `skip` leading bytes are the DATA primer.
    pub(super) fn finish_message(&mut self, skip: usize) {
        let Some(txn) = self.txn.take() else {
            return;
        };
        let raw: Arc<[u8]> = Arc::from(txn.body.get(skip..).unwrap_or_default());
        let size = raw.len();
        let tls = self.tls.as_ref();
        let capabilities = tls.map(|t| t.capabilities.clone()).unwrap_or_default();
        let trusted = capabilities.iter().any(|c| c.trusts_cross_premises());
        let received = parse_headers(&raw);
        let processed = process_headers(received, trusted);
        let internal_id = 10_000_000_000_000
            + mix(mix(self
                .session_id
                .bytes()
                .fold(0u64, |h, b| h.wrapping_mul(31) ^ u64::from(b)))
                ^ u64::from(self.message_count))
                % 90_000_000_000_000;
        let message_id = processed
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Message-ID"))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| format!("<{internal_id:016x}@{}>", self.server.fqdn));
        let secs = txn
            .data_started
            .map(|s| (self.cur - s).as_seconds_f64())
            .unwrap_or(0.0);
        let reply = queued(&message_id, internal_id, &self.server.fqdn, size, secs);
        let message = ReceivedMessage {
            server: self.server.name.clone(),
            connector_id: self.connector.connector.identity(),
            session_id: self.session_id.clone(),
            internal_id,
            message_id,
            received_at: self.cur,
            peer: self.peer,
            helo: self.helo.clone(),
            mail_from: txn.mail_from,
            xoorg: txn.xoorg,
            rcpt_to: txn.rcpts,
            size,
            transfer: txn.transfer.unwrap_or(Transfer::Data),
            tls_protocol: tls.map(|t| t.protocol.clone()),
            client_certificate: tls.and_then(|t| t.client_certificate.clone()),
            capabilities,
            cross_premises: processed.verdict,
            auth_as: processed.auth_as,
            promoted_headers: processed.promoted,
            removed_headers: processed.removed,
            headers: processed.headers,
            reply: reply.clone(),
            raw,
        };
        self.reply(reply);
        self.flush();
        self.messages.push(message.clone());
        self.actions
            .push_back(super::ReceiveAction::Message(Box::new(message)));
    }
}

/// `250 2.6.0 <id> [InternalId=<n>, Hostname=<fqdn>] <bytes> bytes in <secs>, <rate> KB/sec
/// Queued mail for delivery`.
fn queued(message_id: &str, internal_id: u64, host: &str, bytes: usize, secs: f64) -> Reply {
    let secs = secs.max(0.001);
    let rate = bytes as f64 / 1024.0 / secs;
    Reply::new(
        250,
        format!(
            "2.6.0 {message_id} [InternalId={internal_id}, Hostname={host}] {bytes} bytes in {secs:.3}, {rate:.3} KB/sec Queued mail for delivery"
        ),
    )
}

struct Processed {
    headers: Vec<(String, String)>,
    promoted: Vec<String>,
    removed: Vec<String>,
    verdict: CrossPremises,
    auth_as: String,
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Applies the cross-premises rules to the received header section.
fn process_headers(received: Vec<(String, String)>, trusted: bool) -> Processed {
    let mut headers = Vec::with_capacity(received.len() + 1);
    let mut promoted = Vec::new();
    let mut removed = Vec::new();
    let mut carried = false;
    for (name, value) in received {
        if starts_with_ci(&name, CROSS) {
            carried = true;
            if trusted {
                headers.push((format!("{ORG}{}", &name[CROSS.len()..]), value));
                promoted.push(name);
            } else {
                removed.push(name);
            }
        } else if starts_with_ci(&name, ORG) {
            // Organisation headers never come in from outside the organisation.
            removed.push(name);
        } else {
            headers.push((name, value));
        }
    }
    let auth_key = format!("{ORG}AuthAs");
    let auth_as = if trusted {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&auth_key))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "Internal".into())
    } else {
        headers.push((auth_key, "Anonymous".into()));
        "Anonymous".into()
    };
    let verdict = match (carried || trusted, trusted) {
        (_, true) => CrossPremises::Honoured,
        (true, false) => CrossPremises::Dropped,
        (false, false) => CrossPremises::Absent,
    };
    Processed {
        headers,
        promoted,
        removed,
        verdict,
        auth_as,
    }
}

/// The header section (unfolded), bounded to the first 256 KB (Exchange's MaxHeaderSize).
fn parse_headers(raw: &[u8]) -> Vec<(String, String)> {
    let limit = raw.len().min(256 * 1024);
    let text = String::from_utf8_lossy(&raw[..limit]);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((n, v)) = line.split_once(':') {
            out.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_premises_headers_are_promoted_or_dropped() {
        let raw = b"Message-ID: <a@b>\r\nX-MS-Exchange-CrossPremises-AuthAs: Internal\r\nX-MS-Exchange-Organization-SCL: -1\r\nSubject: hi\r\n there\r\n\r\nbody\r\n";
        let h = parse_headers(raw);
        assert_eq!(h[3], ("Subject".into(), "hi there".into()));
        let p = process_headers(h.clone(), true);
        assert_eq!(p.verdict, CrossPremises::Honoured);
        assert_eq!(p.auth_as, "Internal");
        assert!(
            p.headers
                .iter()
                .any(|(n, v)| n == "X-MS-Exchange-Organization-AuthAs" && v == "Internal")
        );
        assert_eq!(
            p.removed,
            vec!["X-MS-Exchange-Organization-SCL".to_string()]
        );
        let d = process_headers(h, false);
        assert_eq!(d.verdict, CrossPremises::Dropped);
        assert_eq!(d.auth_as, "Anonymous");
        assert_eq!(d.removed.len(), 2);
        let none = process_headers(vec![("Subject".into(), "x".into())], false);
        assert_eq!(none.verdict, CrossPremises::Absent);
    }
}
