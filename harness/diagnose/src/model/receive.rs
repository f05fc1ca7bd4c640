//! One receive session (the other direction: Exchange Online, or anyone, delivering to an
//! on-premises receive connector) with the indices of the events the inbound rules look at: the
//! EHLO reply this server sent and whether it offered STARTTLS, the client's STARTTLS, the
//! certificate this server presented and the one the client presented, the TLS outcome, the
//! `TlsDomainCapabilities` line, the 4xx/5xx replies it sent, the disconnect. In a receive log the
//! server's replies are `>` lines and the client's commands `<` lines (docs/formats.md).

use std::net::IpAddr;

use hybridlab_artefacts::protocol_log::{CertRole, ParsedSession, SessionEvent};
use hybridlab_model::exchange::SecurityStatus;
use hybridlab_model::x509::CertFacts;

use super::Ev;
use super::connectors::is_eop_ip;

/// Host names EXO's outbound servers give in EHLO (`EUR05-AM6-obe.outbound.protection.outlook.com`).
fn is_exo_helo(name: &str) -> bool {
    let n = name.trim().trim_end_matches('.').to_ascii_lowercase();
    n.ends_with(".outbound.protection.outlook.com") || n.ends_with(".protection.outlook.com")
}

/// One receive session, with the indices of its telling events.
#[derive(Debug, Clone)]
#[allow(dead_code)] // the inbound rules (issue 11, rules side) read these
pub(crate) struct ReceiveSessionView<'a> {
    pub ps: &'a ParsedSession,
    /// The server it was logged on (the connector id's `SERVER\`, else the file's folder).
    pub server: Option<String>,
    /// The receive connector's name (the part after `SERVER\`).
    pub connector: String,
    /// Exchange Online delivering: an EOP address, an EXO EHLO name or EOP's client certificate.
    pub from_exo: bool,
    /// The client's first EHLO/HELO (a `<` line).
    pub ehlo: Option<usize>,
    /// This server's first `250` reply to it (before TLS).
    pub ehlo_reply: Option<usize>,
    /// Whether that reply offered STARTTLS.
    pub offered_starttls: Option<bool>,
    /// The client's STARTTLS.
    pub starttls: Option<usize>,
    /// The certificate this server presented (`Sending certificate`).
    pub sending_cert: Option<usize>,
    /// The certificate the client presented (`Received`/`Remote certificate`).
    pub received_cert: Option<usize>,
    pub tls_ok: Option<usize>,
    pub tls_failed: Option<(SecurityStatus, usize)>,
    /// The `TlsDomainCapabilities='...'; Status='...'` info line.
    pub domain_capabilities: Option<usize>,
    /// Replies this server sent with a 4xx or 5xx code (`452 4.3.1 Insufficient system
    /// resources`), in order.
    pub errors_sent: Vec<usize>,
    /// A `250 2.6.0 ... Queued mail for delivery` was sent: a message was accepted.
    pub delivered: bool,
    pub disconnect: Option<usize>,
}

impl<'a> ReceiveSessionView<'a> {
    pub(super) fn build(ps: &'a ParsedSession, server: Option<String>) -> Self {
        let cid = ps.session.connector_id.as_str();
        let mut v = Self {
            ps,
            server,
            connector: cid.split_once('\\').map_or(cid, |(_, c)| c).to_string(),
            from_exo: is_eop_ip(ps.session.remote.ip()),
            ehlo: None,
            ehlo_reply: None,
            offered_starttls: None,
            starttls: None,
            sending_cert: None,
            received_cert: None,
            tls_ok: None,
            tls_failed: None,
            domain_capabilities: None,
            errors_sent: Vec::new(),
            delivered: false,
            disconnect: None,
        };
        let mut after_ehlo = false;
        for (i, te) in ps.session.events.iter().enumerate() {
            match &te.event {
                SessionEvent::ReceivedLine { line } => {
                    let mut w = line.split_whitespace();
                    let verb = w.next().unwrap_or("");
                    after_ehlo =
                        verb.eq_ignore_ascii_case("EHLO") || verb.eq_ignore_ascii_case("HELO");
                    if after_ehlo && v.ehlo.is_none() {
                        v.ehlo = Some(i);
                        v.from_exo |= w.next().is_some_and(is_exo_helo);
                    }
                    if verb.eq_ignore_ascii_case("STARTTLS") {
                        v.starttls.get_or_insert(i);
                    }
                }
                SessionEvent::Sent { line } => {
                    let code = line.get(..3).and_then(|c| c.parse::<u16>().ok());
                    if after_ehlo
                        && code == Some(250)
                        && v.ehlo_reply.is_none()
                        && v.tls_ok.is_none()
                    {
                        v.ehlo_reply = Some(i);
                        v.offered_starttls = Some(line.split_whitespace().any(|t| {
                            t.trim_start_matches("250-")
                                .eq_ignore_ascii_case("STARTTLS")
                        }));
                    }
                    after_ehlo = false;
                    if code.is_some_and(|c| (400..600).contains(&c)) {
                        v.errors_sent.push(i);
                    }
                    if line.starts_with("250 2.6.0") {
                        v.delivered = true;
                    }
                }
                SessionEvent::Certificate { role, cert } => match role {
                    CertRole::Sending => v.sending_cert = Some(i),
                    CertRole::Received | CertRole::Remote => {
                        v.received_cert = Some(i);
                        v.from_exo |= cert
                            .names()
                            .iter()
                            .any(|n| n.eq_ignore_ascii_case("mail.protection.outlook.com"));
                    }
                },
                SessionEvent::TlsNegotiated { .. } => v.tls_ok = Some(i),
                SessionEvent::TlsFailed { status } => v.tls_failed = Some((*status, i)),
                SessionEvent::Info { context, .. } => {
                    if context.contains("TlsDomainCapabilities") {
                        v.domain_capabilities = Some(i);
                    } else if let Some(status) = SecurityStatus::from_log_text(context) {
                        v.tls_failed = Some((status, i));
                    }
                }
                SessionEvent::Disconnected { .. } => v.disconnect = Some(i),
                SessionEvent::Received { .. }
                | SessionEvent::Connected
                | SessionEvent::AttemptingConnect => {}
            }
        }
        v
    }
}

