//! DATA content framing: the end of data is `<CRLF>.<CRLF>` and nothing else, a line that starts
//! with a dot loses that dot (RFC 5321 4.5.2), and bare CR / bare LF are counted (kept in the
//! body, never a terminator).
//!
//! smtp-proto's `DataReceiver` also ends the data at `<CRLF>.<CR><CR><LF>` (any run of CRs after
//! the dot), which lets a second message be smuggled after it (issue 12): this receiver replaces
//! it. The state machine looks at one byte at a time only around line ends; the rest of a line is
//! copied in one slice (found with `memchr2`).

/// Where the receiver is between two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line (after `<CRLF>`, or at the very start of the data).
    LineStart,
    /// `<CRLF>.` seen (the dot is not in the body).
    Dot,
    /// `<CRLF>.<CR>` seen (the CR is not in the body yet).
    DotCr,
    /// Inside a line.
    Mid,
    /// A CR seen inside a line (it is in the body).
    Cr,
}

/// Reads DATA content up to `<CRLF>.<CRLF>`; what it keeps goes to a sink (or nowhere, for a
/// message that is being discarded).
#[derive(Debug, Clone)]
pub(super) struct DotReceiver {
    state: State,
    /// Bytes of content seen so far (after dot-unstuffing), kept or not.
    pub(super) seen: u64,
    /// Bare CRs and bare LFs seen (a CR not followed by LF, an LF not preceded by CR).
    pub(super) bare: u64,
}

impl DotReceiver {
    /// At the start of the data (right after `354`).
    pub(super) fn new() -> Self {
        Self {
            state: State::LineStart,
            seen: 0,
            bare: 0,
        }
    }

    /// Reads `bytes`, appending content to `sink` (when given); returns how many bytes were used
    /// and whether the end of data was reached (the rest belongs to the next command).
    pub(super) fn ingest(&mut self, bytes: &[u8], mut sink: Option<&mut Vec<u8>>) -> (usize, bool) {
        let mut push = |s: &[u8], seen: &mut u64| {
            *seen += s.len() as u64;
            if let Some(v) = sink.as_deref_mut() {
                v.extend_from_slice(s);
            }
        };
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match self.state {
                State::Mid => {
                    // Copy up to the next CR or LF in one go.
                    let rest = &bytes[i..];
                    let n = memchr::memchr2(b'\r', b'\n', rest).unwrap_or(rest.len());
                    push(&rest[..n], &mut self.seen);
                    i += n;
                    if n < rest.len() {
                        self.line_end_byte(rest[n], &mut push);
                        i += 1;
                    }
                    continue;
                }
                State::LineStart => {
                    if b == b'.' {
                        self.state = State::Dot;
                    } else {
                        self.line_end_or_mid(b, &mut push);
                    }
                }
                State::Dot => {
                    if b == b'\r' {
                        self.state = State::DotCr;
                    } else {
                        // A stuffed dot: removed; the byte is an ordinary one.
                        self.line_end_or_mid(b, &mut push);
                    }
                }
                State::DotCr => {
                    if b == b'\n' {
                        return (i + 1, true);
                    }
                    // `.<CR>` then not LF: the CR was a bare CR of a line that started with a
                    // (stuffed) dot; the byte is read after it.
                    push(b"\r", &mut self.seen);
                    self.state = State::Cr;
                    self.line_end_byte(b, &mut push);
                }
                State::Cr => self.line_end_byte(b, &mut push),
            }
            i += 1;
        }
        (bytes.len(), false)
    }

    /// An ordinary byte, or a CR/LF, at a line start or after a stuffed dot.
    fn line_end_or_mid(&mut self, b: u8, push: &mut impl FnMut(&[u8], &mut u64)) {
        if b == b'\r' || b == b'\n' {
            self.state = State::Mid;
            self.line_end_byte(b, push);
        } else {
            push(&[b], &mut self.seen);
            self.state = State::Mid;
        }
    }

    /// A byte after `Mid` or `Cr` found a CR or LF, or any byte in state `Cr`.
    fn line_end_byte(&mut self, b: u8, push: &mut impl FnMut(&[u8], &mut u64)) {
        let after_cr = self.state == State::Cr;
        push(&[b], &mut self.seen);
        self.state = match (after_cr, b) {
            (true, b'\n') => State::LineStart,
            (true, b'\r') => {
                self.bare += 1; // the previous CR
                State::Cr
            }
            (true, _) => {
                self.bare += 1;
                State::Mid
            }
            (false, b'\r') => State::Cr,
            (false, b'\n') => {
                self.bare += 1;
                State::Mid
            }
            (false, _) => State::Mid,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (body, end reached, bytes used, bare count)
    fn run(input: &[u8]) -> (Vec<u8>, bool, usize, u64) {
        let mut r = DotReceiver::new();
        let mut body = Vec::new();
        let (used, done) = r.ingest(input, Some(&mut body));
        (body, done, used, r.bare)
    }

    #[test]
    fn only_crlf_dot_crlf_ends() {
        assert_eq!(run(b".\r\n"), (vec![], true, 3, 0));
        assert_eq!(run(b"a\r\n.\r\nMAIL"), (b"a\r\n".to_vec(), true, 6, 0));
        // The smuggling variants of issue 12 stay in the body.
        let (body, done, _, bare) = run(b"a\r\n.\r\r\nMAIL FROM:<x@y>\r\n");
        assert!(!done);
        assert_eq!(body, b"a\r\n\r\r\nMAIL FROM:<x@y>\r\n");
        assert_eq!(bare, 1);
        assert!(!run(b"a\r\n.\r\r\r\n").1);
        assert!(!run(b"a\n.\n").1);
        assert!(!run(b"a\r\n.\n").1);
        assert!(!run(b"a\n.\r\n").1);
    }

    #[test]
    fn stuffed_dots_and_bare_endings() {
        assert_eq!(run(b"..x\r\n.\r\n").0, b".x\r\n");
        assert_eq!(
            run(b"a\rb\nc\r\n.\r\n"),
            (b"a\rb\nc\r\n".to_vec(), true, 10, 2)
        );
    }

    #[test]
    fn any_split_gives_the_same_result() {
        let input = b"x\r\n..y\r\n.\r\r\n.\rz\r\n.\r\nQUIT\r\n";
        let (whole, done, used, bare) = run(input);
        assert!(done);
        for cut in 0..used {
            let mut r = DotReceiver::new();
            let mut body = Vec::new();
            let (a, d1) = r.ingest(&input[..cut], Some(&mut body));
            assert_eq!(a, cut);
            assert!(!d1);
            let (b, d2) = r.ingest(&input[cut..], Some(&mut body));
            assert!(d2);
            assert_eq!(
                (body.as_slice(), cut + b, r.bare),
                (whole.as_slice(), used, bare)
            );
        }
    }
}
