//! Command framing: lines out of the byte stream (so the line-length limit holds and the record
//! does not depend on how the input was chunked), smtp-proto's `Request::parse`, and the count of
//! protocol errors that ends a session after `max_protocol_errors`.

use smtp_proto::Request;

use super::Session;
use hybridlab_model::record::{CloseReason, TranscriptEntry};
use hybridlab_model::reply::{Reply, eop};

impl Session {
    /// Frames command lines out of `bytes`; returns what is left for the next phase.
    pub(super) fn command_bytes<'b>(&mut self, bytes: &'b [u8]) -> &'b [u8] {
        match bytes.iter().position(|&b| b == b'\n') {
            Some(pos) => {
                let (head, rest) = bytes.split_at(pos + 1);
                self.line_end(head);
                rest
            }
            None => {
                self.partial_line(bytes);
                &[]
            }
        }
    }

    /// `head` ends a line (its last byte is the LF): the line is run, or refused as too long.
    fn line_end(&mut self, head: &[u8]) {
        let max = self.cfg().limits.max_line_length;
        let total = if self.line_overflow > 0 {
            Some(std::mem::take(&mut self.line_overflow) + head.len())
        } else {
            (self.line.len() + head.len() > max).then_some(self.line.len() + head.len())
        };
        if let Some(total) = total {
            self.line.clear();
            self.info(format!("command line too long: {total} bytes"));
            self.protocol_error(eop::line_too_long());
            return;
        }
        if self.line.is_empty() {
            self.command_line(head);
        } else {
            let mut line = std::mem::take(&mut self.line);
            line.extend_from_slice(head);
            self.command_line(&line);
            // Keep the allocation for the next partial line.
            line.clear();
            if self.line.is_empty() {
                self.line = line;
            }
        }
    }

    /// `bytes` holds no LF: kept for the rest of the line, or only counted once the line is too
    /// long.
    fn partial_line(&mut self, bytes: &[u8]) {
        let max = self.cfg().limits.max_line_length;
        if self.line_overflow > 0 {
            self.line_overflow += bytes.len();
        } else if self.line.len() + bytes.len() > max {
            self.line_overflow = self.line.len() + bytes.len();
            self.line.clear();
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    /// Records the line, parses it and dispatches it, or answers the parse error.
    fn command_line(&mut self, line: &[u8]) {
        let shown = String::from_utf8_lossy(line)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        self.record.transcript.push(TranscriptEntry::Command {
            at: self.cur,
            line: shown,
        });
        match Request::parse(&mut line.iter()).map(Request::into_owned) {
            Ok(req) => self.request(req),
            Err(e) => self.parse_error(line, e),
        }
    }

    /// Counts a protocol error and answers `reply`, or `421 4.7.0 Too many errors` and close once
    /// the limit is passed.
    pub(super) fn protocol_error(&mut self, reply: Reply) {
        if self.count_protocol_error() {
            self.reply(reply);
        }
    }

    /// Counts a protocol error; `false` when that passed the limit and the session was closed.
    pub(super) fn count_protocol_error(&mut self) -> bool {
        self.record.protocol_errors += 1;
        if self.record.protocol_errors > self.cfg().limits.max_protocol_errors {
            self.reply(eop::too_many_errors());
            self.close(CloseReason::TooManyErrors);
            return false;
        }
        true
    }
}
