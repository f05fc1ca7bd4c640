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
//!   at word boundaries (the wrapped line keeps the space that followed its last word), and a
//!   word longer than a whole line is cut character by character, filling the current line
//!   first. `Out-File` uses 80 columns in Windows PowerShell unless `-Width`, and a line holds at
//!   most width - 1 characters;
//! - objects are separated by a blank line; the output starts with two blank lines and ends with
//!   two.
//!
//! The reader joins wrapped values back: directly after a line that kept its trailing space (a
//! word break) or that is exactly as wide as the listing's widest line (a word cut), with one
//! space otherwise (a word break whose trailing space a copy or an editor trimmed). It starts a
//! new object when a property name repeats (so blank lines pasted between properties do no harm),
//! and counts lines it cannot place (prompts, table output, garbage) as skipped.

use super::ps::{PsObject, PsProperty, PsValue};
use super::text::{Evidence, LineEnding, Skipped, split_lines};

/// How to render a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlOptions {
    /// Console / `Out-File -Width` columns; a line holds at most `width - 1` characters.
    pub width: usize,
    /// `$FormatEnumerationLimit`: collections show this many items then `...` (`None`: all).
    pub enumeration_limit: Option<usize>,
    /// The line end written after every line (CRLF from Windows PowerShell).
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