#[allow(dead_code)] // the inbound rules (issue 11, rules side) call these
impl<'a> ReceiveSessionView<'a> {
    /// The first line of event `i`.
    pub(crate) fn ev(&self, i: usize) -> Ev {
        Ev::of(
            self.ps.sources[i].first(),
            Some(self.ps.session.events[i].at),
        )
    }

    /// The text of a `>` (sent) or `<` (received) line, or an info line's context.
    pub(crate) fn line(&self, i: usize) -> Option<&'a str> {
        match &self.ps.session.events.get(i)?.event {
            SessionEvent::Sent { line } | SessionEvent::ReceivedLine { line } => Some(line),
            SessionEvent::Info { context, .. } => Some(context),
            _ => None,
        }
    }

    /// A certificate event's facts.
    pub(crate) fn cert(&self, i: usize) -> Option<&'a CertFacts> {
        match &self.ps.session.events.get(i)?.event {
            SessionEvent::Certificate { cert, .. } => Some(cert),
            _ => None,
        }
    }

    /// The client's address.
    pub(crate) fn remote_ip(&self) -> IpAddr {
        self.ps.session.remote.ip()
    }

    /// The session id.
    pub(crate) fn id(&self) -> &'a str {
        &self.ps.session.session_id
    }
}

#[cfg(test)]
mod tests {
    use crate::model::Model;

    #[test]
    fn healthy_receive_log_from_exo() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/samples/healthy");
        let a = hybridlab_artefacts::read_path(&dir.join("RECV20250115-1.LOG")).unwrap();
        let m = Model::build(&a, None);
        let r = &m.receive_sessions[0];
        assert!(r.from_exo);
        assert_eq!(r.offered_starttls, Some(true));
        assert!(r.starttls.is_some() && r.tls_ok.is_some());
        assert!(r.sending_cert.is_some() && r.received_cert.is_some());
        assert!(r.domain_capabilities.is_some());
        assert!(r.delivered);
        assert!(r.errors_sent.is_empty());
    }

    /// The old layout (one `>` line per EHLO keyword) and a reply without STARTTLS (FM-05).
    #[test]
    fn starttls_offered_or_not_in_both_layouts() {
        let head = "#Software: Microsoft Exchange Server\r\n#Version: 15.01.0845.034\r\n#Log-type: SMTP Receive Protocol Log\r\n#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context\r\n";
        let line = |seq: u32, ev: &str, data: &str| {
            format!(
                "2016-03-01T10:00:00.{seq:03}Z,EXCH01\\Default Frontend EXCH01,08D3419A00000002,{seq},10.0.0.5:25,40.107.22.55:41000,{ev},{data},\r\n"
            )
        };
        for (keywords, offered) in [
            (&["SIZE 37748736", "STARTTLS", "XRDST"][..], true),
            (&["SIZE 37748736", "XRDST"][..], false),
        ] {
            let mut text = head.to_string();
            text += &line(0, "+", "");
            text += &line(1, "<", "EHLO EUR05-AM6-obe.outbound.protection.outlook.com");
            text += &line(2, ">", "250-mail.contoso.com Hello [40.107.22.55]");
            for (k, kw) in keywords.iter().enumerate() {
                let sep = if k + 1 == keywords.len() { ' ' } else { '-' };
                text += &line(3 + k as u32, ">", &format!("250{sep}{kw}"));
            }
            text += &line(9, "<", "MAIL FROM:<a@contoso.onmicrosoft.com>");
            text += &line(10, ">", "451 5.7.3 STARTTLS is required to send mail");
            let mut rd = hybridlab_artefacts::ArtefactReader::new();
            rd.add_bytes("RECV20160301-1.LOG", text.as_bytes());
            let a = rd.finish();
            let m = Model::build(&a, None);
            let r = &m.receive_sessions[0];
            assert_eq!(r.offered_starttls, Some(offered), "{text}");
            assert_eq!(r.server.as_deref(), Some("EXCH01"));
            assert_eq!(r.errors_sent.len(), 1);
            assert_eq!(
                r.line(r.errors_sent[0]),
                Some("451 5.7.3 STARTTLS is required to send mail")
            );
            assert_eq!(r.ev(r.ehlo_reply.unwrap()).line, 7);
        }
    }
}
