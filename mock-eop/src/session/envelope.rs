//! The envelope: MAIL FROM and RCPT TO, each attributed to a tenant and inbound connector
//! ([`crate::attribution`]) and refused with EOP's reply when attribution says so.

use time::OffsetDateTime;

use super::Session;
use super::data::Transfer;
use crate::attribution::{self, AttributionVerdict, SessionFacts};
use crate::fault::Stage;
use hybridlab_model::reply::{Reply, eop};

/// The mail transaction between MAIL and the end of data.
#[derive(Debug)]
pub(super) struct Txn {
    /// The MAIL FROM address (empty for the null sender).
    pub(super) mail_from: String,
    /// The `SIZE=` the client declared (0 when none): sizes the body buffer.
    pub(super) declared_size: usize,
    /// The accepted RCPT TO addresses, in order.
    pub(super) rcpts: Vec<String>,
    /// The latest attribution (MAIL's, then each accepted RCPT's).
    pub(super) verdict: AttributionVerdict,
    /// Whether the attributed connector has CloudServicesMailEnabled, so EOP keeps the
    /// cross-premises (`X-MS-Exchange-Organization-*`) headers.
    pub(super) cross_premises: bool,
    /// The message so far (DATA: with the primer CRLF in front).
    pub(super) body: Vec<u8>,
    /// DATA or BDAT, once the content has started.
    pub(super) transfer: Option<Transfer>,
    /// When the content started (the queued reply's duration counts from here).
    pub(super) data_started: Option<OffsetDateTime>,
}

impl Session {
    /// What attribution knows about the connection: the client's IP, TLS, its certificate.
    fn facts(&self) -> SessionFacts<'_> {
        SessionFacts {
            peer: self.ctx.peer.ip(),
            tls: self.tls_active,
            client_certificate: self
                .record
                .tls
                .as_ref()
                .and_then(|t| t.client_certificate.as_ref()),
            reply_tag: self.reply_tag(),
        }
    }

    /// MAIL FROM: sequence and size checks, the fault, attribution; a new transaction.
    pub(super) fn mail(&mut self, from: String, size: usize) {
        if !self.helo {
            self.protocol_error(eop::send_hello_first());
            return;
        }
        if self.txn.is_some() {
            self.protocol_error(Reply::new(503, "5.5.2 Sender already specified"));
            return;
        }
        if size as u64 > self.cfg().limits.max_message_size {
            self.reply(eop::message_too_large());
            return;
        }
        if self.command_fault(Stage::Mail) {
            return;
        }
        let decision = attribution::evaluate_mail(self.cfg(), &self.facts(), &from);
        self.info(format!("attribution at MAIL: {}", decision.verdict));
        self.record.attribution = Some(decision.verdict.clone());
        if let Some(r) = decision.reject {
            self.reply(r);
            return;
        }
        self.txn = Some(Txn {
            mail_from: from,
            declared_size: size,
            rcpts: Vec::new(),
            verdict: decision.verdict,
            cross_premises: decision.cross_premises,
            body: Vec::new(),
            transfer: None,
            data_started: None,
        });
        self.reply(eop::sender_ok());
    }

    /// RCPT TO: sequence and recipient-count checks, the fault, attribution of the recipient.
    pub(super) fn rcpt(&mut self, to: String) {
        let Some(txn) = &self.txn else {
            self.protocol_error(Reply::new(503, "5.5.2 Need mail command"));
            return;
        };
        if txn.transfer.is_some() {
            self.protocol_error(eop::bad_sequence());
            return;
        }
        if txn.rcpts.len() >= self.cfg().limits.max_recipients {
            self.reply(Reply::new(452, "4.5.3 Too many recipients"));
            return;
        }
        let sender = txn.mail_from.clone();
        if self.command_fault(Stage::Rcpt) {
            return;
        }
        let decision = attribution::evaluate_rcpt(self.cfg(), &self.facts(), &sender, &to);
        self.info(format!("attribution at RCPT {to}: {}", decision.verdict));
        self.record.attribution = Some(decision.verdict.clone());
        if let Some(r) = decision.reject {
            self.reply(r);
            return;
        }
        if let Some(t) = self.txn.as_mut() {
            t.rcpts.push(to);
            t.verdict = decision.verdict;
            t.cross_premises = decision.cross_premises;
        }
        self.reply(eop::recipient_ok());
    }
}