/// Word-wraps `text` into lines of at most `avail` characters, the way PowerShell's list view
/// does (our reading of `GenerateLinesWithWordWrap`): each word is placed together with the space
/// that follows it, so a wrapped line keeps that trailing space; a word that cannot fit on a line
/// of its own with its space is added character by character, filling the current line first.
/// (If such a word ends exactly at the end of a line, its space starts the next line, so the
/// reader can still tell the word ended.)
fn wrap(text: &str, avail: usize) -> Vec<String> {
    if text.chars().count() <= avail {
        return vec![text.to_string()];
    }
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut left = avail;
    let words: Vec<&str> = text.split(' ').collect();
    for (i, word) in words.iter().enumerate() {
        let delim = if i + 1 < words.len() { " " } else { "" };
        let need = word.chars().count() + delim.len();
        if need <= left {
            cur.push_str(word);
            cur.push_str(delim);
            left -= need;
        } else if need <= avail {
            lines.push(std::mem::take(&mut cur));
            cur.push_str(word);
            cur.push_str(delim);
            left = avail - need;
        } else {
            for c in word.chars() {
                if left == 0 {
                    lines.push(std::mem::take(&mut cur));
                    left = avail;
                }
                cur.push(c);
                left -= 1;
            }
            if !delim.is_empty() {
                if left == 0 {
                    lines.push(std::mem::take(&mut cur));
                    left = avail;
                }
                cur.push_str(delim);
                left -= 1;
            }
        }
    }
    if !cur.is_empty() {
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
    /// Byte index of the value on the first line (continuations are indented to it).
    value_col: usize,
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
    parse_except(file, text, &[])
}

/// [`parse`], reading the lines numbered in `other` (1-based, ascending: lines another reader
/// used, such as a table's) as blank lines.
pub fn parse_except(file: &str, text: &str, other: &[usize]) -> FlDocument {
    let lines: Vec<&str> = split_lines(text)
        .enumerate()
        .map(|(i, l)| {
            if other.binary_search(&(i + 1)).is_ok() {
                ""
            } else {
                l
            }
        })
        .collect();
    // The listing's line width: the longest property or continuation line (prompts and other
    // text around the listing do not count).
    let width = lines
        .iter()
        .filter(|l| l.starts_with([' ', '\t']) || property_line(l.trim_end()).is_some())
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0);
    let mut doc = FlDocument::default();
    let mut obj = PendingObj::default();
    let mut prop: Option<PendingProp> = None;
    let mut saw_blank = false;
    // The value column of the property a blank line ended (see the multi-line case below).
    let mut last_value_col: Option<usize> = None;

    for (idx, raw) in lines.iter().enumerate() {
        let line_no = idx + 1;
        let line = raw.trim_end();
        // A line of spaces reaching past the value column is the space between two words whose
        // first one was cut exactly at the end of a line (see `wrap`), not a blank line.
        if let Some(p) = prop.as_mut()
            && line.is_empty()
            && raw.len() > p.value_col
            && raw.bytes().all(|b| b == b' ')
        {
            p.segments.push((" ".to_string(), raw.chars().count()));
            continue;
        }
        if line.trim().is_empty() {
            saw_blank = true;
            if let Some(p) = prop.take() {
                last_value_col = Some(p.value_col);
                finish_prop(file, p, width, &mut obj);
            }
            continue;
        }
        if let Some((name, colon_col, value_start)) = property_line(line) {
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
            let value = raw.get(value_start..).unwrap_or("");
            last_value_col = None;
            prop = Some(PendingProp {
                name: name.to_string(),
                value_col: value_start,
                first_line: line_no,
                first_text: raw.to_string(),
                segments: vec![(value.to_string(), raw.chars().count())],
            });
            saw_blank = false;
            continue;
        }
        // A multi-line value (an event's `Message`) with an empty line inside: the lines after
        // it are still indented to the value column of the property the blank line ended.
        if prop.is_none()
            && saw_blank
            && let Some(col) = last_value_col
            && raw.len() > col
            && raw.as_bytes()[..col].iter().all(|b| *b == b' ')
            && raw.as_bytes()[col] != b' '
            && let Some(last) = obj.props.last_mut()
        {
            let joined = match &last.value {
                PsValue::Text(t) => format!("{t}\n{}", &raw[col..]),
                _ => raw[col..].to_string(),
            };
            last.value = PsValue::Text(joined);
            continue;
        }
        if raw.starts_with([' ', '\t'])
            && let Some(p) = prop.as_mut()
        {
            // Continuations are indented to the value column; a space beyond it is content.
            let indent = p.value_col;
            let seg = if raw.len() > indent && raw.as_bytes()[..indent].iter().all(|b| *b == b' ') {
                &raw[indent..]
            } else {
                raw.trim_start()
            };
            p.segments.push((seg.to_string(), raw.chars().count()));
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
        if i > 0 {
            // A wrapped line that kept its trailing space broke at a word; a full-width line
            // without one was cut inside a word; anything else is a word break whose trailing
            // space was trimmed (a console copy, an editor).
            let prev_len = p.segments[i - 1].1;
            if !value.ends_with(' ') && !seg.starts_with(' ') && prev_len < width {
                value.push(' ');
            }
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

/// `Name   : value` → (name, column of the colon, byte index where the value starts). Names are
/// identifiers; the colon must follow at least one space and be followed by a space or the end
/// of the line.
fn property_line(line: &str) -> Option<(&str, usize, usize)> {
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
    if b.get(i) != Some(&b':') || i == name_end {
        return None;
    }
    let value_start = match b.get(i + 1) {
        None => i + 1,
        Some(b' ') => i + 2,
        Some(_) => return None,
    };
    // Byte index equals char index here: everything up to the colon is ASCII.
    Some((&line[..name_end], i, value_start))
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
        assert_eq!(wrap("ab cd ef", 6), ["ab cd ", "ef"]);
        assert_eq!(wrap("ab cd ef", 5), ["ab ", "cd ef"]);
        assert_eq!(wrap("ab cdefgh", 4), ["ab c", "defg", "h"]);
        assert_eq!(wrap("abcd efgh", 4), ["abcd", " ", "efgh"]);
        assert_eq!(wrap("abcd ef", 4), ["abcd", " ef"]);
        for (text, avail) in [
            ("abcd efgh ij", 4),
            ("x abcdefgh y", 3),
            ("aa bb cc dd ee ff", 5),
        ] {
            let lines = wrap(text, avail);
            assert!(
                lines.iter().all(|l| l.chars().count() <= avail),
                "{lines:?}"
            );
            let obj: FlRecord = vec![("V".to_string(), PsValue::text(text))];
            let rendered = render(
                &[obj],
                &FlOptions {
                    width: avail + 5,
                    ..FlOptions::default()
                },
            );
            let doc = parse("w", &rendered);
            assert_eq!(
                doc.objects[0].text("V").as_deref(),
                Some(text),
                "{rendered:?}"
            );
        }
    }
}
