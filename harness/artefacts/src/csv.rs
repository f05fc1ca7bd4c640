//! The CSV dialect of Exchange's transport logs: comma-separated, a field that contains a comma, a
//! quote or a line break is wrapped in double quotes with inner quotes doubled. One record per line.

use std::borrow::Cow;

/// Quotes a field when it needs it.
pub fn quote(field: &str) -> Cow<'_, str> {
    if field.contains([',', '"', '\r', '\n']) {
        Cow::Owned(format!("\"{}\"", field.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(field)
    }
}

/// Appends `fields` as one CSV record (no line end).
pub fn write_record<'a>(out: &mut String, fields: impl IntoIterator<Item = &'a str>) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&quote(f));
    }
}

/// Splits one line into fields. Lenient: an unterminated quoted field runs to the end of the
/// line, and text after a closing quote is kept.
pub fn split_record(line: &str) -> Vec<Cow<'_, str>> {
    let mut fields = Vec::with_capacity(9);
    fields.extend(fields_of(line));
    fields
}

/// The fields of one line, as [`split_record`] splits them, without collecting them. A field is
/// borrowed from the line unless unquoting changes it (a doubled quote inside, or text after the
/// closing quote).
pub fn fields_of(line: &str) -> Fields<'_> {
    Fields {
        line,
        pos: 0,
        done: false,
    }
}

/// Iterator over the fields of one line ([`fields_of`]).
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    line: &'a str,
    pos: usize,
    done: bool,
}

impl<'a> Iterator for Fields<'a> {
    type Item = Cow<'a, str>;

    fn next(&mut self) -> Option<Cow<'a, str>> {
        if self.done {
            return None;
        }
        let line = self.line;
        let i = self.pos;
        let (value, end) = if line.as_bytes().get(i) == Some(&b'"') {
            quoted_field(line, i)
        } else {
            let end = comma_from(line, i);
            (Cow::Borrowed(&line[i..end]), end)
        };
        if end >= line.len() {
            self.done = true;
        } else {
            self.pos = end + 1;
        }
        Some(value)
    }
}

/// The next comma at or after `i`, else the end of the line.
fn comma_from(line: &str, i: usize) -> usize {
    byte_from(line, i, b',').unwrap_or(line.len())
}

/// The next `b` at or after `i`.
fn byte_from(line: &str, i: usize, b: u8) -> Option<usize> {
    memchr::memchr(b, line.as_bytes().get(i..)?).map(|k| i + k)
}

/// The quoted field opening at `i` (a `"`): its value and where it ends (the next comma after
/// the closing quote, or the end of the line).
fn quoted_field(line: &str, i: usize) -> (Cow<'_, str>, usize) {
    let bytes = line.as_bytes();
    let body = i + 1;
    // Common cases: `"text"` followed by a comma or the end, or unterminated: borrowed.
    match byte_from(line, body, b'"') {
        None => return (Cow::Borrowed(&line[body..]), bytes.len()),
        Some(q) => match bytes.get(q + 1) {
            None => return (Cow::Borrowed(&line[body..q]), bytes.len()),
            Some(b',') => return (Cow::Borrowed(&line[body..q]), q + 1),
            _ => {}
        },
    }
    let mut value = String::new();
    let mut j = body;
    let mut seg_start = j;
    loop {
        match byte_from(line, j, b'"') {
            None => {
                value.push_str(&line[seg_start..]);
                j = bytes.len();
                break;
            }
            Some(q) => {
                value.push_str(&line[seg_start..q]);
                if bytes.get(q + 1) == Some(&b'"') {
                    value.push('"');
                    j = q + 2;
                    seg_start = j;
                } else {
                    j = q + 1;
                    break;
                }
            }
        }
    }
    // Anything between the closing quote and the next comma belongs to the field.
    let end = comma_from(line, j);
    value.push_str(&line[j..end]);
    (Cow::Owned(value), end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let fields = [
            "a",
            "",
            "b,c",
            "say \"hi\"",
            "250 2.6.0 <x> [InternalId=1, Hostname=h]",
        ];
        let mut line = String::new();
        write_record(&mut line, fields);
        assert_eq!(
            line,
            "a,,\"b,c\",\"say \"\"hi\"\"\",\"250 2.6.0 <x> [InternalId=1, Hostname=h]\""
        );
        let back: Vec<String> = split_record(&line)
            .into_iter()
            .map(|c| c.into_owned())
            .collect();
        assert_eq!(back, fields);
    }

    #[test]
    fn quoted_fields_are_borrowed_unless_unquoting_changes_them() {
        let line = "\"a, b\",\"say \"\"hi\"\"\",\"x\"tail,\"open, to the end";
        let f = split_record(line);
        assert_eq!(f, ["a, b", "say \"hi\"", "xtail", "open, to the end"]);
        assert!(matches!(f[0], Cow::Borrowed(_)));
        assert!(matches!(f[1], Cow::Owned(_)));
        assert!(matches!(f[2], Cow::Owned(_)));
        assert!(matches!(f[3], Cow::Borrowed(_)));
        // A quoted last field, an empty quoted field, a lone quote.
        assert_eq!(split_record("a,\"b,c\""), ["a", "b,c"]);
        assert_eq!(split_record("\"\",\"\""), ["", ""]);
        assert_eq!(split_record("\""), [""]);
        assert_eq!(split_record("a,\""), ["a", ""]);
        assert_eq!(split_record("\"\"\""), ["\""]);
    }

    /// The splitter before the borrowed fast paths, kept as the reference.
    fn reference_split(line: &str) -> Vec<String> {
        let mut fields = Vec::new();
        let bytes = line.as_bytes();
        let mut i = 0;
        loop {
            if bytes.get(i) == Some(&b'"') {
                let mut value = String::new();
                let mut j = i + 1;
                let mut seg_start = j;
                loop {
                    match line[j..].find('"') {
                        None => {
                            value.push_str(&line[seg_start..]);
                            j = bytes.len();
                            break;
                        }
                        Some(k) => {
                            let q = j + k;
                            value.push_str(&line[seg_start..q]);
                            if bytes.get(q + 1) == Some(&b'"') {
                                value.push('"');
                                j = q + 2;
                                seg_start = j;
                            } else {
                                j = q + 1;
                                break;
                            }
                        }
                    }
                }
                let end = line[j..].find(',').map_or(bytes.len(), |k| j + k);
                value.push_str(&line[j..end]);
                fields.push(value);
                if end >= bytes.len() {
                    break;
                }
                i = end + 1;
            } else {
                let end = line[i..].find(',').map_or(bytes.len(), |k| i + k);
                fields.push(line[i..end].to_string());
                if end >= bytes.len() {
                    break;
                }
                i = end + 1;
            }
        }
        fields
    }

    proptest::proptest! {
        #[test]
        fn splits_like_the_reference(line in "[a,\" é]{0,24}") {
            let got: Vec<String> = split_record(&line).into_iter().map(Cow::into_owned).collect();
            proptest::prop_assert_eq!(got, reference_split(&line));
        }
    }

    #[test]
    fn lenient() {
        assert_eq!(
            split_record("a,\"unterminated, b"),
            ["a", "unterminated, b"]
        );
        assert_eq!(split_record("\"x\"y,z"), ["xy", "z"]);
        assert_eq!(split_record(""), [""]);
        assert_eq!(split_record(","), ["", ""]);
    }
}
