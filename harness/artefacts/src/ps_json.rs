//! `ConvertTo-Json` output: the writer and the generic reader.
//!
//! - Windows PowerShell 5.1: 4-space indentation, two spaces after the colon, arrays indented under
//!   their bracket, dates as `"\/Date(1556778734000)\/"`, `<`, `>`, `&` and `'` escaped as
//!   `\u003c`...; enums of remoted Exchange objects come out as their names (deserialized objects)
//!   or numbers (live objects); the reader accepts both.
//! - PowerShell 7: 2-space indentation, dates as ISO 8601 (`"2019-05-02T06:32:14Z"`, or with an
//!   offset, or without one).
//! - One object piped alone is written as an object, several as an array; `-InputObject` with an
//!   array in some versions gives `{"value": [...], "Count": n}`. All three are read.
//!
//! The reader uses serde_json for the values and a small scanner over the same text for the line
//! of each property, so evidence can point at `"Thumbprint":  "3D1F..."`.

use serde_json::Value;
use time::OffsetDateTime;

use super::format_list::FlRecord;
use super::ps::{PsObject, PsProperty, PsValue};
use super::text::{Evidence, LineEnding, split_lines};

/// Which PowerShell wrote the JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum JsonStyle {
    /// Windows PowerShell 5.1 (`\/Date(ms)\/`).
    #[default]
    WindowsPowerShell,
    /// PowerShell 7 (ISO 8601 dates).
    PowerShell7,
}

/// The JSON text is not JSON (or holds no object).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: not a ConvertTo-Json document: {reason}")]
pub struct JsonError {
    /// The file the text came from, as the caller named it.
    pub file: String,
    /// What the JSON parser found wrong (or that the document holds no object).
    pub reason: String,
}

/// Parses ConvertTo-Json text into objects with per-property evidence.
pub fn parse(file: &str, text: &str) -> Result<Vec<PsObject>, JsonError> {
    let err = |reason: String| JsonError {
        file: file.to_string(),
        reason,
    };
    let value: Value = serde_json::from_str(text).map_err(|e| err(e.to_string()))?;
    let (records, depth): (Vec<&serde_json::Map<String, Value>>, usize) = match &value {
        Value::Array(items) => (items.iter().filter_map(Value::as_object).collect(), 2),
        Value::Object(map) => match map.get("value") {
            Some(Value::Array(items))
                if map.len() <= 2 && (map.len() == 1 || map.contains_key("Count")) =>
            {
                (items.iter().filter_map(Value::as_object).collect(), 3)
            }
            _ => (vec![map], 1),
        },
        _ => return Err(err("the document is neither an object nor an array".into())),
    };
    let lines: Vec<&str> = split_lines(text).collect();
    let key_lines = scan_keys(text, depth);
    let mut out = Vec::with_capacity(records.len());
    for (i, map) in records.iter().enumerate() {
        let keys = key_lines.get(i);
        let mut props = Vec::with_capacity(map.len());
        for (k, v) in map.iter() {
            let line = keys
                .and_then(|ks| ks.iter().find(|(name, _)| name == k).map(|(_, l)| *l))
                .unwrap_or(1);
            let text = lines.get(line - 1).copied().unwrap_or("");
            props.push(PsProperty {
                name: k.clone(),
                value: to_ps(v),
                evidence: Evidence::new(file, line, text),
            });
        }
        // Keep the file's order (serde_json's map is sorted by key).
        props.sort_by_key(|p| p.evidence.line);
        out.push(PsObject { props });
    }
    Ok(out)
}

fn to_ps(v: &Value) -> PsValue {
    match v {
        Value::Null => PsValue::Null,
        Value::Bool(b) => PsValue::Bool(*b),
        Value::Number(n) => PsValue::Number(n.to_string()),
        Value::String(s) => PsValue::Text(s.clone()),
        Value::Array(items) => PsValue::List {
            items: items.iter().filter_map(value_text).collect(),
            truncated: false,
        },
        Value::Object(_) => value_text(v).map_or(PsValue::Null, PsValue::Text),
    }
}

/// Best-effort text of a JSON value (objects: their `value`, `DisplayName`, `Name`... member).
fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Bool(b) => Some(if *b { "True" } else { "False" }.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(value_text)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        Value::Object(map) => {
            // EnhancedKeyUsageList entries: {"FriendlyName": "Server Authentication", "ObjectId": "1.3.6.1.5.5.7.3.1"}
            if let (Some(Value::String(f)), Some(Value::String(o))) =
                (map.get("FriendlyName"), map.get("ObjectId"))
            {
                return Some(format!("{f} ({o})"));
            }
            for k in [
                "Unicode",
                "value",
                "Value",
                "DisplayName",
                "Name",
                "Domain",
                "Address",
                "Identity",
            ] {
                if let Some(t) = map.get(k).and_then(value_text) {
                    return Some(t);
                }
            }
            Some(v.to_string())
        }
    }
}

