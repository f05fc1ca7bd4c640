//! The mail transactions: MAIL (with SIZE, after the OverAdvertisedSize check), RCPT pipelined
//! when PIPELINING is offered, BDAT when CHUNKING is offered else DATA with dot-stuffing, RSET
//! between messages, up to SmtpMaxMessagesPerConnection, then QUIT.

use hybridlab_artefacts::protocol_log::{SessionEvent, log_time};
use hybridlab_model::exchange::synthetic;
use hybridlab_model::reply::Reply;
use smtp_proto::{EXT_CHUNKING, EXT_SIZE};
use time::OffsetDateTime;

use super::super::command::{self, Bdat, Data, MailFrom, RcptTo, Rset};
use super::{Action, Expect, MessageDisposition, SenderMachine};

impl SenderMachine {
    pub(super) fn start_message(&mut self, now: OffsetDateTime) {
        // bounded: each iteration moves `current` forward
        while self.current < self.messages.len() {
            if self.sent_in_session >= self.cfg.connector.smtp_max_messages_per_connection {
                break;
            }
            let msg = &self.messages[self.current];
            let wire_len = msg
                .wire(self.cfg.connector.cloud_services_mail_enabled)
                .len();
            if self.ehlo_caps & EXT_SIZE != 0 && self.ehlo_size > 0 && wire_len > self.ehlo_size {
                self.results[self.current].status = MessageDisposition::Rejected {
                    reply: synthetic::over_advertised_size(),
                    local: true,
                };
                self.current += 1;
                continue;
            }
            let id = msg.internal_id;
            let arrival = log_time(msg.arrival);
            let from = msg.from.clone();
            let size = (self.ehlo_caps & EXT_SIZE != 0).then_some(wire_len);
            self.event(
                now,
                SessionEvent::Info {
                    data: format!("{id};{arrival};1"),
                    context: "sending message".into(),
                },
            );
            self.sent_in_session += 1;
            self.mail_reply = None;
            self.send_cmd(now, &MailFrom { from: &from, size }, Expect::Mail);
            if self.cfg_pipelining() {
                let rcpts = self.messages[self.current].to.clone();
                for (i, r) in rcpts.iter().enumerate() {
                    self.send_cmd(now, &RcptTo(r), Expect::Rcpt(i));
                }
            }
            return;
        }
        self.quit(now);
    }

    fn next_rcpt_index(&self) -> Option<usize> {
        self.results[self.current]
            .recipients
            .iter()
            .position(|(_, r)| r.is_none())
    }

    pub(super) fn maybe_after_envelope(&mut self, now: OffsetDateTime) {
        if self.cfg_pipelining() {
            if !self.expect.is_empty() {
                return;
            }
            self.after_envelope(now);
            return;
        }
        // not pipelining: MAIL answered, now RCPTs one by one
        match &self.mail_reply {
            Some(r) if r.is_positive() => self.send_next_rcpt_or_data(now),
            _ => self.after_envelope(now),
        }
    }

    pub(super) fn send_next_rcpt_or_data(&mut self, now: OffsetDateTime) {
        match self.next_rcpt_index() {
            Some(i) => {
                let r = self.results[self.current].recipients[i].0.clone();
                self.send_cmd(now, &RcptTo(&r), Expect::Rcpt(i));
            }
            None => self.after_envelope(now),
        }
    }

    fn after_envelope(&mut self, now: OffsetDateTime) {
        let mail = self.mail_reply.clone();
        let result = &self.results[self.current];
        if let Some(m) = mail.filter(|m| !m.is_positive()) {
            self.finish_message_no_data(m, now, false);
            return;
        }
        let accepted = result
            .recipients
            .iter()
            .any(|(_, r)| r.as_ref().is_some_and(Reply::is_positive));
        if !accepted {
            let first = result
                .recipients
                .iter()
                .filter_map(|(_, r)| r.clone())
                .find(|r| r.is_transient())
                .or_else(|| result.recipients.iter().find_map(|(_, r)| r.clone()))
                .unwrap_or_else(|| Reply::new(550, "5.1.0 No recipients"));
            self.finish_message_no_data(first, now, true);
            return;
        }
        let wire = self.messages[self.current].wire(self.cfg.connector.cloud_services_mail_enabled);
        if self.ehlo_caps & EXT_CHUNKING != 0 {
            let cmd = Bdat {
                len: wire.len(),
                last: true,
            };
            self.event(
                now,
                SessionEvent::Sent {
                    line: command::line(&cmd),
                },
            );
            let mut bytes = cmd.to_string().into_bytes();
            bytes.extend_from_slice(&wire);
            self.actions.push_back(Action::Send(bytes));
            self.expect.push_back(Expect::Final);
        } else {
            self.send_cmd(now, &Data, Expect::DataGo);
        }
    }

    fn finish_message_no_data(
        &mut self,
        reply: Reply,
        now: OffsetDateTime,
        transaction_open: bool,
    ) {
        self.set_status(reply);
        self.current += 1;
        if transaction_open && self.has_more() {
            self.send_cmd(now, &Rset, Expect::Rset);
        } else {
            self.next_message(now);
        }
    }

    pub(super) fn finish_message(&mut self, reply: Reply, now: OffsetDateTime) {
        self.set_status(reply);
        self.current += 1;
        self.next_message(now);
    }

    fn set_status(&mut self, reply: Reply) {
        self.results[self.current].status = if reply.is_positive() {
            MessageDisposition::Delivered { reply }
        } else if reply.is_transient() {
            MessageDisposition::Deferred { reply }
        } else {
            MessageDisposition::Rejected {
                reply,
                local: false,
            }
        };
    }

    fn has_more(&self) -> bool {
        self.current < self.messages.len()
            && self.sent_in_session < self.cfg.connector.smtp_max_messages_per_connection
    }

    pub(super) fn next_message(&mut self, now: OffsetDateTime) {
        if self.has_more() {
            self.start_message(now);
        } else {
            self.quit(now);
        }
    }
}
