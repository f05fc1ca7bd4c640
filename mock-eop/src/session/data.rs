//! The message content: DATA (dot-stuffed, up to the lone dot) and BDAT chunks, read through
//! smtp-proto's `DataReceiver`, `BdatReceiver` and `DummyDataReceiver`; the size limit; the end
//! of data fault; EOP's `250 2.6.0 <id> [InternalId=..., Hostname=...] ... Queued mail for
//! delivery` and the message record.

use std::sync::Arc;

use smtp_proto::request::receiver::{BdatReceiver, DummyDataReceiver};

use super::dot::DotReceiver;
use super::faults::StageFault;
use super::{Action, Phase, Session};
use crate::config::{BareLineEndings, OversizeBdat};
use crate::fault::{Stage, mix};
use hybridlab_model::record::{CloseReason, MessageRecord};
use hybridlab_model::reply::{Reply, eop};

/// How the current message arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transfer {
    /// DATA: dot-stuffed lines up to `.` alone on a line.
    Data,
    /// BDAT: counted chunks, the last one marked LAST.
    Bdat,
}

impl Transfer {
    /// The name the message record carries (`data`, `bdat`).
    fn as_str(self) -> &'static str {
        match self {
            Self::Data => "data",
            Self::Bdat => "bdat",
        }
    }
}

/// How far into a message the header scan for Message-ID looks.
const MESSAGE_ID_SCAN: usize = 64 * 1024;

impl Session {
    // ---- the input of each content phase ----

