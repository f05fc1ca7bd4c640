//! Rebuilding sessions from their records: one [`SessionEvent`] per line (six lines for a classic
//! certificate block), each with the lines it came from, and replies read back from the log's
//! collapsed form.

use std::net::SocketAddr;

use hybridlab_model::exchange::{DisconnectReason, SecurityStatus};
use hybridlab_model::reply::Reply;

use super::cert_block::{
    CertParts, DnCache, cert_role, one_line_cert_role, parse_one_line_cert_with,
};
use super::read::{
    EventSource, Field, Interner, LogFileInfo, ParsedSession, RawLine, field_text, src_line,
};
use super::{LogKind, ProtocolLogSession, SessionEvent, TimedEvent};
use crate::text::{Evidence, FileLabel};

fn parse_endpoint(s: &str) -> Option<SocketAddr> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    if let Ok(a) = t.parse::<SocketAddr>() {
        return Some(a);
    }
    let (ip, port) = t.rsplit_once(':')?;
    let ip: std::net::IpAddr = ip.trim_matches(['[', ']']).parse().ok()?;
    Some(SocketAddr::new(ip, port.parse().ok()?))
}

/// Splits a collapsed EHLO reply's keywords back into lines.
const EHLO_KEYWORDS: [&str; 36] = [
    "SIZE",
    "PIPELINING",
    "DSN",
    "ENHANCEDSTATUSCODES",
    "STARTTLS",
    "X-ANONYMOUSTLS",
    "AUTH",
    "X-EXPS",
    "8BITMIME",
    "BINARYMIME",
    "CHUNKING",
    "SMTPUTF8",
    "XRDST",
    "XEXCH50",
    "X-LINK2STATE",
    "XSHADOW",
    "XSHADOWREQUEST",
    "XOORG",
    "XPROXY",
    "XPROXYFROM",
    "XPROXYTO",
    "XSESSIONPARAMS",
    "XMSEXCHAUTH",
    "VRFY",
    "EXPN",
    "ETRN",
    "HELP",
    "DELIVERBY",
    "REQUIRETLS",
    "MT-PRIORITY",
    "XCLIENT",
    "XFORWARD",
    "TURN",
    "ATRN",
    "XXXXXXXA",
    "X-MS-EXCHANGE-ORGANIZATION",
];

fn is_known_keyword(t: &str) -> bool {
    EHLO_KEYWORDS.contains(&t)
}

fn looks_like_keyword(t: &str) -> bool {
    t.len() >= 3
        && t.chars().any(|c| c.is_ascii_alphabetic())
        && t.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
}

/// Parses a `<` line's data as a reply: `250 2.1.0 Sender OK`, or the collapsed multi-line form
/// `250  host Hello [ip] SIZE 157286400 PIPELINING ...` (two spaces after the code), split back
/// into one line per EHLO keyword.
pub fn parse_log_reply(text: &str) -> Option<Reply> {
    let Some(body) = text.get(3..).and_then(|r| r.strip_prefix("  ")) else {
        return Reply::parse_line(text);
    };
    // The code alone: the whole line would be copied into a reply only to be split again.
    let code = Reply::parse_line(text.get(..3)?)?.code;
    let mut lines: Vec<String> = Vec::new();
    let mut cur: Vec<&str> = Vec::new();
    let mut cur_keyword: Option<&str> = None;
    for tok in body.split(' ') {
        let starts_line = if lines.is_empty() && cur_keyword.is_none() {
            !cur.is_empty() && is_known_keyword(tok)
        } else {
            is_known_keyword(tok)
                || (looks_like_keyword(tok) && !matches!(cur_keyword, Some("AUTH" | "X-EXPS")))
        };
        if starts_line {
            lines.push(cur.join(" "));
            cur.clear();
            cur_keyword = Some(tok);
        }
        cur.push(tok);
    }
    lines.push(cur.join(" "));
    Some(Reply::multi(code, lines))
}

/// What rebuilding sessions reads: the files' text and what parsing them gave.
pub(super) struct Sources<'a, 't> {
    /// Name and text of each file, in the order added.
    pub(super) texts: &'a [(String, String)],
    /// Per file, the column values unquoting changed ([`Field::Owned`] indexes them).
    pub(super) unquoted: &'a [Vec<String>],
    /// Per file, its header and kind.
    pub(super) files: &'a [LogFileInfo],
    /// The interned connector, session id and endpoint columns of every file.
    pub(super) names: &'a Interner<'t>,
    /// Every record of every file.
    pub(super) lines: &'a [RawLine],
}

impl Sources<'_, '_> {
    fn line(&self, l: &RawLine) -> &str {
        src_line(self.texts, l)
    }

    fn data(&self, l: &RawLine) -> &str {
        self.field(l, l.data)
    }

    fn context(&self, l: &RawLine) -> &str {
        self.field(l, l.context)
    }

    fn field(&self, l: &RawLine, f: Field) -> &str {
        let unquoted = self
            .unquoted
            .get(l.file as usize)
            .map_or(&[][..], Vec::as_slice);
        field_text(self.line(l), unquoted, f)
    }
}

