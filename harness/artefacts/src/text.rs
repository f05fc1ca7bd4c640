//! Bytes to lines and back, the way Windows writes text files.
//!
//! Real exports arrive as UTF-8 (protocol logs, PowerShell 7 `Out-File`), UTF-8 with a BOM, or
//! UTF-16LE with a BOM (Windows PowerShell 5.1 `Out-File` and `>`), with CRLF or LF line ends, and
//! sometimes cut off in the middle of a line. [`decode`] accepts all of these (and UTF-16 without a
//! BOM, recognised by its zero bytes) and never fails: invalid sequences become U+FFFD. [`encode`]
//! writes the same variants so the lab can produce each of them.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// How a file was (or is to be) encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TextEncoding {
    /// UTF-8 without a byte order mark (Exchange's logs, PowerShell 7 `Out-File`).
    #[default]
    Utf8,
    /// UTF-8 with the `EF BB BF` mark (`Out-File -Encoding utf8` in Windows PowerShell 5.1).
    Utf8Bom,
    /// UTF-16 little endian with the `FF FE` mark (Windows PowerShell 5.1 `Out-File` default and `>`).
    Utf16LeBom,
    /// UTF-16 little endian without a mark (recognised by its zero bytes).
    Utf16Le,
    /// UTF-16 big endian with the `FE FF` mark.
    Utf16BeBom,
    /// UTF-16 big endian without a mark.
    Utf16Be,
}

/// Line ends to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LineEnding {
    /// `\r\n`, what Windows writes.
    #[default]
    CrLf,
    /// `\n`, what PowerShell on Linux and most editors write.
    Lf,
}

impl LineEnding {
    /// The line end's characters (`"\r\n"` or `"\n"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CrLf => "\r\n",
            Self::Lf => "\n",
        }
    }
}

/// A decoded text file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The text without BOM; line ends kept as they were.
    pub text: String,
    /// What the bytes were.
    pub encoding: TextEncoding,
}

/// Decodes bytes as text; never fails (invalid sequences become U+FFFD, a dangling odd byte of
/// UTF-16 is dropped).
pub fn decode(bytes: &[u8]) -> Decoded {
    let (text, encoding) = decode_cow(bytes);
    Decoded {
        text: text.into_owned(),
        encoding,
    }
}

/// [`decode`] without copying: valid UTF-8 (with or without its BOM) is borrowed from `bytes`.
pub fn decode_cow(bytes: &[u8]) -> (Cow<'_, str>, TextEncoding) {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return (utf8(rest), TextEncoding::Utf8Bom);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return (Cow::Owned(utf16(rest, false)), TextEncoding::Utf16LeBom);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return (Cow::Owned(utf16(rest, true)), TextEncoding::Utf16BeBom);
    }
    match sniff_utf16(bytes) {
        Some(big_endian) => (
            Cow::Owned(utf16(bytes, big_endian)),
            if big_endian {
                TextEncoding::Utf16Be
            } else {
                TextEncoding::Utf16Le
            },
        ),
        None => (utf8(bytes), TextEncoding::Utf8),
    }
}

/// UTF-8, invalid sequences replaced. The strict check first: it is several times faster than
/// the lossy decoder on valid text, which is what nearly every file is.
fn utf8(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// UTF-16 without BOM: mostly-ASCII text has a zero in every other byte.
fn sniff_utf16(bytes: &[u8]) -> Option<bool> {
    let n = bytes.len().min(4096) / 2 * 2;
    if n < 4 {
        return None;
    }
    let (mut even_zero, mut odd_zero) = (0usize, 0usize);
    for (i, b) in bytes[..n].iter().enumerate() {
        if *b == 0 {
            if i % 2 == 0 {
                even_zero += 1;
            } else {
                odd_zero += 1;
            }
        }
    }
    let pairs = n / 2;
    if odd_zero * 10 >= pairs * 6 && even_zero * 10 <= pairs {
        Some(false)
    } else if even_zero * 10 >= pairs * 6 && odd_zero * 10 <= pairs {
        Some(true)
    } else {
        None
    }
}

fn utf16(bytes: &[u8], big_endian: bool) -> String {
    let units = bytes.chunks_exact(2).map(|c| {
        if big_endian {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_le_bytes([c[0], c[1]])
        }
    });
    char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// Encodes text (line ends as given) in one of the Windows encodings.
pub fn encode(text: &str, encoding: TextEncoding) -> Vec<u8> {
    match encoding {
        TextEncoding::Utf8 => text.as_bytes().to_vec(),
        TextEncoding::Utf8Bom => {
            let mut v = vec![0xEF, 0xBB, 0xBF];
            v.extend_from_slice(text.as_bytes());
            v
        }
        TextEncoding::Utf16LeBom | TextEncoding::Utf16Le => {
            let mut v = if encoding == TextEncoding::Utf16LeBom {
                vec![0xFF, 0xFE]
            } else {
                Vec::new()
            };
            for u in text.encode_utf16() {
                v.extend_from_slice(&u.to_le_bytes());
            }
            v
        }
        TextEncoding::Utf16BeBom | TextEncoding::Utf16Be => {
            let mut v = if encoding == TextEncoding::Utf16BeBom {
                vec![0xFE, 0xFF]
            } else {
                Vec::new()
            };
            for u in text.encode_utf16() {
                v.extend_from_slice(&u.to_be_bytes());
            }
            v
        }
    }
}

/// Rewrites `\n` and `\r\n` line ends to `ending`.
pub fn with_line_endings(text: &str, ending: LineEnding) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 32);
    for (i, line) in split_lines(text).enumerate() {
        if i > 0 {
            out.push_str(ending.as_str());
        }
        out.push_str(line);
    }
    out
}