    /// DATA content; returns what is left after the end of data. A message that grows past the
    /// size limit is read on and thrown away.
    pub(super) fn data_bytes<'b>(&mut self, bytes: &'b [u8]) -> &'b [u8] {
        let Phase::Data(recv) = &mut self.phase else {
            return bytes;
        };
        let (used, done) = recv.ingest(bytes, self.txn.as_mut().map(|t| &mut t.body));
        let bare = recv.bare;
        let max = self.ctx.config.limits.max_message_size;
        let too_big = self.txn.as_ref().is_some_and(|t| t.body.len() as u64 > max);
        if done {
            self.phase = Phase::Command;
            if bare > 0 && self.cfg().limits.bare_line_endings == BareLineEndings::Reject {
                self.txn = None;
                self.info(format!(
                    "message refused: {bare} bare CR or LF (limits.bare_line_endings = \"reject\")"
                ));
                self.reply(Reply::new(
                    554,
                    "5.6.0 Invalid message content, contains bare linefeeds",
                ));
            } else {
                self.finish_message(0);
            }
        } else if too_big && let Phase::Data(recv) = &mut self.phase {
            let recv = std::mem::replace(recv, DotReceiver::new());
            if let Some(t) = self.txn.as_mut() {
                t.body = Vec::new();
            }
            self.phase = Phase::DataDiscard(recv);
        }
        &bytes[used..]
    }

    /// The rest of an over-size DATA message; `552 5.3.4` at its end.
    pub(super) fn data_discard_bytes<'b>(&mut self, bytes: &'b [u8]) -> &'b [u8] {
        let Phase::DataDiscard(recv) = &mut self.phase else {
            return bytes;
        };
        let (used, done) = recv.ingest(bytes, None);
        if done {
            self.phase = Phase::Command;
            self.txn = None;
            self.info("message discarded: larger than the size limit".into());
            self.reply(eop::message_too_large());
        }
        &bytes[used..]
    }

    /// A BDAT chunk's bytes; returns what follows the chunk.
    pub(super) fn bdat_bytes<'b>(&mut self, bytes: &'b [u8]) -> &'b [u8] {
        let Phase::Bdat { recv, size } = &mut self.phase else {
            return bytes;
        };
        let size = *size;
        let mut it = bytes.iter();
        let done = match self.txn.as_mut() {
            Some(t) => recv.ingest(&mut it, &mut t.body),
            None => true,
        };
        let last = recv.is_last;
        let left = it.as_slice();
        if done {
            self.bdat_chunk_done(size, last);
        }
        left
    }

    /// A refused BDAT chunk's bytes; the refusal is answered once the chunk is read.
    pub(super) fn bdat_discard_bytes<'b>(&mut self, bytes: &'b [u8]) -> &'b [u8] {
        let Phase::BdatDiscard { recv, .. } = &mut self.phase else {
            return bytes;
        };
        let mut it = bytes.iter();
        let done = recv.ingest(&mut it);
        let left = it.as_slice();
        if done
            && let Phase::BdatDiscard { reply, close, .. } =
                std::mem::replace(&mut self.phase, Phase::Command)
        {
            self.reply(reply);
            if close {
                self.close(CloseReason::Fault);
            }
        }
        left
    }

    // ---- the commands ----

    /// DATA: sequence checks, the fault, `354` and the data phase.
    pub(super) fn data(&mut self) {
        match &self.txn {
            None => {
                self.protocol_error(Reply::new(503, "5.5.2 Need mail command"));
                return;
            }
            Some(t) if t.rcpts.is_empty() => {
                self.protocol_error(Reply::new(503, "5.5.2 Need rcpt command"));
                return;
            }
            Some(t) if t.transfer.is_some() => {
                self.protocol_error(eop::bad_sequence());
                return;
            }
            Some(_) => {}
        }
        if self.command_fault(Stage::Data) {
            return;
        }
        let now = self.cur;
        if let Some(t) = self.txn.as_mut() {
            t.transfer = Some(Transfer::Data);
            t.data_started = Some(now);
            t.body.clear();
            t.body.reserve(t.declared_size.clamp(4096, 1 << 20) + 8);
        }
        self.reply(eop::start_mail_input());
        self.phase = Phase::Data(DotReceiver::new());
    }

    /// BDAT `size` [LAST]: sequence checks, the fault at the first chunk, the size limit; then
    /// the chunk is read (or read and thrown away when refused).
    pub(super) fn bdat(&mut self, size: usize, last: bool) {
        let Some(body_len) = self.bdat_accepts(size) else {
            return;
        };
        // Checked before a byte of the chunk is buffered; a declared size near usize::MAX must
        // not wrap around (issue 12: `BDAT 18446744073709551614 LAST` after `BDAT 2`).
        let total = body_len.checked_add(size).map(|t| t as u64);
        if total.is_none_or(|t| t > self.cfg().limits.max_message_size) {
            self.txn = None;
            let close = self.cfg().limits.oversize_bdat == OversizeBdat::Close;
            self.info(format!(
                "message discarded: BDAT chunk of {size} bytes after {body_len} passes the size limit"
            ));
            if close {
                self.reply(eop::message_too_large());
                self.close(CloseReason::Limit);
                return;
            }
            return self.bdat_refuse(size, eop::message_too_large(), false, false);
        }
        let now = self.cur;
        if let Some(t) = self.txn.as_mut()
            && t.transfer.is_none()
        {
            t.transfer = Some(Transfer::Bdat);
            t.data_started = Some(now);
            t.body.reserve(size.min(1 << 20));
        }
        if size == 0 {
            self.bdat_chunk_done(0, last);
        } else {
            self.phase = Phase::Bdat {
                recv: BdatReceiver::new(size, last),
                size,
            };
        }
    }

    /// The body length so far when a BDAT chunk may be read; `None` when it was refused (its
    /// chunk is then discarded) or a fault dropped the connection.
    fn bdat_accepts(&mut self, size: usize) -> Option<usize> {
        let state = self
            .txn
            .as_ref()
            .map(|t| (t.rcpts.is_empty(), t.transfer, t.body.len()));
        match state {
            None => {
                let r = Reply::new(503, "5.5.2 Need mail command");
                self.bdat_refuse(size, r, true, false);
                None
            }
            Some((true, _, _)) => {
                let r = Reply::new(503, "5.5.2 Need rcpt command");
                self.bdat_refuse(size, r, true, false);
                None
            }
            Some((false, Some(Transfer::Data), _)) => {
                self.bdat_refuse(size, eop::bad_sequence(), true, false);
                None
            }
            Some((false, Some(Transfer::Bdat), len)) => Some(len),
            Some((false, None, len)) => match self.stage_fault(Stage::Data) {
                StageFault::Proceed => Some(len),
                StageFault::Reply(r, close) => {
                    self.bdat_refuse(size, r, false, close);
                    None
                }
                StageFault::Drop => {
                    self.close(CloseReason::Fault);
                    None
                }
            },
        }
    }

    /// Refuses a BDAT: its chunk is read and thrown away, then `reply` is sent; `counts` when the
    /// refusal is a protocol error.
    fn bdat_refuse(&mut self, size: usize, reply: Reply, counts: bool, close: bool) {
        if counts && !self.count_protocol_error() {
            return;
        }
        if size == 0 {
            self.reply(reply);
            if close {
                self.close(CloseReason::Fault);
            }
        } else {
            self.phase = Phase::BdatDiscard {
                recv: DummyDataReceiver::new_bdat(size),
                reply,
                close,
            };
        }
    }

    /// A BDAT chunk of `size` bytes has been read: the message is complete (LAST), or the chunk
    /// is acknowledged.
    fn bdat_chunk_done(&mut self, size: usize, last: bool) {
        self.phase = Phase::Command;
        if last {
            self.finish_message(0);
        } else {
            let reply = match &self.cfg().replies.bdat_chunk {
                Some(t) => t.render(
                    &self.cfg().endpoint.reject_host,
                    &self.ctx.peer.ip().to_string(),
                    size,
                ),
                None => Reply::new(250, format!("2.6.0 CHUNK received OK, {size} octets")),
            };
            self.reply(reply);
        }
    }

    // ---- the end of data ----

    /// The message is complete; `skip` leading bytes of the body are the DATA primer. The end of
    /// data fault, then the queued reply and the message record (or the fault's reply).
    fn finish_message(&mut self, skip: usize) {
        let Some(mut txn) = self.txn.take() else {
            return;
        };
        let raw: Arc<[u8]> = Arc::from(txn.body.get(skip..).unwrap_or_default());
        txn.body = Vec::new();
        self.info(format!("message data: {} bytes", raw.len()));
        let Some(reply_override) = self.end_of_data_fault() else {
            return;
        };
        self.messages += 1;
        let internal_id = 10_000_000_000_000
            + mix(self.ctx.seed ^ (self.ctx.index << 20) ^ u64::from(self.messages))
                % 90_000_000_000_000;
        let message_id = header_message_id(&raw).unwrap_or_else(|| {
            format!(
                "<{:016x}.{}@{}>",
                internal_id,
                self.messages,
                self.cfg().endpoint.backend_host
            )
        });
        let secs = txn
            .data_started
            .map(|s| (self.cur - s).as_seconds_f64())
            .unwrap_or(0.0);
        let reply = reply_override.unwrap_or_else(|| {
            eop::queued(
                &message_id,
                internal_id,
                &self.cfg().endpoint.backend_host,
                raw.len(),
                secs,
            )
        });
        let message = MessageRecord {
            internal_id,
            message_id,
            session_id: self.record.session_id.clone(),
            received_at: self.cur,
            mail_from: txn.mail_from,
            rcpt_to: txn.rcpts,
            size: raw.len(),
            transfer: txn
                .transfer
                .map(Transfer::as_str)
                .unwrap_or("data")
                .to_string(),
            tls: self.tls_active,
            attribution: txn.verdict,
            cross_premises_honoured: txn.cross_premises,
            reply: reply.clone(),
            raw,
            parsed: None,
        };
        // The message action comes before the 250's write: a driver that records messages
        // durably does so before the client hears the 250.
        self.flush();
        self.record.messages.push(message.clone());
        self.actions.push_back(Action::Message(Box::new(message)));
        self.reply(reply);
        self.flush();
    }

    /// The fault at the end of data: `None` when it answered or dropped (no message), else the
    /// 250 reply a fault puts in place of the queued reply, if any.
    fn end_of_data_fault(&mut self) -> Option<Option<Reply>> {
        match self.stage_fault(Stage::EndOfData) {
            StageFault::Proceed => Some(None),
            StageFault::Reply(r, _) if r.code == 250 => Some(Some(r)),
            StageFault::Reply(r, close) => {
                self.reply(r);
                if close {
                    self.close(CloseReason::Fault);
                }
                None
            }
            StageFault::Drop => {
                self.close(CloseReason::Fault);
                None
            }
        }
    }
}

/// The Message-ID header's value (angle brackets kept), found by a bounded scan of the header
/// section: no MIME parsing on the reply path.
pub(super) fn header_message_id(raw: &[u8]) -> Option<String> {
    let limit = raw.len().min(MESSAGE_ID_SCAN);
    let mut start = 0;
    while start < limit {
        let end = raw[start..limit]
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| start + p)
            .unwrap_or(limit);
        let line = &raw[start..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return None;
        }
        if line.len() > 11 && line[..11].eq_ignore_ascii_case(b"message-id:") {
            let v = String::from_utf8_lossy(&line[11..]).trim().to_string();
            if v.is_empty() {
                return None;
            }
            return Some(if v.starts_with('<') {
                v
            } else {
                format!("<{v}>")
            });
        }
        start = end + 1;
    }
    None
}