/// Sessions from their lines, with a certificate name cache; the lines of unreadable events
/// are noted for the files' skipped counts.
pub(super) struct Rebuild<'a, 'b, 't> {
    src: &'b Sources<'a, 't>,
    dn: DnCache,
    /// Each file's name, made once (per chunk: threads do not share the reference counts).
    labels: Vec<Option<FileLabel>>,
    /// Indices (in `src.lines`) of lines skipped, in the order met.
    pub(super) skipped: Vec<u32>,
}

impl<'a, 'b, 't> Rebuild<'a, 'b, 't> {
    /// A rebuilder over `src` with empty caches.
    pub(super) fn new(src: &'b Sources<'a, 't>) -> Self {
        Self {
            src,
            dn: DnCache::default(),
            labels: vec![None; src.files.len()],
            skipped: Vec::new(),
        }
    }

    fn label(&mut self, file: u32) -> FileLabel {
        let files = self.src.files;
        match self.labels.get_mut(file as usize) {
            Some(slot) => slot
                .get_or_insert_with(|| FileLabel::from(files[file as usize].file.as_str()))
                .clone(),
            None => FileLabel::default(),
        }
    }

    /// One session from the indices of its lines (in sequence-number order).
    pub(super) fn session(&mut self, idx: &[u32]) -> ParsedSession {
        let src = self.src;
        let files = src.files;
        let names = src.names;
        let lines: Vec<&RawLine> = idx.iter().map(|i| &src.lines[*i as usize]).collect();
        let first = lines[0];
        let connector_id = names.get(first.connector).to_string();
        let session_id = names.get(first.session).to_string();
        let local = lines
            .iter()
            .find_map(|l| parse_endpoint(names.get(l.local)));
        let remote = lines
            .iter()
            .find_map(|l| parse_endpoint(names.get(l.remote)))
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let mut kind_votes = (0usize, 0usize);
        let mut header_kind = None;
        for l in &lines {
            if header_kind.is_none() {
                header_kind = files[l.file as usize].header.kind();
            }
            match l.vote {
                Some(LogKind::Send) => kind_votes.0 += 1,
                Some(LogKind::Receive) => kind_votes.1 += 1,
                None => {}
            }
        }
        let kind = header_kind.or(match kind_votes {
            (0, 0) => files[first.file as usize].kind,
            (s, r) if s >= r => Some(LogKind::Send),
            _ => Some(LogKind::Receive),
        });

        let mut events = Vec::with_capacity(lines.len());
        let mut sources = Vec::with_capacity(lines.len());
        let mut i = 0;
        while i < lines.len() {
            let l = lines[i];
            let mut consumed = 1;
            let mut validity = false;
            let data = src.data(l);
            // Exchange 2013-2016 builds log a multi-line reply one line per keyword
            // (`250-host Hello [ip]`, `250-STARTTLS`, ..., `250 CHUNKING`): one event again.
            if matches!(l.event, b'<' | b'>')
                && data.as_bytes().get(3) == Some(&b'-')
                && let Some((event, n)) = self.split_reply(&lines[i..], data)
            {
                consumed = n;
                events.push(TimedEvent { at: l.at, event });
                sources.push(self.source_of(&lines[i..i + n], l.seq, false));
                i += consumed;
                continue;
            }
            let event = match l.event {
                b'+' => Some(SessionEvent::Connected),
                b'-' => {
                    let ctx = src.context(l);
                    let reason_text = if ctx.trim().is_empty() {
                        data.trim()
                    } else {
                        ctx.trim()
                    };
                    reason_text
                        .parse::<DisconnectReason>()
                        .ok()
                        .map(|reason| SessionEvent::Disconnected { reason })
                }
                b'>' => Some(SessionEvent::Sent {
                    line: data.to_string(),
                }),
                b'<' => Some(match parse_log_reply(data) {
                    Some(reply) => SessionEvent::Received { reply },
                    None => SessionEvent::ReceivedLine {
                        line: data.to_string(),
                    },
                }),
                _ => Some(self.info_event(&lines[i..], &mut consumed, &mut validity)),
            };
            match event {
                Some(event) => {
                    events.push(TimedEvent { at: l.at, event });
                    sources.push(self.source_of(&lines[i..i + consumed], l.seq, validity));
                }
                None => self.skipped.push(idx[i]),
            }
            i += consumed;
        }
        ParsedSession {
            kind,
            session: ProtocolLogSession {
                connector_id,
                session_id,
                local,
                remote,
                events,
            },
            sources,
        }
    }

    /// Where an event made of `lines` came from.
    fn source_of(&mut self, lines: &[&RawLine], sequence: u32, validity: bool) -> EventSource {
        let src = self.src;
        EventSource {
            lines: lines
                .iter()
                .map(|x| Evidence {
                    file: self.label(x.file),
                    line: x.line_no,
                    text: src.line(x).to_string(),
                })
                .collect(),
            sequence,
            cert_validity_logged: validity,
        }
    }

