//! PowerShell `Format-List` text: the writer and the reader every listing shares.
//!
//! Shape (Windows PowerShell 5.1 and PowerShell 7):
//! ```text
//!
//!
//! AccessRules        : {System.Security.AccessControl.CryptoKeyAccessRule,
//!                      System.Security.AccessControl.CryptoKeyAccessRule}
//! CertificateDomains : {mail.contoso.com, autodiscover.contoso.com}
//! HasPrivateKey      : True
//!
//! AccessRules        : ...
//! ```
//! - each line is `Name : Value`, names padded to the longest name of that object;
//! - collections print as `{a, b}`, cut after `$FormatEnumerationLimit` (4) items as `{a, b, c, d...}`;
//! - a value longer than the line wraps onto continuation lines indented to the value column:
//!   at word boundaries (the space at the break is dropped), and a word longer than the line is
//!   cut at the line width. `Out-File` uses 80 columns in Windows PowerShell unless `-Width`, and
//!   a line holds at most width - 1 characters;
//! - objects are separated by a blank line; the output starts with two blank lines and ends with
//!   two.
//!
//! The reader joins wrapped values back (with a space, except after a line that is exactly at the
//! file's widest width and holds a single cut word), starts a new object when a property name
//! repeats (so blank lines pasted between properties do no harm), and counts lines it cannot place
//! (prompts, table output, garbage) as skipped.

use super::ps::{PsObject, PsProperty, PsValue};
use super::text::{Evidence, LineEnding, Skipped, split_lines};

/// How to render a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlOptions {
    /// Console / `Out-File -Width` columns; a line holds at most `width - 1` characters.
    pub width: usize,
    /// `$FormatEnumerationLimit`: collections show this many items then `...` (`None`: all).
    pub enumeration_limit: Option<usize>,
    /// Line ends.
    pub line_ending: LineEnding,
}

impl Default for FlOptions {
    /// Windows PowerShell 5.1 `Out-File`: 80 columns, 4 items, CRLF.
    fn default() -> Self {
        Self {
            width: 80,
            enumeration_limit: Some(4),
            line_ending: LineEnding::CrLf,
        }
    }
}

impl FlOptions {
    /// Everything shown, no wrapping limit below 4096 columns (a lossless lab export).
    pub fn lossless() -> Self {
        Self {
            width: 4096,
            enumeration_limit: None,
            line_ending: LineEnding::CrLf,
        }
    }
}

/// One object to render: property names and values in order.
pub type FlRecord = Vec<(String, PsValue)>;

/// Renders objects the way `Format-List` prints them.
pub fn render(objects: &[FlRecord], opts: &FlOptions) -> String {
    let eol = opts.line_ending.as_str();
    let mut out = String::new();
    out.push_str(eol);
    out.push_str(eol);
    for (i, obj) in objects.iter().enumerate() {
        if i > 0 {
            out.push_str(eol);
        }
        let label_w = obj
            .iter()
            .map(|(n, _)| n.chars().count())
            .max()
            .unwrap_or(0);
        let value_col = label_w + 3;
        let avail = opts
            .width
            .saturating_sub(1)
            .saturating_sub(value_col)
            .max(1);
        for (name, value) in obj {
            let text = value.display(opts.enumeration_limit);
            let pad = label_w - name.chars().count();
            out.push_str(name);
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(" :");
            let lines = wrap(&text, avail);
            for (k, l) in lines.iter().enumerate() {
                if k == 0 {
                    if !l.is_empty() {
                        out.push(' ');
                        out.push_str(l);
                    }
                } else {
                    out.extend(std::iter::repeat_n(' ', value_col));
                    out.push_str(l);
                }
                out.push_str(eol);
            }
        }
    }
    out.push_str(eol);
    out.push_str(eol);
    out
}