/// For each object at `depth` (1 = top-level object, 2 = objects in the top array, 3 = objects in
/// a `value` array), the line of each of its keys.
fn scan_keys(text: &str, depth: usize) -> Vec<Vec<(String, usize)>> {
    let mut records: Vec<Vec<(String, usize)>> = Vec::new();
    let mut stack: Vec<u8> = Vec::new();
    let mut line = 1usize;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'\n' => line += 1,
            b'{' | b'[' => {
                stack.push(c);
                if c == b'{' && stack.len() == depth {
                    records.push(Vec::new());
                }
            }
            b'}' | b']' => {
                stack.pop();
            }
            b'"' => {
                let start_line = line;
                let mut j = i + 1;
                let mut s = Vec::new();
                while j < bytes.len() {
                    match bytes[j] {
                        b'\\' => {
                            if let Some(n) = bytes.get(j + 1) {
                                s.push(b'\\');
                                s.push(*n);
                            }
                            j += 2;
                            continue;
                        }
                        b'"' => break,
                        b'\n' => {
                            line += 1;
                            s.push(b'\n');
                        }
                        other => s.push(other),
                    }
                    j += 1;
                }
                i = j;
                let is_key = {
                    let mut k = j + 1;
                    while k < bytes.len() && bytes[k].is_ascii_whitespace() {
                        k += 1;
                    }
                    bytes.get(k) == Some(&b':')
                };
                if is_key && stack.len() == depth && stack.last() == Some(&b'{') {
                    let raw = String::from_utf8_lossy(&s).into_owned();
                    let key = serde_json::from_str::<String>(&format!("\"{raw}\"")).unwrap_or(raw);
                    if let Some(r) = records.last_mut() {
                        r.push((key, start_line));
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    records
}

/// Renders objects as `ConvertTo-Json` does (one object alone, several as an array).
pub fn render(objects: &[FlRecord], style: JsonStyle, eol: LineEnding) -> String {
    let mut out = String::new();
    let eol = eol.as_str();
    let unit = match style {
        JsonStyle::WindowsPowerShell => 4,
        JsonStyle::PowerShell7 => 2,
    };
    if objects.len() == 1 {
        render_object(&mut out, &objects[0], 0, unit, style, eol);
    } else {
        out.push('[');
        out.push_str(eol);
        for (i, obj) in objects.iter().enumerate() {
            out.extend(std::iter::repeat_n(' ', unit));
            render_object(&mut out, obj, unit, unit, style, eol);
            if i + 1 < objects.len() {
                out.push(',');
            }
            out.push_str(eol);
        }
        out.push(']');
    }
    out
}

fn render_object(
    out: &mut String,
    obj: &FlRecord,
    indent: usize,
    unit: usize,
    style: JsonStyle,
    eol: &str,
) {
    out.push('{');
    out.push_str(eol);
    let sep = match style {
        JsonStyle::WindowsPowerShell => ":  ",
        JsonStyle::PowerShell7 => ": ",
    };
    for (i, (name, value)) in obj.iter().enumerate() {
        let key_indent = indent + unit;
        out.extend(std::iter::repeat_n(' ', key_indent));
        let key = format!("{}{sep}", json_string(name, style));
        out.push_str(&key);
        match value {
            PsValue::List { items, .. } => {
                let (open_col, item_col) = match style {
                    JsonStyle::WindowsPowerShell => {
                        let c = key_indent + key.chars().count();
                        (c, c + 4)
                    }
                    JsonStyle::PowerShell7 => (key_indent, key_indent + unit),
                };
                out.push('[');
                out.push_str(eol);
                if items.is_empty() {
                    out.push_str(eol);
                }
                for (k, item) in items.iter().enumerate() {
                    out.extend(std::iter::repeat_n(' ', item_col));
                    out.push_str(&json_string(item, style));
                    if k + 1 < items.len() {
                        out.push(',');
                    }
                    out.push_str(eol);
                }
                out.extend(std::iter::repeat_n(' ', open_col));
                out.push(']');
            }
            other => out.push_str(&scalar(other, style)),
        }
        if i + 1 < obj.len() {
            out.push(',');
        }
        out.push_str(eol);
    }
    out.extend(std::iter::repeat_n(' ', indent));
    out.push('}');
}

fn scalar(v: &PsValue, style: JsonStyle) -> String {
    match v {
        PsValue::Null => "null".to_string(),
        PsValue::Bool(b) => b.to_string(),
        PsValue::Number(n) => {
            if serde_json::from_str::<serde_json::Number>(n).is_ok() {
                n.clone()
            } else {
                json_string(n, style)
            }
        }
        PsValue::Text(s) => json_string(s, style),
        PsValue::Date(d) => date_string(*d, style),
        PsValue::List { .. } => unreachable!("lists are rendered by render_object"),
    }
}

/// A date as the style writes it (already quoted).
pub fn date_string(d: OffsetDateTime, style: JsonStyle) -> String {
    match style {
        JsonStyle::WindowsPowerShell => {
            let ms = d.unix_timestamp_nanos() / 1_000_000;
            format!("\"\\/Date({ms})\\/\"")
        }
        JsonStyle::PowerShell7 => {
            let d = d.to_offset(time::UtcOffset::UTC);
            let mut s = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                d.year(),
                u8::from(d.month()),
                d.day(),
                d.hour(),
                d.minute(),
                d.second()
            );
            let ms = d.millisecond();
            if ms != 0 {
                s.push_str(&format!(".{ms:03}"));
            }
            format!("\"{s}Z\"")
        }
    }
}

/// A JSON string literal with the style's escapes.
pub fn json_string(s: &str, style: JsonStyle) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\'' if style == JsonStyle::WindowsPowerShell => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn writes_and_reads_both_styles() {
        let recs: Vec<FlRecord> = vec![
            vec![
                ("Thumbprint".into(), PsValue::text("ABC")),
                ("CertificateDomains".into(), PsValue::list(["a", "b"])),
                (
                    "NotAfter".into(),
                    PsValue::Date(datetime!(2019-05-02 06:32:14 UTC)),
                ),
                ("HasPrivateKey".into(), PsValue::Bool(false)),
                ("TlsCertificateName".into(), PsValue::text("<I>CN=x<S>CN=y")),
                ("Count".into(), PsValue::num(3)),
            ],
            vec![("Thumbprint".into(), PsValue::text("DEF"))],
        ];
        for style in [JsonStyle::WindowsPowerShell, JsonStyle::PowerShell7] {
            let s = render(&recs, style, LineEnding::CrLf);
            let objs = parse("j", &s).unwrap();
            assert_eq!(objs.len(), 2);
            let o = &objs[0];
            assert_eq!(o.text("Thumbprint").as_deref(), Some("ABC"));
            assert_eq!(o.list("CertificateDomains"), ["a", "b"]);
            assert_eq!(o.date("NotAfter"), Some(datetime!(2019-05-02 06:32:14 UTC)));
            assert_eq!(o.bool("HasPrivateKey"), Some(false));
            assert_eq!(
                o.text("TlsCertificateName").as_deref(),
                Some("<I>CN=x<S>CN=y")
            );
            assert_eq!(o.u64("Count"), Some(3));
            assert_eq!(o.get("Thumbprint").unwrap().evidence.line, 3);
            assert!(
                o.get("Thumbprint")
                    .unwrap()
                    .evidence
                    .text
                    .contains("\"ABC\"")
            );
            let second = &objs[1].get("Thumbprint").unwrap().evidence;
            assert!(
                second.line > 10 && second.text.contains("\"DEF\""),
                "{second:?}"
            );
        }
        let s = render(&recs, JsonStyle::WindowsPowerShell, LineEnding::Lf);
        assert!(
            s.contains("\"NotAfter\":  \"\\/Date(1556778734000)\\/\""),
            "{s}"
        );
        assert!(s.contains("\\u003cI\\u003e"));
    }

    #[test]
    fn single_object_and_value_wrapper() {
        let one = "{\n  \"Identity\": \"EXCH01\\\\3\",\n  \"Status\": \"Retry\"\n}";
        let objs = parse("o", one).unwrap();
        assert_eq!(objs[0].text("Identity").as_deref(), Some("EXCH01\\3"));
        assert_eq!(objs[0].get("Status").unwrap().evidence.line, 3);
        let wrapped = "{\"value\":[{\"A\":1},{\"A\":2}],\"Count\":2}";
        let objs = parse("w", wrapped).unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[1].u64("A"), Some(2));
        assert!(parse("x", "not json").is_err());
        assert!(parse("x", "42").is_err());
    }
}
