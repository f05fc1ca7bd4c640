//! The verbs: EHLO/HELO (with Exchange's keyword list), MAIL, RCPT, DATA, BDAT, RSET, NOOP, QUIT
//! and everything Exchange refuses. STARTTLS is in `tls`.

use hybridlab_artefacts::protocol_log::SessionEvent;
use hybridlab_model::exchange::{DisconnectReason, ExchangeVersion};
use hybridlab_model::reply::Reply;
use smtp_proto::request::receiver::{BdatReceiver, DataReceiver, DummyDataReceiver};
use smtp_proto::{Error as ProtoError, Request};

use super::{CloseReason, Phase, ReceiveSession, Transfer, Txn, message_too_large};
use crate::connector::{AuthMechanism, PermissionGroup};

impl ReceiveSession {
    pub(super) fn command_line(&mut self, raw: &[u8]) {
        let shown = String::from_utf8_lossy(raw)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        self.log(SessionEvent::ReceivedLine {
            line: shown.clone(),
        });
        // XOORG=<org> is Exchange's MAIL parameter for cross-premises sessions; smtp-proto does
        // not know it, so it is taken off the line (only when it was advertised).
        let (line, xoorg) = match take_mail_param(&shown, "XOORG") {
            Some((rest, value)) if self.xoorg_offered() => (format!("{rest}\r\n"), Some(value)),
            _ => (format!("{shown}\r\n"), None),
        };
        match Request::parse(&mut line.as_bytes().iter()).map(Request::into_owned) {
            Ok(req) => self.request(req, xoorg),
            Err(e) => {
                let reply = match e {
                    ProtoError::UnknownCommand | ProtoError::InvalidResponse { .. } => {
                        unrecognized()
                    }
                    ProtoError::InvalidSenderAddress => Reply::new(501, "5.1.7 Invalid address"),
                    ProtoError::InvalidRecipientAddress => Reply::new(501, "5.1.3 Invalid address"),
                    ProtoError::ResponseTooLong => Reply::new(500, "5.5.2 Line too long"),
                    ProtoError::SyntaxError { .. }
                    | ProtoError::InvalidParameter { .. }
                    | ProtoError::UnsupportedParameter { .. }
                    | ProtoError::NeedsMoreData { .. } => {
                        Reply::new(501, "5.5.4 Invalid arguments")
                    }
                };
                self.protocol_error(reply);
            }
        }
    }