/// Word-wraps `text` into lines of at most `avail` characters (PowerShell's list-view wrapping:
/// break at spaces, the space at a break is dropped, a word longer than a line is cut into
/// full-width pieces starting on a line of its own).
fn wrap(text: &str, avail: usize) -> Vec<String> {
    if text.chars().count() <= avail {
        return vec![text.to_string()];
    }
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut cur_len = 0usize;
    let mut started = false;
    for word in text.split(' ') {
        let wlen = word.chars().count();
        if started && cur_len + 1 + wlen <= avail {
            cur.push(' ');
            cur.push_str(word);
            cur_len += 1 + wlen;
            continue;
        }
        if started {
            lines.push(std::mem::take(&mut cur));
        }
        if wlen <= avail {
            cur = word.to_string();
            cur_len = wlen;
        } else {
            let chars: Vec<char> = word.chars().collect();
            let mut chunks = chars.chunks(avail).peekable();
            while let Some(chunk) = chunks.next() {
                let s: String = chunk.iter().collect();
                if chunks.peek().is_some() {
                    lines.push(s);
                } else {
                    cur_len = chunk.len();
                    cur = s;
                }
            }
        }
        started = true;
    }
    if started {
        lines.push(cur);
    }
    lines
}

/// A parsed listing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FlDocument {
    /// Objects in order.
    pub objects: Vec<PsObject>,
    /// Lines that were neither properties nor continuations.
    pub skipped: Skipped,
}

struct PendingProp {
    name: String,
    first_line: usize,
    first_text: String,
    /// (segment text, physical line length)
    segments: Vec<(String, usize)>,
}

#[derive(Default)]
struct PendingObj {
    props: Vec<PsProperty>,
    colon_col: Option<usize>,
    consistent: bool,
}

/// Parses `Format-List` text. `file` names the source in evidence.
pub fn parse(file: &str, text: &str) -> FlDocument {
    let lines: Vec<&str> = split_lines(text).collect();
    let width = lines
        .iter()
        .map(|l| l.trim_end().chars().count())
        .max()
        .unwrap_or(0);
    let mut doc = FlDocument::default();
    let mut obj = PendingObj::default();
    let mut prop: Option<PendingProp> = None;
    let mut saw_blank = false;

    for (idx, raw) in lines.iter().enumerate() {
        let line_no = idx + 1;
        let line = raw.trim_end();
        if line.trim().is_empty() {
            saw_blank = true;
            if let Some(p) = prop.take() {
                finish_prop(file, p, width, &mut obj);
            }
            continue;
        }
        if let Some((name, colon_col, value)) = property_line(line) {
            if let Some(p) = prop.take() {
                finish_prop(file, p, width, &mut obj);
            }
            let repeated = obj.props.iter().any(|p| p.name.eq_ignore_ascii_case(name));
            let padded = colon_col > name.chars().count() + 1;
            let layout_change = saw_blank
                && obj.consistent
                && padded
                && obj.colon_col.is_some_and(|c| c != colon_col);
            if repeated || layout_change {
                flush_obj(&mut obj, &mut doc);
            }
            if obj.props.is_empty() {
                obj.colon_col = Some(colon_col);
                obj.consistent = true;
            } else if obj.colon_col != Some(colon_col) {
                obj.consistent = false;
            }
            prop = Some(PendingProp {
                name: name.to_string(),
                first_line: line_no,
                first_text: raw.to_string(),
                segments: vec![(value.to_string(), line.chars().count())],
            });
            saw_blank = false;
            continue;
        }
        if raw.starts_with([' ', '\t'])
            && let Some(p) = prop.as_mut()
        {
            p.segments
                .push((line.trim_start().to_string(), line.chars().count()));
            saw_blank = false;
            continue;
        }
        doc.skipped.push(file, line_no, raw);
        saw_blank = false;
    }
    if let Some(p) = prop.take() {
        finish_prop(file, p, width, &mut obj);
    }
    flush_obj(&mut obj, &mut doc);
    doc
}

fn flush_obj(obj: &mut PendingObj, doc: &mut FlDocument) {
    let o = std::mem::take(obj);
    if !o.props.is_empty() {
        doc.objects.push(PsObject { props: o.props });
    }
}

