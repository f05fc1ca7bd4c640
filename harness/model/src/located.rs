//! Errors placed in a TOML file: `file:line:column: what is wrong`, at the key concerned.
//!
//! A [`TomlSource`] is a text and the label of where it came from. It turns a `toml` error (which
//! carries a byte span) into a [`Located`] error, and places a check that failed after parsing by
//! the key's dotted path from the document's root, array indices included
//! (`eop.tenants[2].inbound_connectors[0].name`): the path is followed through toml's spanned tree
//! ([`toml::de::DeTable`]), so an error in the third `[[eop.tenants]]` entry names that entry's
//! line, not the first line where the same key appears.
//!
//! The mock EOP's config loader uses it; the scenario loader follows the same rules (a path of
//! keys and indices, the deepest key that exists).

use std::fmt;
use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// What a [`Located`] error names besides its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// A key's own name as TOML or serde reported it (`hostnme` in ``unknown field `hostnme` ``);
    /// rendered ``field `hostnme`: ``.
    Name(String),
    /// The key's dotted path from the document's root, with array indices
    /// (`eop.tenants[2].name`); rendered `eop.tenants[2].name: `.
    Path(String),
}

/// A problem in a TOML text, placed at the key it concerns; displays as
/// `file:line:column: field: message` (the parts that are known).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct Located {
    /// Where the text came from: a path as the user gave it, or a label such as
    /// `request body (TOML)`.
    pub file: String,
    /// 1-based line of the key (or of the value TOML refused); `None` when the text could not be
    /// placed.
    pub line: Option<usize>,
    /// 1-based column in characters on `line`; `None` with `line`.
    pub column: Option<usize>,
    /// The key concerned, when known.
    pub field: Option<Field>,
    /// What is wrong, and what is expected when that can be said.
    pub message: String,
}

impl Located {
    fn render(&self) -> String {
        let mut s = self.file.clone();
        if let Some(l) = self.line {
            s.push_str(&format!(":{l}"));
            if let Some(c) = self.column {
                s.push_str(&format!(":{c}"));
            }
        }
        s.push_str(": ");
        match &self.field {
            Some(Field::Name(n)) => s.push_str(&format!("field `{n}`: ")),
            Some(Field::Path(p)) => s.push_str(&format!("{p}: ")),
            None => {}
        }
        s.push_str(&self.message);
        s
    }
}

/// A TOML text and the label of where it came from, to place errors in it.
#[derive(Debug, Clone, Copy)]
pub struct TomlSource<'a> {
    file: &'a str,
    text: &'a str,
}

impl<'a> TomlSource<'a> {
    /// `text` as read from `file` (a path as given, or a label for text that has no file).
    pub fn new(file: &'a str, text: &'a str) -> Self {
        Self { file, text }
    }

