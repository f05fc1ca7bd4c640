//! STARTTLS (RFC 3207): the checks, the faults at the STARTTLS and handshake stages, the outcome
//! of the handshake the driver ran, and the bytes a client pipelines after the command (recorded,
//! never executed).

use time::OffsetDateTime;

use super::{Action, HandshakeFault, Phase, ProtocolCore, Session};
use crate::fault::{FaultAction, Stage};
use hybridlab_model::record::{CloseReason, Discarded, TlsFacts};
use hybridlab_model::reply::eop;

/// How many of the bytes pipelined after STARTTLS the record keeps as a preview.
const DISCARDED_PREVIEW: usize = 512;

/// What a fault at the STARTTLS stage leaves the command to do.
enum StarttlsFault {
    /// Answer 220 and hand over to the driver, with the handshake fault if any.
    Proceed(Option<HandshakeFault>),
    /// The fault answered (or dropped the connection): nothing more to do.
    Done,
}

impl Session {
    /// The TLS handshake completed at `now`: the session restarts, waiting for EHLO.
    pub fn handle_tls_established(&mut self, now: OffsetDateTime, facts: TlsFacts) {
        self.advance(now);
        if !matches!(self.phase, Phase::AwaitingTls) {
            return;
        }
        let mut note = format!(
            "TLS established: {} {}{}",
            facts.version,
            facts.cipher_suite,
            if facts.resumed { " (resumed)" } else { "" }
        );
        match &facts.client_certificate {
            Some(c) => note.push_str(&format!(
                "; client certificate {} issued by {} thumbprint {} chain {}",
                c.leaf.subject, c.leaf.issuer, c.leaf.thumbprint, c.verdict
            )),
            None => note.push_str("; no client certificate"),
        }
        self.info(note);
        self.record.tls = Some(facts);
        self.tls_active = true;
        self.phase = Phase::Command;
        self.end_of_turn();
    }

    /// The TLS handshake failed at `now` (or a handshake fault ran): the session ends.
    pub fn handle_tls_failed(&mut self, now: OffsetDateTime, error: &str) {
        self.advance(now);
        if self.is_closed() {
            return;
        }
        self.info(format!("TLS negotiation failed: {error}"));
        self.record.tls_error = Some(error.to_string());
        self.close(CloseReason::TlsFailed);
        self.end_of_turn();
    }

    /// STARTTLS: refused when not offered, inside TLS or before EHLO; else the faults, `220 2.0.0
    /// SMTP server ready` and [`Action::StartTls`].
    pub(super) fn starttls(&mut self) {
        if !self.starttls_allowed() {
            return;
        }
        let StarttlsFault::Proceed(mut handshake_fault) = self.starttls_fault() else {
            return;
        };
        self.reply(eop::starttls_ready());
        if handshake_fault.is_none() {
            handshake_fault = self.handshake_fault();
        }
        // RFC 3207: forget everything learnt before TLS.
        self.helo = false;
        self.txn = None;
        self.flush();
        self.actions.push_back(Action::StartTls(handshake_fault));
        self.phase = Phase::AwaitingTls;
    }

    /// Whether STARTTLS may proceed; answers the protocol error when not.
    fn starttls_allowed(&mut self) -> bool {
        if !self.cfg().tls.starttls || self.omit_starttls || self.mask {
            if self.mask {
                self.info("STARTTLS arrives masked as XXXXXXXX".into());
            }
            self.protocol_error(eop::unrecognized_command());
            return false;
        }
        if self.tls_active {
            self.protocol_error(eop::starttls_twice());
            return false;
        }
        if !self.helo {
            self.protocol_error(eop::send_hello_first());
            return false;
        }
        true
    }

    /// The fault at the STARTTLS stage: a reply, a drop, a close after the 220, or a handshake
    /// fault for the driver.
    fn starttls_fault(&mut self) -> StarttlsFault {
        match self.fault_at(Stage::Starttls) {
            None | Some(FaultAction::OmitStarttls | FaultAction::MaskStarttls) => {
                StarttlsFault::Proceed(None)
            }
            Some(FaultAction::Stall(d)) => {
                self.stall(d.0);
                StarttlsFault::Proceed(None)
            }
            Some(FaultAction::Reply(r)) => {
                let close = r.0.code == 421;
                self.reply(r.0);
                if close {
                    self.close(CloseReason::Fault);
                }
                StarttlsFault::Done
            }
            Some(FaultAction::Throttle(t)) => {
                let ip = self.ctx.peer.ip().to_string();
                self.reply(eop::throttled(&ip, &t.tag));
                StarttlsFault::Done
            }
            Some(FaultAction::Close421) => {
                self.reply(eop::service_not_available());
                self.close(CloseReason::Fault);
                StarttlsFault::Done
            }
            Some(FaultAction::Drop) => {
                self.close(CloseReason::Fault);
                StarttlsFault::Done
            }
            Some(FaultAction::CloseAfterStarttls) => {
                self.reply(eop::starttls_ready());
                self.close(CloseReason::Fault);
                StarttlsFault::Done
            }
            Some(FaultAction::TlsGarbage(g)) => {
                StarttlsFault::Proceed(Some(HandshakeFault::Garbage(g.into_bytes())))
            }
            Some(FaultAction::TlsAlert(a)) => {
                StarttlsFault::Proceed(Some(HandshakeFault::Alert(a)))
            }
        }
    }

    /// The fault at the handshake stage (after the 220 was queued), if any.
    fn handshake_fault(&mut self) -> Option<HandshakeFault> {
        match self.fault_at(Stage::TlsHandshake) {
            Some(FaultAction::Stall(d)) => {
                self.stall(d.0);
                None
            }
            Some(FaultAction::Drop) => Some(HandshakeFault::Drop),
            Some(FaultAction::TlsGarbage(g)) => Some(HandshakeFault::Garbage(g.into_bytes())),
            Some(FaultAction::TlsAlert(a)) => Some(HandshakeFault::Alert(a)),
            _ => None,
        }
    }

    /// Bytes the client sent after STARTTLS before the handshake: counted, the first
    /// [`DISCARDED_PREVIEW`] kept for the record, never executed.
    pub(super) fn discard_after_starttls(&mut self, bytes: &[u8]) {
        let d = self
            .record
            .discarded_after_starttls
            .get_or_insert_with(Discarded::default);
        d.bytes += bytes.len();
        let room = DISCARDED_PREVIEW.saturating_sub(self.discarded.len());
        if room > 0 {
            let take = &bytes[..bytes.len().min(room)];
            self.discarded.extend_from_slice(take);
            d.preview = String::from_utf8_lossy(&self.discarded).into_owned();
        }
    }
}