fn finish_prop(file: &str, p: PendingProp, width: usize, obj: &mut PendingObj) {
    let mut value = String::new();
    for (i, (seg, _)) in p.segments.iter().enumerate() {
        if i == 0 {
            value.push_str(seg);
            continue;
        }
        let (prev_seg, prev_len) = &p.segments[i - 1];
        let hard_cut = *prev_len >= width && !prev_seg.contains(' ');
        if !hard_cut && !value.is_empty() {
            value.push(' ');
        }
        value.push_str(seg);
    }
    let value = value.trim().to_string();
    let v = if value.is_empty() {
        PsValue::Null
    } else {
        PsValue::Text(value)
    };
    obj.props.push(PsProperty {
        name: p.name,
        value: v,
        evidence: Evidence::new(file, p.first_line, &p.first_text),
    });
}

/// `Name   : value` → (name, column of the colon, value). Names are identifiers; the colon must
/// be followed by a space or the end of the line.
fn property_line(line: &str) -> Option<(&str, usize, &str)> {
    let b = line.as_bytes();
    let first = *b.first()?;
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return None;
    }
    let name_end = b
        .iter()
        .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')))
        .unwrap_or(b.len());
    let mut i = name_end;
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    if b.get(i) != Some(&b':') {
        return None;
    }
    // `Name:value` without a space before the colon is not Format-List.
    if i == name_end {
        return None;
    }
    let value = match b.get(i + 1) {
        None => "",
        Some(b' ') => &line[i + 2..],
        Some(_) => return None,
    };
    // Byte index equals char index here: everything up to the colon is ASCII.
    Some((&line[..name_end], i, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(props: &[(&str, PsValue)]) -> FlRecord {
        props
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn renders_padded_names_lists_and_wraps() {
        let obj = rec(&[
            ("Name", PsValue::text("x")),
            (
                "CertificateDomains",
                PsValue::list(["a.contoso.com", "b.contoso.com"]),
            ),
            ("Empty", PsValue::Null),
            (
                "Issuer",
                PsValue::text(
                    "CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1, O=DigiCert Inc, C=US, OU=Very Long Organisational Unit Name",
                ),
            ),
            (
                "PSPath",
                PsValue::text(
                    "Microsoft.PowerShell.Security\\Certificate::LocalMachine\\My\\3D1F0A2B4C5D6E7F8091A2B3C4D5E6F708192A3B",
                ),
            ),
        ]);
        let s = render(
            std::slice::from_ref(&obj),
            &FlOptions {
                line_ending: LineEnding::Lf,
                ..FlOptions::default()
            },
        );
        for l in s.lines() {
            assert!(l.chars().count() <= 79, "{l:?}");
        }
        assert!(s.starts_with("\n\nName               : x\n"));
        assert!(s.contains("Empty              :\n"));
        let doc = parse("t", &s);
        assert_eq!(doc.skipped.count, 0);
        assert_eq!(doc.objects.len(), 1);
        let o = &doc.objects[0];
        for (n, v) in &obj {
            assert_eq!(
                o.value(n),
                Some(&match v {
                    PsValue::Null => PsValue::Null,
                    other => PsValue::Text(other.display(Some(4))),
                }),
                "{n}"
            );
        }
    }

    #[test]
    fn objects_split_on_repeated_names_and_junk_is_counted() {
        let text = "[PS] C:\\>Get-Queue | fl\r\n\r\nIdentity : A\r\nStatus   : Retry\r\n\r\nIdentity : B\r\n\r\nStatus : Ready\r\n-----\r\n";
        let doc = parse("q", text);
        assert_eq!(doc.objects.len(), 2);
        assert_eq!(doc.objects[1].text("Status").as_deref(), Some("Ready"));
        assert_eq!(doc.skipped.count, 2);
        assert_eq!(doc.objects[0].get("Status").unwrap().evidence.line, 4);
    }

    #[test]
    fn wrap_cuts_long_words() {
        assert_eq!(wrap("abcdefgh", 3), ["abc", "def", "gh"]);
        assert_eq!(wrap("ab cd ef", 5), ["ab cd", "ef"]);
        assert_eq!(wrap("ab cdefgh", 3), ["ab", "cde", "fgh"]);
    }
}
