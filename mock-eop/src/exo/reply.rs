//! Reply framing for the Exchange Online client: bytes in, complete replies out. Lines keep
//! their text verbatim (enhanced codes included); a multi-line reply ends at the first line
//! whose code is followed by a space (or nothing). Bounded: a line longer than
//! [`MAX_LINE`] or a reply of more than [`MAX_LINES`] lines is a protocol error, so arbitrary
//! server bytes cannot make the buffer grow without limit.

use hybridlab_model::reply::Reply;

/// Longest reply line accepted, in bytes (RFC 5321 allows 512; Exchange writes up to 2,000).
pub const MAX_LINE: usize = 8_192;
/// Most lines one reply may have.
pub const MAX_LINES: usize = 512;

/// The server sent something that is not an SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an SMTP reply: {0}")]
pub struct ReplyError(pub String);

/// Incremental reply reader; after an error it returns nothing more.
#[derive(Debug, Default)]
pub struct ReplyReader {
    partial: Vec<u8>,
    lines: Vec<String>,
    code: Option<u16>,
    broken: bool,
}

impl ReplyReader {
    /// Feeds bytes; returns every reply they complete, in order (an error ends the list).
    pub fn push(&mut self, data: &[u8]) -> Vec<Result<Reply, ReplyError>> {
        let mut out = Vec::new();
        if self.broken {
            return out;
        }
        let mut rest = data;
        while let Some(pos) = memchr_lf(rest) {
            self.partial.extend_from_slice(&rest[..pos]);
            rest = &rest[pos + 1..];
            let line = std::mem::take(&mut self.partial);
            match self.line(&line) {
                Ok(Some(reply)) => out.push(Ok(reply)),
                Ok(None) => {}
                Err(e) => {
                    self.broken = true;
                    out.push(Err(e));
                    return out;
                }
            }
        }
        self.partial.extend_from_slice(rest);
        if self.partial.len() > MAX_LINE {
            self.broken = true;
            out.push(Err(ReplyError(format!(
                "a reply line longer than {MAX_LINE} bytes"
            ))));
        }
        out
    }

    /// Drops anything buffered (after STARTTLS: plaintext bytes must not reach the TLS session).
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    fn line(&mut self, raw: &[u8]) -> Result<Option<Reply>, ReplyError> {
        let text = String::from_utf8_lossy(raw);
        let text = text.trim_end_matches('\r');
        if text.len() > MAX_LINE {
            return Err(ReplyError(format!(
                "a reply line longer than {MAX_LINE} bytes"
            )));
        }
        let b = text.as_bytes();
        let code = (b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit))
            .then(|| text[..3].parse::<u16>().ok())
            .flatten()
            .filter(|c| (200..=599).contains(c))
            .ok_or_else(|| ReplyError(shorten(text)))?;
        let (last, body) = match b.get(3) {
            None => (true, ""),
            Some(b' ') => (true, &text[4..]),
            Some(b'-') => (false, &text[4..]),
            Some(_) => return Err(ReplyError(shorten(text))),
        };
        if *self.code.get_or_insert(code) != code {
            return Err(ReplyError(format!(
                "reply code changed within a reply: {}",
                shorten(text)
            )));
        }
        self.lines.push(body.to_string());
        if self.lines.len() > MAX_LINES {
            return Err(ReplyError(format!(
                "a reply of more than {MAX_LINES} lines"
            )));
        }
        if !last {
            return Ok(None);
        }
        self.code = None;
        Ok(Some(Reply::multi(code, std::mem::take(&mut self.lines))))
    }
}

fn memchr_lf(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

fn shorten(s: &str) -> String {
    let cut: String = s.chars().take(80).collect();
    if cut.len() < s.len() {
        format!("{cut}...")
    } else {
        cut
    }
}

/// What an EHLO reply offers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `STARTTLS`.
    pub starttls: bool,
    /// `CHUNKING` (BDAT).
    pub chunking: bool,
    /// `XOORG` (the sender names its organisation in MAIL FROM).
    pub xoorg: bool,
    /// `SIZE`, with the limit when given.
    pub size: Option<u64>,
}

impl Capabilities {
    /// Reads the keyword lines of an EHLO reply (the first line is the greeting).
    pub fn from_ehlo(reply: &Reply) -> Self {
        let mut c = Self::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_whitespace();
            let Some(kw) = words.next() else { continue };
            match kw.to_ascii_uppercase().as_str() {
                "STARTTLS" => c.starttls = true,
                "CHUNKING" => c.chunking = true,
                "XOORG" => c.xoorg = true,
                "SIZE" => c.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                _ => {}
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_replies_across_chunks() {
        let mut r = ReplyReader::default();
        assert!(
            r.push(b"220 mail.contoso.com Microsoft ESMTP MAIL Service re")
                .is_empty()
        );
        let out = r.push(b"ady\r\n250-mail.contoso.com Hello [40.92.0.1]\r\n250-SIZE 37748736\r\n250-STARTTLS\r\n250-XOORG\r\n250 CHUNKING\r\n");
        assert_eq!(out.len(), 2);
        let ehlo = out[1].as_ref().unwrap();
        assert_eq!(ehlo.code, 250);
        assert_eq!(ehlo.lines.len(), 5);
        let caps = Capabilities::from_ehlo(ehlo);
        assert!(caps.starttls && caps.chunking && caps.xoorg);
        assert_eq!(caps.size, Some(37_748_736));
        let out = r.push(b"452 4.3.1 Insufficient system resources (UsedDiskSpace[C:\\Queue])\n");
        assert_eq!(
            out[0].as_ref().unwrap().one_line(),
            "452 4.3.1 Insufficient system resources (UsedDiskSpace[C:\\Queue])"
        );
    }

    #[test]
    fn garbage_and_floods_are_errors() {
        let mut r = ReplyReader::default();
        assert!(r.push(b"\x16\x03\x01 hello\r\n")[0].is_err());
        assert!(r.push(b"220 ok\r\n").is_empty());
        let mut r = ReplyReader::default();
        assert!(r.push(&vec![b'2'; MAX_LINE + 1])[0].is_err());
        let mut r = ReplyReader::default();
        assert!(r.push(b"250-a\r\n251 b\r\n")[0].is_err());
        let mut r = ReplyReader::default();
        let flood = b"250-x\r\n".repeat(MAX_LINES + 1);
        assert!(r.push(&flood).iter().any(Result::is_err));
    }
}