    /// The label errors carry.
    pub fn file(&self) -> &'a str {
        self.file
    }

    /// The text.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Deserializes the whole text into `T`.
    ///
    /// # Errors
    /// TOML syntax, an unknown or missing key, a value of the wrong shape or one `T` refuses:
    /// placed at toml's span and naming the key (see [`TomlSource::toml_error`]).
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, Located> {
        toml::from_str(self.text).map_err(|e| self.toml_error(&e))
    }

    /// A `toml` error placed in this text. The field is the key serde names (unknown or missing
    /// field), else the innermost key whose key or value holds the error's position, else (when
    /// the text is not even TOML) the key of a `key = value` line there.
    pub fn toml_error(&self, e: &toml::de::Error) -> Located {
        let message = e.message().trim().to_string();
        let at = e.span().map(|s| s.start);
        let field = backticked(&message)
            .or_else(|| at.and_then(|at| self.key_at(at)))
            .map(Field::Name);
        self.at_offset(at, field, message)
    }

    /// The error for a check that failed after parsing: `path` is the key's dotted path from the
    /// document's root (`eop.tenants[2].name`), placed at that key in that table; when the key is
    /// absent (a default was wrong), at the deepest part of the path that is in the text.
    pub fn at_path(&self, path: &str, message: impl Into<String>) -> Located {
        let span = DeTable::parse(self.text)
            .ok()
            .and_then(|tree| span_of(tree.get_ref(), path));
        self.at_offset(
            span.map(|s| s.start),
            Some(Field::Path(path.to_string())),
            message,
        )
    }

    /// The error at byte `offset` of the text (unplaced when `None`).
    pub fn at_offset(
        &self,
        offset: Option<usize>,
        field: Option<Field>,
        message: impl Into<String>,
    ) -> Located {
        let (line, column) = match offset {
            Some(at) => {
                let (l, c) = line_column(self.text, at);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        Located {
            file: self.file.to_string(),
            line,
            column,
            field,
            message: message.into(),
        }
    }

    /// The name of the innermost key whose key or value holds byte `at`, from the spanned tree;
    /// from the text of the line when the text does not parse.
    fn key_at(&self, at: usize) -> Option<String> {
        match DeTable::parse(self.text) {
            Ok(tree) => innermost_key(tree.get_ref(), at),
            Err(_) => key_on_line(self.text, at),
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` of `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut at = offset.min(text.len());
    while at > 0 && !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    /// A key of a table.
    Key(String),
    /// An element of an array (an `[[array]]` table or an inline array), 0-based.
    Index(usize),
}

/// `tenants[0].inbound_connectors[1].name` as segments.
pub fn parse_path(path: &str) -> Vec<PathSegment> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            if i > 0 {
                out.push(PathSegment::Key(rest[..i].to_string()));
            }
            rest = &rest[i..];
            while let Some(r) = rest.strip_prefix('[') {
                let Some(end) = r.find(']') else { break };
                if let Ok(n) = r[..end].parse() {
                    out.push(PathSegment::Index(n));
                }
                rest = &r[end + 1..];
            }
        } else if !rest.is_empty() {
            out.push(PathSegment::Key(rest.to_string()));
        }
    }
    out
}

/// The span of the deepest part of `path` that exists in `root`: the key itself when it exists,
/// else its table (an array element) or the key that holds it.
pub fn span_of(root: &DeTable<'_>, path: &str) -> Option<Range<usize>> {
    let mut best: Option<Range<usize>> = None;
    let mut table: Option<&DeTable<'_>> = Some(root);
    let mut value: Option<&Spanned<DeValue<'_>>> = None;
    for seg in parse_path(path) {
        match seg {
            PathSegment::Key(k) => {
                let Some((key, v)) = table.and_then(|t| t.get_key_value(k.as_str())) else {
                    break;
                };
                best = Some(key.span());
                value = Some(v);
            }
            PathSegment::Index(i) => {
                let Some(DeValue::Array(a)) = value.map(|v| v.get_ref()) else {
                    break;
                };
                let Some(v) = a.get(i) else { break };
                best = Some(v.span());
                value = Some(v);
            }
        }
        table = match value.map(|v| v.get_ref()) {
            Some(DeValue::Table(t)) => Some(t),
            _ => None,
        };
    }
    best
}

/// The name of the innermost key whose key span or value span holds byte `at`. Nested tables are
/// searched whatever their own span (the span of an `[[array]]` of tables need not cover its
/// later entries).
fn innermost_key(table: &DeTable<'_>, at: usize) -> Option<String> {
    let mut found = None;
    for (k, v) in table.iter() {
        if let Some(inner) = innermost_in_value(v.get_ref(), at) {
            return Some(inner);
        }
        if k.span().contains(&at) || v.span().contains(&at) {
            found = Some(k.get_ref().to_string());
        }
    }
    found
}

fn innermost_in_value(value: &DeValue<'_>, at: usize) -> Option<String> {
    match value {
        DeValue::Table(t) => innermost_key(t, at),
        DeValue::Array(a) => a.iter().find_map(|v| innermost_in_value(v.get_ref(), at)),
        _ => None,
    }
}

/// The `key` of a `key = value` line at byte `at` (for text that is not TOML).
fn key_on_line(text: &str, at: usize) -> Option<String> {
    let at = at.min(text.len());
    let line_start = text[..at].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line_text = text[line_start..].lines().next().unwrap_or("");
    line_text.split_once('=').and_then(|(k, _)| {
        let k = k.trim().trim_start_matches('{').trim();
        let k = k.rsplit([',', '{']).next().unwrap_or(k).trim();
        (!k.is_empty() && !k.starts_with('[') && !k.contains(' ')).then(|| k.to_string())
    })
}