    /// A reply logged one line per reply line (`250-...` lines then `250 ...`, all with the same
    /// event character and code): the event it makes and how many lines it took. A send log's
    /// `<` lines become one [`SessionEvent::Received`] multi-line reply; a receive log's `>` lines
    /// become one [`SessionEvent::Sent`] line in the collapsed layout newer builds write
    /// (`250  host Hello [ip] SIZE ... STARTTLS ...`), so both layouts read the same. `None`
    /// unless the first line (whose data column is `data`) is a `ddd-` continuation line.
    fn split_reply(&self, lines: &[&RawLine], data: &str) -> Option<(SessionEvent, usize)> {
        let src = self.src;
        let first = lines[0];
        let b = data.as_bytes();
        if b.len() < 4 || !b[..3].iter().all(u8::is_ascii_digit) || b[3] != b'-' {
            return None;
        }
        let code = &data[..3];
        let mut texts: Vec<&str> = vec![&data[4..]];
        let mut n = 1;
        while let Some(next) = lines.get(n) {
            let d = src.data(next);
            if next.event != first.event || !d.starts_with(code) {
                break;
            }
            let sep = d.as_bytes().get(3).copied();
            if !matches!(sep, Some(b'-' | b' ') | None) {
                break;
            }
            texts.push(d.get(4..).unwrap_or(""));
            n += 1;
            if sep != Some(b'-') {
                break;
            }
        }
        let event = if first.event == b'<' {
            let reply = Reply::parse_line(code)?;
            SessionEvent::Received {
                reply: Reply::multi(reply.code, texts.iter().map(|t| t.to_string()).collect()),
            }
        } else {
            SessionEvent::Sent {
                line: format!("{code}  {}", texts.join(" ")),
            }
        };
        Some((event, n))
    }

    /// The event of the `*` line `lines[0]` (with the lines after it for a classic certificate
    /// block: `consumed` says how many).
    fn info_event(
        &mut self,
        lines: &[&RawLine],
        consumed: &mut usize,
        validity: &mut bool,
    ) -> SessionEvent {
        let src = self.src;
        let (data, ctx) = (src.data(lines[0]), src.context(lines[0]));
        if let (true, Some(role)) = (data.is_empty(), cert_role(ctx)) {
            let mut parts = CertParts::default();
            let mut n = 1;
            while let Some(next) = lines.get(n) {
                if next.event != b'*' || !parts.take(src.context(next), src.data(next)) {
                    break;
                }
                n += 1;
            }
            if n > 1 {
                *consumed = n;
                SessionEvent::Certificate {
                    role,
                    cert: parts.into_facts(&mut self.dn),
                }
            } else {
                SessionEvent::Info {
                    data: String::new(),
                    context: ctx.to_string(),
                }
            }
        } else if let Some(role) = one_line_cert_role(ctx).filter(|_| !data.is_empty()) {
            match parse_one_line_cert_with(data, &mut self.dn) {
                Some(cert) => {
                    *validity = true;
                    SessionEvent::Certificate { role, cert }
                }
                None => SessionEvent::Info {
                    data: data.to_string(),
                    context: ctx.to_string(),
                },
            }
        } else if data.is_empty() && ctx.eq_ignore_ascii_case("attempting to connect") {
            SessionEvent::AttemptingConnect
        } else if data.is_empty()
            && ctx.starts_with("TLS protocol ")
            && ctx.contains("negotiation succeeded")
        {
            SessionEvent::TlsNegotiated {
                text: ctx.to_string(),
            }
        } else if let Some(status) = SecurityStatus::from_log_text(ctx).filter(|_| data.is_empty())
        {
            SessionEvent::TlsFailed { status }
        } else {
            SessionEvent::Info {
                data: data.to_string(),
                context: ctx.to_string(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapsed_ehlo_replies_split_back_into_keywords() {
        let r = parse_log_reply("250  AM5EUR02FT017.mail.protection.outlook.com Hello [198.51.100.10] SIZE 157286400 PIPELINING DSN ENHANCEDSTATUSCODES STARTTLS 8BITMIME BINARYMIME CHUNKING SMTPUTF8").unwrap();
        assert_eq!(r.code, 250);
        assert_eq!(
            r.lines[0],
            "AM5EUR02FT017.mail.protection.outlook.com Hello [198.51.100.10]"
        );
        assert_eq!(r.lines[1], "SIZE 157286400");
        assert!(r.lines.iter().any(|l| l == "STARTTLS"));
        let r = parse_log_reply("250  mail.contoso.com Hello [40.107.22.55] SIZE 37748736 PIPELINING DSN ENHANCEDSTATUSCODES STARTTLS X-ANONYMOUSTLS AUTH NTLM X-EXPS GSSAPI NTLM 8BITMIME BINARYMIME CHUNKING XRDST XXXXXXXA XFOO").unwrap();
        assert!(r.lines.contains(&"AUTH NTLM".to_string()));
        assert!(r.lines.contains(&"X-EXPS GSSAPI NTLM".to_string()));
        assert_eq!(r.lines.last().unwrap(), "XFOO");
        assert_eq!(
            parse_log_reply("421 4.4.1 Connection timed out").unwrap(),
            Reply::new(421, "4.4.1 Connection timed out")
        );
        assert!(parse_log_reply("EHLO x").is_none());
    }
}