/// The lines of `text` without their `\n` / `\r\n` ends (a trailing end does not start an extra
/// empty line; a stray `\r` before the end is removed too).
pub fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    Lines {
        rest: (!text.is_empty()).then_some(body),
    }
}

/// [`split_lines`]: `\n` found with memchr (lines are long enough for it to pay).
struct Lines<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        let line = match memchr::memchr(b'\n', rest.as_bytes()) {
            Some(i) => {
                self.rest = Some(&rest[i + 1..]);
                &rest[..i]
            }
            None => {
                self.rest = None;
                rest
            }
        };
        Some(line.strip_suffix('\r').unwrap_or(line))
    }
}

/// The name of the file a line came from, shared by every [`Evidence`] of that file: a big log
/// has millions of lines but few files, and a copy of the name per line is a third of the
/// reader's allocations. Reads like a `&str` (`Deref`, `Display`, comparisons with strings) and
/// serialises as a plain string.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FileLabel(Arc<str>);

impl FileLabel {
    /// The file name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for FileLabel {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for FileLabel {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for FileLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for FileLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<&str> for FileLabel {
    fn from(s: &str) -> Self {
        Self(Arc::from(s))
    }
}

impl From<String> for FileLabel {
    fn from(s: String) -> Self {
        Self(Arc::from(s))
    }
}

impl PartialEq<str> for FileLabel {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for FileLabel {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for FileLabel {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl Serialize for FileLabel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for FileLabel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::from)
    }
}

/// Where a piece of evidence came from: file, 1-based line number, and the line's text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Evidence {
    /// The file as the caller named it (a path or a label).
    pub file: FileLabel,
    /// 1-based line number in the decoded text.
    pub line: usize,
    /// The line, verbatim (without its line end).
    pub text: String,
}

impl Evidence {
    /// Builds one.
    pub fn new(file: &str, line: usize, text: &str) -> Self {
        Self {
            file: FileLabel::from(file),
            line,
            text: text.to_string(),
        }
    }
}

/// Lines a reader did not understand: how many, and the first few for the report.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Skipped {
    /// How many lines were skipped.
    pub count: usize,
    /// The first [`Skipped::MAX_SAMPLES`] of them.
    pub samples: Vec<Evidence>,
}

impl Skipped {
    /// How many skipped lines are kept as samples.
    pub const MAX_SAMPLES: usize = 5;

    /// Records one skipped line.
    pub fn push(&mut self, file: &str, line: usize, text: &str) {
        self.count += 1;
        if self.samples.len() < Self::MAX_SAMPLES {
            self.samples
                .push(Evidence::new(file, line, truncate_chars(text, 200)));
        }
    }

    /// Adds another count (samples appended while there is room).
    pub fn merge(&mut self, other: &Self) {
        self.count += other.count;
        for s in &other.samples {
            if self.samples.len() < Self::MAX_SAMPLES {
                self.samples.push(s.clone());
            }
        }
    }
}

/// At most `n` characters of `s`.
pub(crate) fn truncate_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_variant_to_the_same_text() {
        let text = "a,b\r\nCN=Zoë\r\n";
        for enc in [
            TextEncoding::Utf8,
            TextEncoding::Utf8Bom,
            TextEncoding::Utf16LeBom,
            TextEncoding::Utf16Le,
            TextEncoding::Utf16BeBom,
            TextEncoding::Utf16Be,
        ] {
            let d = decode(&encode(text, enc));
            assert_eq!(d.text, text, "{enc:?}");
            assert_eq!(d.encoding, enc);
        }
    }

    #[test]
    fn splits_lines_like_windows() {
        let v: Vec<&str> = split_lines("a\r\nb\n\nc").collect();
        assert_eq!(v, ["a", "b", "", "c"]);
        assert_eq!(split_lines("a\n").count(), 1);
        assert_eq!(split_lines("").count(), 0);
        assert_eq!(with_line_endings("a\nb\n", LineEnding::CrLf), "a\r\nb");
    }

    proptest::proptest! {
        #[test]
        fn splits_lines_like_str_split(text in "[a\r\n]{0,12}") {
            let body = text.strip_suffix('\n').unwrap_or(&text);
            let want: Vec<&str> = if text.is_empty() {
                Vec::new()
            } else {
                body.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect()
            };
            proptest::prop_assert_eq!(split_lines(&text).collect::<Vec<_>>(), want);
        }
    }

    #[test]
    fn file_labels_read_and_serialise_as_strings() {
        let e = Evidence::new("SEND20190502-1.LOG", 3, "a,b");
        assert_eq!(e.file, "SEND20190502-1.LOG");
        assert_eq!(e.file, "SEND20190502-1.LOG".to_string());
        assert!(e.file.ends_with(".LOG"));
        assert_eq!(
            format!("{}|{:?}", e.file, e.file),
            "SEND20190502-1.LOG|\"SEND20190502-1.LOG\""
        );
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"file":"SEND20190502-1.LOG","line":3,"text":"a,b"}"#
        );
        assert_eq!(serde_json::from_str::<Evidence>(&json).unwrap(), e);
    }

    #[test]
    fn odd_utf16_and_garbage_do_not_panic() {
        let _ = decode(&[0xFF, 0xFE, 0x41]);
        let _ = decode(&[0xFF, 0xFE, 0x00, 0xD8, 0x41, 0x00]);
        let d = decode(&[0xC3, 0x28, b'a']);
        assert!(d.text.ends_with('a'));
    }
}
