//! `Export-Csv` files (`Get-MessageTrace | Export-Csv`, `Get-Queue | Export-Csv`...) and the
//! CSV reports the Exchange admin center lets one download (the message trace's summary and
//! extended reports), read into [`PsObject`]s so the typed readers serve them like a listing.
//!
//! Shape: an optional `#TYPE <type name>` line (Windows PowerShell 5.1 without
//! `-NoTypeInformation`), a header row of property names, then one record per object; every field
//! quoted (`"a","b"`, inner quotes doubled) by PowerShell, quoted only when needed by other
//! writers; a quoted field may hold line breaks (a multi-line `Message` or `Detail`), so records
//! are read across lines. Encodings and line ends are [`crate::text::decode`]'s.

use super::ps::{PsObject, PsProperty, PsValue};
use super::text::{Evidence, Skipped, split_lines};

/// A parsed CSV file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CsvDocument {
    /// The `#TYPE` line's type name, when present.
    pub type_name: Option<String>,
    /// The header's column names.
    pub columns: Vec<String>,
    /// One object per record.
    pub objects: Vec<PsObject>,
    /// Records whose field count differs from the header's.
    pub skipped: Skipped,
}

/// One record: its fields, first line number and first line's text.
struct Record<'a> {
    fields: Vec<String>,
    line: usize,
    first_text: &'a str,
}

/// Splits `text` into records, a quoted field running across line ends.
fn records(text: &str) -> Vec<Record<'_>> {
    let mut out = Vec::new();
    let mut lines = split_lines(text).enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        if line.trim().is_empty() {
            continue;
        }
        let mut fields = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        let mut at_start = true;
        let mut chunk = line;
        loop {
            let mut chars = chunk.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '"' if quoted => {
                        if chars.peek() == Some(&'"') {
                            chars.next();
                            cur.push('"');
                        } else {
                            quoted = false;
                        }
                    }
                    '"' if at_start => {
                        quoted = true;
                        at_start = false;
                    }
                    ',' if !quoted => {
                        fields.push(std::mem::take(&mut cur));
                        at_start = true;
                    }
                    c => {
                        cur.push(c);
                        at_start = false;
                    }
                }
            }
            // An open quote continues on the next line (bounded by the file's lines).
            if quoted && let Some((_, next)) = lines.next() {
                cur.push('\n');
                chunk = next;
                continue;
            }
            break;
        }
        fields.push(cur);
        out.push(Record {
            fields,
            line: i + 1,
            first_text: line,
        });
    }
    out
}

/// Whether a header cell is a property name (letters, digits, `_`, `-`, `.`, spaces inside).
fn is_name(s: &str) -> bool {
    let t = s.trim();
    !t.is_empty()
        && t.len() <= 64
        && t.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' '))
}

/// Whether `text` looks like an `Export-Csv` file: a header of at least three distinct names
/// (after an optional `#TYPE` line) whose first record has as many fields.
pub fn is_export_csv(text: &str) -> bool {
    let mut lines = split_lines(text).filter(|l| !l.trim().is_empty());
    let Some(mut first) = lines.next() else {
        return false;
    };
    if first.starts_with("#TYPE") {
        let Some(l) = lines.next() else { return false };
        first = l;
    }
    if !first.contains(',') {
        return false;
    }
    let head = records(first);
    let Some(h) = head.first() else { return false };
    if h.fields.len() < 3 || !h.fields.iter().all(|f| is_name(f)) {
        return false;
    }
    let mut names: Vec<String> = h.fields.iter().map(|f| f.to_ascii_lowercase()).collect();
    names.sort();
    names.dedup();
    names.len() == h.fields.len()
}

/// Parses a CSV export. `file` names the source in evidence; each property's evidence is its
/// record's first line.
pub fn parse(file: &str, text: &str) -> CsvDocument {
    let mut doc = CsvDocument::default();
    let mut recs = records(text).into_iter();
    let mut header = recs.next();
    if let Some(h) = &header
        && h.first_text.starts_with("#TYPE")
    {
        doc.type_name = Some(h.first_text["#TYPE".len()..].trim().to_string());
        header = recs.next();
    }
    let Some(header) = header else {
        return doc;
    };
    doc.columns = header.fields.iter().map(|f| f.trim().to_string()).collect();
    for r in recs {
        if r.fields.len() != doc.columns.len() {
            doc.skipped.push(file, r.line, r.first_text);
            continue;
        }
        let ev = Evidence::new(file, r.line, r.first_text);
        doc.objects.push(PsObject {
            props: doc
                .columns
                .iter()
                .zip(r.fields)
                .map(|(n, v)| PsProperty {
                    name: n.clone(),
                    value: PsValue::text(v),
                    evidence: ev.clone(),
                })
                .collect(),
        });
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_quoted_multi_line_fields_and_the_type_line() {
        let text = "#TYPE Deserialized.Microsoft.Exchange.Management.FfoReporting.MessageTraceDetail\r\n\"Date\",\"Event\",\"Detail\"\r\n\"3/7/2023 6:46:06 PM\",\"Defer\",\"Reason: [{LED=450 4.4.317 x}]\r\nsecond \"\"line\"\"\"\r\n\"3/7/2023 6:47:06 PM\",\"Receive\",\"ok\"\r\n";
        assert!(is_export_csv(text));
        let d = parse("t.csv", text);
        assert_eq!(d.objects.len(), 2);
        assert_eq!(
            d.objects[0].text("Detail").as_deref(),
            Some("Reason: [{LED=450 4.4.317 x}]\nsecond \"line\"")
        );
        assert_eq!(d.objects[1].get("Event").unwrap().evidence.line, 5);
        assert!(d.type_name.unwrap().ends_with("MessageTraceDetail"));
        assert!(!is_export_csv("a,b\n1,2\n"));
        assert!(!is_export_csv("Name : x\n"));
    }
}
