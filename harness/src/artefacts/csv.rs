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
    let bytes = line.as_bytes();
    let mut i = 0;
    loop {
        if bytes.get(i) == Some(&b'"') {
            let mut value = String::new();
            let mut j = i + 1;
            let mut seg_start = j;
            loop {
                match memchr_quote(&bytes[j..]) {
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
            // Anything between the closing quote and the next comma belongs to the field.
            let end = line[j..].find(',').map_or(bytes.len(), |k| j + k);
            value.push_str(&line[j..end]);
            fields.push(Cow::Owned(value));
            if end >= bytes.len() {
                break;
            }
            i = end + 1;
        } else {
            let end = line[i..].find(',').map_or(bytes.len(), |k| i + k);
            fields.push(Cow::Borrowed(&line[i..end]));
            if end >= bytes.len() {
                break;
            }
            i = end + 1;
        }
    }
    fields
}

fn memchr_quote(b: &[u8]) -> Option<usize> {
    b.iter().position(|c| *c == b'"')
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
