//! Frames SMTP replies with smtp-proto's [`ResponseReceiver`] and keeps their text verbatim.
//!
//! smtp-proto strips the enhanced status code into three `u8`s, which cannot hold Exchange's
//! `4.4.395`; so the receiver only finds where a reply ends, and the raw lines become a
//! [`Reply`] whose lines keep the enhanced code as part of the text. EHLO capabilities are read with
//! smtp-proto's [`EhloResponse`].

use hybridlab_model::reply::Reply;
use smtp_proto::response::parser::ResponseReceiver;
use smtp_proto::{EhloResponse, Error as SmtpError};

/// A reply that could not be framed (garbage from the server).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed reply from the server: {0}")]
pub struct ReplyError(pub String);

/// Frames the server's byte stream into replies as the bytes arrive (a reply may span reads, a
/// read may hold several pipelined replies).
#[derive(Default)]
pub struct ReplyReader {
    rx: ResponseReceiver,
    raw: Vec<u8>,
}

impl std::fmt::Debug for ReplyReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyReader")
            .field("buffered", &self.raw.len())
            .finish_non_exhaustive()
    }
}

/// One framed reply with its raw bytes (for EHLO parsing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawReply {
    /// The reply as parsed: code, enhanced status code, text lines.
    pub reply: Reply,
    /// The bytes it came in.
    pub raw: Vec<u8>,
}

impl RawReply {
    /// Parses the reply as an EHLO response (capability flags and SIZE).
    pub fn ehlo(&self) -> Option<EhloResponse<String>> {
        EhloResponse::parse(&mut self.raw.iter()).ok()
    }
}

impl ReplyReader {
    /// A reader that has seen no bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns every reply completed by them. After an error the reader is unusable.
    pub fn push(&mut self, data: &[u8]) -> Vec<Result<RawReply, ReplyError>> {
        let mut out = Vec::new();
        let mut rest = data;
        // bounded: each iteration consumes at least one byte or ends
        while !rest.is_empty() {
            let mut it = rest.iter();
            let res = self.rx.parse(&mut it);
            let used = rest.len() - it.len();
            self.raw.extend_from_slice(&rest[..used]);
            rest = &rest[used..];
            match res {
                Ok(_) => {
                    let raw = std::mem::take(&mut self.raw);
                    self.rx.reset();
                    out.push(to_reply(raw));
                }
                Err(SmtpError::NeedsMoreData { .. }) => {
                    if used == 0 {
                        break;
                    }
                }
                Err(e) => {
                    out.push(Err(ReplyError(format!("{e:?}"))));
                    break;
                }
            }
        }
        out
    }

    /// Bytes of an incomplete reply still buffered.
    pub fn buffered(&self) -> usize {
        self.raw.len()
    }
}

fn to_reply(raw: Vec<u8>) -> Result<RawReply, ReplyError> {
    let text = String::from_utf8_lossy(&raw);
    let mut code = None;
    let mut lines = Vec::new();
    for l in text.split('\n') {
        let l = l.trim_end_matches('\r');
        if l.is_empty() {
            continue;
        }
        let r = Reply::parse_line(l).ok_or_else(|| ReplyError(l.to_string()))?;
        code.get_or_insert(r.code);
        lines.push(r.text().to_string());
    }
    let code = code.ok_or_else(|| ReplyError("empty reply".into()))?;
    Ok(RawReply {
        reply: Reply::multi(code, lines),
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_and_multiline_replies() {
        let mut r = ReplyReader::new();
        assert!(
            r.push(b"220 host ESMTP ready\r\n250-host Hello [127.0.0.1]\r\n250-SIZE 157")
                .len()
                == 1
        );
        let out = r.push(b"286400\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 CHUNKING\r\n451 4.4.395 Target host responded with error. -> 421 4.4.1 Connection timed out\r\n");
        assert_eq!(out.len(), 2);
        let ehlo = out[0].as_ref().unwrap();
        assert_eq!(ehlo.reply.lines.len(), 5);
        let caps = ehlo.ehlo().unwrap();
        assert_eq!(caps.size, 157286400);
        assert!(caps.capabilities & smtp_proto::EXT_START_TLS != 0);
        assert!(caps.capabilities & smtp_proto::EXT_CHUNKING != 0);
        let r2 = &out[1].as_ref().unwrap().reply;
        assert_eq!(
            r2.one_line(),
            "451 4.4.395 Target host responded with error. -> 421 4.4.1 Connection timed out"
        );
        assert_eq!(r.buffered(), 0);
        let mut g = ReplyReader::new();
        let out = g.push(b"\x16\x03\x01\x02\x00garbage\r\n");
        assert!(out.iter().any(Result::is_err));
    }
}