    fn request(&mut self, req: Request<String>, xoorg: Option<String>) {
        match req {
            Request::Ehlo { host } => self.hello(host, true),
            Request::Helo { host } => self.hello(host, false),
            Request::StartTls => self.starttls(),
            Request::Mail { from } => self.mail(from.address, from.size, xoorg),
            Request::Rcpt { to } => self.rcpt(to.address),
            Request::Data => self.data(),
            Request::Bdat {
                chunk_size,
                is_last,
            } => self.bdat(chunk_size, is_last),
            Request::Rset => {
                self.txn = None;
                self.reply(Reply::new(250, "2.0.0 Resetting"));
            }
            Request::Noop { .. } => self.reply(Reply::new(250, "2.0.0 OK")),
            Request::Quit => {
                self.reply(Reply::new(
                    221,
                    "2.0.0 Service closing transmission channel",
                ));
                self.close(CloseReason::Quit, DisconnectReason::Local);
            }
            Request::Auth { .. } => {
                self.reply(Reply::new(504, "5.7.4 Unrecognized authentication type"))
            }
            Request::Lhlo { .. }
            | Request::Vrfy { .. }
            | Request::Expn { .. }
            | Request::Help { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => self.protocol_error(unrecognized()),
        }
    }

    fn hello(&mut self, host: String, extended: bool) {
        self.txn = None;
        self.helo = Some(host);
        if self.tls.is_some() && !self.capabilities_judged {
            self.judge_capabilities();
        }
        let first = format!("{} Hello [{}]", self.fqdn(), self.peer.ip());
        if !extended {
            self.reply(Reply::new(250, first));
            return;
        }
        let lines = self.ehlo_keywords(first);
        self.reply_ehlo(Reply::multi(250, lines));
    }

    /// The EHLO list as Exchange 2016/2019 answers: STARTTLS and X-ANONYMOUSTLS only before TLS,
    /// `AUTH NTLM` (plus `LOGIN` once basic authentication is allowed), `X-EXPS GSSAPI NTLM`,
    /// SMTPUTF8 on 2019 and later, XRDST, and XOORG after a certificate earned the capability.
    fn ehlo_keywords(&self, first: String) -> Vec<String> {
        let c = &self.connector.connector;
        let tls_up = self.tls.is_some();
        let mut lines = vec![
            first,
            format!("SIZE {}", c.max_message_size),
            "PIPELINING".into(),
            "DSN".into(),
            "ENHANCEDSTATUSCODES".into(),
        ];
        if !tls_up && self.connector.offers_starttls() {
            lines.push("STARTTLS".into());
            if !c.suppress_x_anonymous_tls {
                lines.push("X-ANONYMOUSTLS".into());
            }
        }
        let mut auth = Vec::new();
        if c.has_auth(AuthMechanism::Integrated) {
            auth.push("NTLM");
        }
        let basic_ok = c.has_auth(AuthMechanism::BasicAuth)
            && (tls_up || !c.has_auth(AuthMechanism::BasicAuthRequireTLS));
        if basic_ok {
            auth.push("LOGIN");
        }
        if !auth.is_empty() {
            lines.push(format!("AUTH {}", auth.join(" ")));
        }
        if c.has_auth(AuthMechanism::ExchangeServer) || c.has_auth(AuthMechanism::Integrated) {
            lines.push("X-EXPS GSSAPI NTLM".into());
        }
        lines.extend(["8BITMIME".into(), "BINARYMIME".into(), "CHUNKING".into()]);
        if !matches!(
            self.server.settings.version,
            ExchangeVersion::Exchange2010
                | ExchangeVersion::Exchange2013
                | ExchangeVersion::Exchange2016
        ) {
            lines.push("SMTPUTF8".into());
        }
        lines.push("XRDST".into());
        if self.xoorg_offered() {
            lines.push("XOORG".into());
        }
        lines
    }

    fn xoorg_offered(&self) -> bool {
        self.tls
            .as_ref()
            .is_some_and(|t| t.capabilities.iter().any(|c| c.trusts_cross_premises()))
    }

    fn mail(&mut self, from: String, size: usize, xoorg: Option<String>) {
        let c = &self.connector.connector;
        if self.helo.is_none() {
            return self.protocol_error(Reply::new(503, "5.5.2 Send hello first"));
        }
        if c.require_tls && self.tls.is_none() {
            return self.reply(Reply::new(530, "5.7.0 Must issue a STARTTLS command first"));
        }
        if self.txn.is_some() {
            return self.protocol_error(Reply::new(503, "5.5.2 Sender already specified"));
        }
        if !c
            .permission_groups
            .contains(&PermissionGroup::AnonymousUsers)
        {
            return self.reply(Reply::new(530, "5.7.1 Client was not authenticated"));
        }
        if let Some(bp) = &self.server.settings.back_pressure {
            let text = format!(
                "4.3.1 Insufficient system resources ({})",
                bp.resource_text()
            );
            return self.reply(Reply::new(452, text));
        }
        if size as u64 > c.max_message_size {
            return self.reply(message_too_large());
        }
        self.message_count += 1;
        let data = format!(
            "{};{};{}",
            self.session_id,
            hybridlab_artefacts::protocol_log::log_time(self.cur),
            self.message_count
        );
        self.log(SessionEvent::Info {
            data,
            context: "receiving message".into(),
        });
        self.txn = Some(Txn {
            mail_from: from,
            xoorg,
            declared_size: size,
            rcpts: Vec::new(),
            body: Vec::new(),
            transfer: None,
            data_started: None,
        });
        self.reply(Reply::new(250, "2.1.0 Sender OK"));
    }

    fn rcpt(&mut self, to: String) {
        let Some(txn) = &self.txn else {
            return self.protocol_error(Reply::new(503, "5.5.2 Need mail command"));
        };
        if txn.transfer.is_some() {
            return self.protocol_error(Reply::new(503, "5.5.1 Bad sequence of commands"));
        }
        if txn.rcpts.len() >= self.connector.connector.max_recipients_per_message as usize {
            return self.reply(Reply::new(452, "4.5.3 Too many recipients"));
        }
        let domain = to.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        let accepted = &self.server.settings.accepted_domains;
        if !accepted.is_empty() && !accepted.iter().any(|a| domain_accepted(a, domain)) {
            return self.reply(Reply::new(
                550,
                "5.7.54 SMTP; Unable to relay recipient in non-accepted domain",
            ));
        }
        if let Some(t) = self.txn.as_mut() {
            t.rcpts.push(to);
        }
        self.reply(Reply::new(250, "2.1.5 Recipient OK"));
    }

    fn data(&mut self) {
        match &self.txn {
            None => return self.protocol_error(Reply::new(503, "5.5.2 Need mail command")),
            Some(t) if t.rcpts.is_empty() => {
                return self.protocol_error(Reply::new(503, "5.5.2 Need rcpt command"));
            }
            Some(t) if t.transfer.is_some() => {
                return self.protocol_error(Reply::new(503, "5.5.1 Bad sequence of commands"));
            }
            Some(_) => {}
        }
        let now = self.cur;
        let mut recv = DataReceiver::new();
        if let Some(t) = self.txn.as_mut() {
            t.transfer = Some(Transfer::Data);
            t.data_started = Some(now);
            t.body.reserve(t.declared_size.clamp(1024, 1 << 20));
            // Prime the receiver with the CRLF before the data (a message starting with "." or an
            // empty one reads right); the two bytes are dropped when the message is complete.
            recv.ingest(&mut b"\r\n".iter(), &mut t.body);
        }
        self.reply(Reply::new(354, "Start mail input; end with <CRLF>.<CRLF>"));
        self.phase = Phase::Data(recv);
    }

    fn bdat(&mut self, size: usize, last: bool) {
        let refusal = match &self.txn {
            None => Some(Reply::new(503, "5.5.2 Need mail command")),
            Some(t) if t.rcpts.is_empty() => Some(Reply::new(503, "5.5.2 Need rcpt command")),
            Some(t) if t.transfer == Some(Transfer::Data) => {
                Some(Reply::new(503, "5.5.1 Bad sequence of commands"))
            }
            Some(_) => None,
        };
        if let Some(r) = refusal {
            self.protocol_errors += 1;
            if self.protocol_errors > self.connector.connector.max_protocol_errors {
                self.reply(super::too_many_errors());
                return self.close(CloseReason::TooManyErrors, DisconnectReason::Local);
            }
            return self.bdat_refuse(size, r);
        }
        let len = self.txn.as_ref().map(|t| t.body.len()).unwrap_or(0);
        if (len + size) as u64 > self.connector.connector.max_message_size {
            self.txn = None;
            return self.bdat_refuse(size, message_too_large());
        }
        let now = self.cur;
        if let Some(t) = self.txn.as_mut()
            && t.transfer.is_none()
        {
            t.transfer = Some(Transfer::Bdat);
            t.data_started = Some(now);
        }
        if size == 0 {
            self.bdat_chunk_done(last);
        } else {
            self.phase = Phase::Bdat(BdatReceiver::new(size, last));
        }
    }

    /// Reads `size` bytes of chunk and throws them away, then sends `reply`.
    fn bdat_refuse(&mut self, size: usize, reply: Reply) {
        if size == 0 {
            self.reply(reply);
        } else {
            self.phase = Phase::BdatDiscard(DummyDataReceiver::new_bdat(size), reply);
        }
    }

    pub(super) fn bdat_chunk_done(&mut self, last: bool) {
        if last {
            self.finish_message(0);
        } else {
            let n = self.txn.as_ref().map(|t| t.body.len()).unwrap_or(0);
            self.reply(Reply::new(
                250,
                format!("2.6.0 CHUNK received OK, {n} octets"),
            ));
        }
    }
}

/// `500 5.3.3 Unrecognized command`.
fn unrecognized() -> Reply {
    Reply::new(500, "5.3.3 Unrecognized command")
}

/// An accepted domain matches the recipient's domain (`*.contoso.com` covers subdomains).
fn domain_accepted(accepted: &str, domain: &str) -> bool {
    let a = accepted.trim().to_ascii_lowercase();
    let d = domain.trim().to_ascii_lowercase();
    match a.strip_prefix("*.") {
        Some(suffix) => d.ends_with(&format!(".{suffix}")) || d == suffix,
        None => a == d,
    }
}

/// Takes `NAME=value` off a `MAIL FROM:` line: the line without it and the value.
fn take_mail_param(line: &str, name: &str) -> Option<(String, String)> {
    if !line.get(..5)?.eq_ignore_ascii_case("MAIL ") {
        return None;
    }
    let mut value = None;
    let kept: Vec<&str> = line
        .split(' ')
        .filter(|w| {
            let hit = w.len() > name.len() + 1
                && w[..name.len()].eq_ignore_ascii_case(name)
                && w.as_bytes()[name.len()] == b'=';
            if hit && value.is_none() {
                value = Some(w[name.len() + 1..].to_string());
                return false;
            }
            true
        })
        .collect();
    value.map(|v| (kept.join(" "), v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoorg_is_taken_off_the_mail_line() {
        assert_eq!(
            take_mail_param(
                "MAIL FROM:<a@b.c> SIZE=10 XOORG=contoso.onmicrosoft.com",
                "XOORG"
            ),
            Some((
                "MAIL FROM:<a@b.c> SIZE=10".to_string(),
                "contoso.onmicrosoft.com".to_string()
            ))
        );
        assert_eq!(take_mail_param("RCPT TO:<a@b.c> XOORG=x", "XOORG"), None);
        assert!(domain_accepted("contoso.com", "CONTOSO.com"));
        assert!(domain_accepted("*.contoso.com", "eu.contoso.com"));
        assert!(!domain_accepted("contoso.com", "fabrikam.com"));
    }
}