/// The first `` `name` `` of a serde message about a key (unknown field `x`, missing field `y`).
fn backticked(message: &str) -> Option<String> {
    if !(message.starts_with("unknown field") || message.starts_with("missing field")) {
        return None;
    }
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}

impl fmt::Display for PathSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key(k) => f.write_str(k),
            Self::Index(i) => write!(f, "[{i}]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANTS: &str = "\
[eop.tls]
tls13 = true

[[eop.tenants]]
name = \"a\"

[[eop.tenants]]
name = \"b\"

[[eop.tenants]]
name = \"c\"
accepted_domains = [{ domain = \"c.com\", type = \"internal_relay\" }]

[[eop.tenants.inbound_connectors]]
name = \"x\"
";

    #[test]
    fn a_path_names_the_key_in_the_right_array_element() {
        let src = TomlSource::new("t.toml", TENANTS);
        let e = src.at_path("eop.tenants[2].name", "duplicate");
        assert_eq!((e.line, e.column), (Some(11), Some(1)));
        assert_eq!(e.to_string(), "t.toml:11:1: eop.tenants[2].name: duplicate");
        let e = src.at_path("eop.tenants[1].name", "m");
        assert_eq!(e.line, Some(8));
        let e = src.at_path("eop.tenants[2].accepted_domains[0].type", "m");
        assert_eq!((e.line, e.column), (Some(12), Some(41)));
        let e = src.at_path("eop.tenants[2].inbound_connectors[0].name", "m");
        assert_eq!(e.line, Some(15));
        let e = src.at_path("eop.tls.tls13", "m");
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn an_absent_key_falls_back_to_the_deepest_part_present() {
        let src = TomlSource::new("t.toml", TENANTS);
        // the third tenant's connector has no `sender_ip_addresses`: its `[[...]]` header is named
        let e = src.at_path(
            "eop.tenants[2].inbound_connectors[0].sender_ip_addresses",
            "m",
        );
        assert_eq!((e.line, e.column), (Some(14), Some(1)), "{e}");
        // nothing of the path exists
        let e = src.at_path("faults[0]", "m");
        assert_eq!((e.line, e.column), (None, None));
        assert_eq!(e.to_string(), "t.toml: faults[0]: m");
    }

    #[test]
    fn toml_errors_are_placed_at_their_span_with_the_key() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Doc {
            a: Vec<Inner>,
        }
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Inner {
            n: u8,
        }
        let text = "[[a]]\nn = 1\n[[a]]\nn = 2\n[[a]]\nn = 300\n";
        let e = TomlSource::new("d.toml", text)
            .deserialize::<Doc>()
            .unwrap_err();
        assert_eq!((e.line, e.column), (Some(6), Some(5)), "{e}");
        assert_eq!(e.field, Some(Field::Name("n".into())));

        let text = "[[a]]\nn = 1\n[[a]]\nm = 2\n";
        let e = TomlSource::new("d.toml", text)
            .deserialize::<Doc>()
            .unwrap_err();
        assert_eq!((e.line, e.column), (Some(4), Some(1)), "{e}");
        assert!(
            e.to_string()
                .starts_with("d.toml:4:1: field `m`: unknown field"),
            "{e}"
        );

        // not TOML at all: the key of the line
        let e = TomlSource::new("s.toml", "[[a]]\nn = \"open\n")
            .deserialize::<Doc>()
            .unwrap_err();
        assert_eq!(e.line, Some(2), "{e:?}");
        assert_eq!(e.field, Some(Field::Name("n".into())), "{e:?}");
    }

    #[test]
    fn paths_and_positions() {
        assert_eq!(
            parse_path("tenants[0].inbound_connectors[1].name")
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["tenants", "[0]", "inbound_connectors", "[1]", "name"]
        );
        assert_eq!(parse_path("faults[3]").len(), 2);
        assert_eq!(line_column("ab\ncdé\nx", 7), (2, 4));
        assert_eq!(
            line_column("ab\ncdé\nx", 6),
            (2, 3),
            "inside a character: its start"
        );
        assert_eq!(line_column("ab", 99), (1, 3));
    }
}
