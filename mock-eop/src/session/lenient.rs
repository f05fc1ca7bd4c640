//! EOP's leniency and texts for lines smtp-proto refuses: a bare `HELO` gets `250 <host> Hello
//! [ip]`, `MAIL FROM: addr` without angle brackets is taken as `MAIL FROM:<addr>`; what is still
//! refused gets EOP's texts, `500 5.3.3 Unrecognized command '<verb>'` and
//! `501 5.5.4 Unrecognized parameter [<tag>]` (the domain reference, section 11.6).

use smtp_proto::{Error as ProtoError, Request};

use super::Session;
use hybridlab_model::reply::{Reply, eop};

/// How much of an unrecognised verb the 500 reply repeats.
const MAX_VERB_SHOWN: usize = 64;

impl Session {
    /// A line smtp-proto could not parse (`e`): accepted the lenient way, or refused with EOP's
    /// text.
    pub(super) fn parse_error(&mut self, line: &[u8], e: ProtoError) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\r', '\n']);
        let (verb, rest) = text.split_once(' ').unwrap_or((text, ""));
        if verb.eq_ignore_ascii_case("HELO") && rest.trim().is_empty() {
            self.hello(String::new(), false);
            return;
        }
        if verb.eq_ignore_ascii_case("MAIL")
            && let Some(Request::Mail { from }) = bracketed_mail_from(rest)
        {
            self.mail(from.address, from.size);
            return;
        }
        let reply = self.parse_error_reply(verb, e);
        self.protocol_error(reply);
    }

    /// EOP's answer to a line smtp-proto cannot parse.
    fn parse_error_reply(&self, verb: &str, e: ProtoError) -> Reply {
        match e {
            ProtoError::UnknownCommand | ProtoError::InvalidResponse { .. } => {
                // Only printable ASCII goes back into the reply line, and not much of it.
                let shown: String = verb
                    .chars()
                    .filter(char::is_ascii_graphic)
                    .take(MAX_VERB_SHOWN)
                    .collect();
                eop::unrecognized_verb(&shown)
            }
            ProtoError::InvalidSenderAddress => Reply::new(501, "5.1.7 Invalid address"),
            ProtoError::InvalidRecipientAddress => Reply::new(501, "5.1.3 Invalid address"),
            ProtoError::ResponseTooLong => eop::line_too_long(),
            ProtoError::SyntaxError { .. }
            | ProtoError::InvalidParameter { .. }
            | ProtoError::UnsupportedParameter { .. }
            | ProtoError::NeedsMoreData { .. } => eop::unrecognized_parameter(&self.reply_tag()),
        }
    }

    /// The bracketed tag for reject texts at this point of the session.
    pub(super) fn reply_tag(&self) -> String {
        self.cfg()
            .endpoint
            .reply_tag(self.cur, &self.record.session_id)
    }
}

/// `FROM: alice@contoso.com SIZE=2048` parsed as `MAIL FROM:<alice@contoso.com> SIZE=2048`;
/// `None` when the argument does not start with `FROM:` or has brackets already.
fn bracketed_mail_from(rest: &str) -> Option<Request<String>> {
    let (head, tail) = rest.split_at_checked(5)?;
    if !head.eq_ignore_ascii_case("FROM:") {
        return None;
    }
    let tail = tail.trim_start();
    if tail.starts_with('<') {
        return None;
    }
    let (address, params) = tail.split_once(' ').unwrap_or((tail, ""));
    if address.is_empty() {
        return None;
    }
    let fixed = if params.is_empty() {
        format!("MAIL FROM:<{address}>\r\n")
    } else {
        format!("MAIL FROM:<{address}> {params}\r\n")
    };
    Request::parse(&mut fixed.as_bytes().iter())
        .ok()
        .map(Request::into_owned)
}

/// The verb of a command smtp-proto parses but EOP does not offer on port 25.
pub(super) fn unoffered_verb(req: &Request<String>) -> &'static str {
    match req {
        Request::Lhlo { .. } => "LHLO",
        Request::Auth { .. } => "AUTH",
        Request::Vrfy { .. } => "VRFY",
        Request::Expn { .. } => "EXPN",
        Request::Help { .. } => "HELP",
        Request::Etrn { .. } => "ETRN",
        Request::Atrn { .. } => "ATRN",
        Request::Burl { .. } => "BURL",
        _ => "",
    }
}
