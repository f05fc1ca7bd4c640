//! PowerShell objects as a listing shows them, independent of the output format.
//!
//! Both `Format-List` text ([`super::format_list`]) and `ConvertTo-Json` ([`super::ps_json`]) are
//! read into [`PsObject`]s: named properties with a [`PsValue`] and the [`Evidence`] line where each
//! property was written. The typed rows (certificates, queues, connectors) are built from
//! `PsObject`s through the accessors here, so one row builder serves both formats. The value
//! parsers accept what real servers print: `True`/`False`, en-US and other cultures' dates
//! (`5/2/2019 6:32:14 AM`, `02.05.2019 06:32:14`, `2019-05-02 06:32:14`), `\/Date(ms)\/`, ISO 8601,
//! byte sizes (`35 MB (36,700,160 bytes)`), time spans (`1.00:00:00`) and multi-values (`{a, b}`,
//! `{a, b, c, d...}` when `$FormatEnumerationLimit` cut the list).

use serde::{Deserialize, Serialize};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use super::queue::en_us_datetime;
use super::text::Evidence;

/// One property value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "value")]
pub enum PsValue {
    /// `$null`: an empty Format-List value, JSON `null`.
    Null,
    /// Text as printed (Format-List) or a JSON string.
    Text(String),
    /// A JSON boolean.
    Bool(bool),
    /// A JSON number, kept as written.
    Number(String),
    /// A collection: `{a, b}` in Format-List, an array in JSON. `truncated` when the listing showed
    /// only the first items (`{a, b, c, d...}`).
    List {
        /// The items the listing printed, in order (fewer than the object holds when cut).
        items: Vec<String>,
        /// Whether the list was cut.
        truncated: bool,
    },
    /// A date the writer knows as a date (JSON `\/Date(ms)\/` or ISO 8601, or a lab value to render).
    Date(#[serde(with = "time::serde::rfc3339")] OffsetDateTime),
}

impl PsValue {
    /// Text value; `None` and empty strings become [`PsValue::Null`].
    pub fn text(s: impl Into<String>) -> Self {
        let s = s.into();
        if s.is_empty() {
            Self::Null
        } else {
            Self::Text(s)
        }
    }

    /// Optional text.
    pub fn opt_text(s: Option<&str>) -> Self {
        s.map_or(Self::Null, Self::text)
    }

    /// A boolean.
    pub fn bool(b: bool) -> Self {
        Self::Bool(b)
    }

    /// Optional boolean.
    pub fn opt_bool(b: Option<bool>) -> Self {
        b.map_or(Self::Null, Self::Bool)
    }

    /// A number.
    pub fn num(n: impl std::fmt::Display) -> Self {
        Self::Number(n.to_string())
    }

    /// Optional number.
    pub fn opt_num<T: std::fmt::Display>(n: Option<T>) -> Self {
        n.map_or(Self::Null, Self::num)
    }

    /// A complete list.
    pub fn list<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Self {
        Self::List {
            items: items.into_iter().map(|s| s.as_ref().to_string()).collect(),
            truncated: false,
        }
    }

    /// Optional date.
    pub fn opt_date(d: Option<OffsetDateTime>) -> Self {
        d.map_or(Self::Null, Self::Date)
    }

    /// The value as Format-List prints it (en-US culture; lists limited to `enum_limit` items).
    pub fn display(&self, enum_limit: Option<usize>) -> String {
        match self {
            Self::Null => String::new(),
            Self::Text(s) | Self::Number(s) => s.clone(),
            Self::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            Self::Date(d) => en_us_datetime(*d),
            Self::List { items, truncated } => {
                let limit = enum_limit.unwrap_or(usize::MAX);
                let shown = items.len().min(limit);
                let mut s = String::from("{");
                s.push_str(&items[..shown].join(", "));
                if *truncated || items.len() > shown {
                    s.push_str("...");
                }
                s.push('}');
                s
            }
        }
    }

    /// Text for accessors: trimmed, `None` when empty or null.
    pub fn as_text(&self) -> Option<String> {
        let s = match self {
            Self::Null => return None,
            Self::Text(s) | Self::Number(s) => s.trim().to_string(),
            Self::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            Self::Date(d) => en_us_datetime(*d),
            Self::List { items, .. } => items.join(", "),
        };
        (!s.is_empty()).then_some(s)
    }
}

/// One property of a listed object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PsProperty {
    /// The property name as printed.
    pub name: String,
    /// The value as the listing showed it (text, number, boolean, list, date or null).
    pub value: PsValue,
    /// Where it was written (the property's first line).
    pub evidence: Evidence,
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PsObject {
    /// Properties in the order printed.
    pub props: Vec<PsProperty>,
}

impl PsObject {
    /// The property named `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&PsProperty> {
        self.props
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// The property whose name matches `name` ignoring case, spaces, `_` and `-` (`Recipient
    /// Address` in a table header, `recipient_address` in the EAC's CSV, `RecipientAddress` in a
    /// listing).
    pub fn get_loose(&self, name: &str) -> Option<&PsProperty> {
        let key = loose_key(name);
        self.props.iter().find(|p| loose_key(&p.name) == key)
    }

    /// Non-empty text of the first of `names` present ([`PsObject::get_loose`] matching).
    pub fn text_loose(&self, names: &[&str]) -> Option<String> {
        names
            .iter()
            .find_map(|n| self.get_loose(n).and_then(|p| p.value.as_text()))
    }

    /// Whether any of `names` is present ([`PsObject::get_loose`] matching).
    pub fn has_loose(&self, names: &[&str]) -> bool {
        names.iter().any(|n| self.get_loose(n).is_some())
    }

    /// Whether the property is present (even with an empty value).
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The value, if present.
    pub fn value(&self, name: &str) -> Option<&PsValue> {
        self.get(name).map(|p| &p.value)
    }

    /// Non-empty text.
    pub fn text(&self, name: &str) -> Option<String> {
        self.value(name).and_then(PsValue::as_text)
    }

    /// Text, empty string when absent.
    pub fn text_or_empty(&self, name: &str) -> String {
        self.text(name).unwrap_or_default()
    }

    /// `True`/`False` (also `$true`, `1`/`0`).
    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.value(name)? {
            PsValue::Bool(b) => Some(*b),
            v => parse_bool(&v.as_text()?),
        }
    }

    /// An unsigned integer (`20`, `1,234`).
    pub fn u64(&self, name: &str) -> Option<u64> {
        parse_u64(&self.text(name)?)
    }

    /// A signed integer.
    pub fn i64(&self, name: &str) -> Option<i64> {
        let t = self.text(name)?;
        let t = t.trim();
        match t.strip_prefix('-') {
            Some(rest) => parse_u64(rest)
                .and_then(|n| i64::try_from(n).ok())
                .map(|n| -n),
            None => parse_u64(t).and_then(|n| i64::try_from(n).ok()),
        }
    }

    /// A date (any format [`parse_ps_datetime`] reads).
    pub fn date(&self, name: &str) -> Option<OffsetDateTime> {
        match self.value(name)? {
            PsValue::Date(d) => Some(*d),
            v => parse_ps_datetime(&v.as_text()?),
        }
    }

    /// A collection: a JSON array, `{a, b}`, or a single value as a one-item list. Empty when
    /// absent or null.
    pub fn list(&self, name: &str) -> Vec<String> {
        match self.value(name) {
            None | Some(PsValue::Null) => Vec::new(),
            Some(PsValue::List { items, .. }) => items.clone(),
            Some(v) => v
                .as_text()
                .map(|t| parse_multi_value(&t).0)
                .unwrap_or_default(),
        }
    }

    /// Whether the listing cut the collection short.
    pub fn list_truncated(&self, name: &str) -> bool {
        match self.value(name) {
            Some(PsValue::List { truncated, .. }) => *truncated,
            Some(v) => v.as_text().is_some_and(|t| parse_multi_value(&t).1),
            None => false,
        }
    }

    /// A flags enum printed as `A, B, C` (or a list): the names.
    pub fn flags(&self, name: &str) -> Vec<String> {
        match self.value(name) {
            None | Some(PsValue::Null) => Vec::new(),
            Some(PsValue::List { items, .. }) => items.clone(),
            Some(v) => v
                .as_text()
                .map(|t| {
                    let t = t.trim_start_matches('{').trim_end_matches('}');
                    t.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Evidence of a property, falling back to the object's first line.
    pub fn evidence(&self, name: &str) -> Option<&Evidence> {
        self.get(name)
            .map(|p| &p.evidence)
            .or_else(|| self.props.first().map(|p| &p.evidence))
    }

    /// The object's first line.
    pub fn first_evidence(&self) -> Option<&Evidence> {
        self.props.first().map(|p| &p.evidence)
    }
}

/// Evidence for a typed row: the object's first line and each property's line.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RowEvidence {
    /// The object's first line.
    pub first: Option<Evidence>,
    /// Each property's first line, by property name as printed.
    pub props: Vec<(String, Evidence)>,
}

impl RowEvidence {
    /// From a listed object.
    pub fn of(obj: &PsObject) -> Self {
        Self {
            first: obj.first_evidence().cloned(),
            props: obj
                .props
                .iter()
                .map(|p| (p.name.clone(), p.evidence.clone()))
                .collect(),
        }
    }

    /// The line of property `name` (case-insensitive).
    pub fn prop(&self, name: &str) -> Option<&Evidence> {
        self.props
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, e)| e)
    }
}

/// A typed row with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parsed<T> {
    /// The typed fields read from the listed object.
    pub row: T,
    /// The lines of the listing it was read from (its first line and every property's).
    pub evidence: RowEvidence,
    /// The server the object says it belongs to ([`server_of_object`]), else the one its file's
    /// path names (set by the reader); `None` when neither tells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

impl<T> Parsed<T> {
    /// A row read from `obj`, with the object's evidence and the server it names.
    pub fn of(row: T, obj: &PsObject) -> Self {
        Self {
            row,
            evidence: RowEvidence::of(obj),
            server: server_of_object(obj),
        }
    }
}

/// The server an object belongs to, from its own fields: the `SERVER\` prefix of an
/// `Identity`/`QueueIdentity` (`EXCH01\3`, `EXCH01\Default Frontend EXCH01`, the most reliable:
/// a remote session's `PSComputerName` is the server it connected to, not the one asked with
/// `-Server`), else `Server`, `MachineName`, `PSComputerName` (`Invoke-Command`, remote
/// sessions). Not `OriginatingServer`: for directory objects that is a domain controller. The
/// NetBIOS name, upper case (`EXCH01` for `exch01.contoso.com`). `None` when nothing names one.
pub fn server_of_object(obj: &PsObject) -> Option<String> {
    for key in ["Identity", "QueueIdentity"] {
        if let Some(v) = obj.text(key)
            && let Some((s, rest)) = v.split_once('\\')
            && !rest.is_empty()
            && let Some(s) = server_name(s)
        {
            return Some(s);
        }
    }
    for key in ["Server", "MachineName", "PSComputerName"] {
        if let Some(v) = obj.text(key)
            && let Some(s) = server_name(&v)
        {
            return Some(s);
        }
    }
    None
}

/// A server's NetBIOS name from a host name, FQDN or `DOMAIN\SERVER`-free value: the first DNS
/// label, upper case; `None` for values that cannot be a server name (addresses, blanks, words
/// with spaces, over 63 characters).
pub fn server_name(v: &str) -> Option<String> {
    let t = v.trim().trim_end_matches('$');
    if t.is_empty()
        || t.contains([' ', '/', '\\', '@', ':'])
        || t.parse::<std::net::IpAddr>().is_ok()
    {
        return None;
    }
    let label = t.split('.').next()?;
    let ok = !label.is_empty()
        && label.len() <= 63
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !label.chars().all(|c| c.is_ascii_digit());
    ok.then(|| label.to_ascii_uppercase())
}

/// A property name reduced for [`PsObject::get_loose`]: lower case without spaces, `_` and `-`.
fn loose_key(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// `True`, `False`, `$true`, `$false`, `1`, `0` (case-insensitive).
pub fn parse_bool(s: &str) -> Option<bool> {
    let t = s.trim().trim_start_matches('$');
    if t.eq_ignore_ascii_case("true") || t == "1" {
        Some(true)
    } else if t.eq_ignore_ascii_case("false") || t == "0" {
        Some(false)
    } else {
        None
    }
}

/// Digits with optional grouping (`36,700,160`, `36.700.160`, `36 700 160`, NBSP).
pub fn parse_u64(s: &str) -> Option<u64> {
    let t = s.trim();
    if t.is_empty() || !t.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let mut n: u64 = 0;
    for c in t.chars() {
        match c {
            '0'..='9' => {
                n = n.checked_mul(10)?.checked_add(u64::from(c as u8 - b'0'))?;
            }
            ',' | '.' | ' ' | '\u{a0}' | '\u{202f}' | '\'' => {}
            _ => return None,
        }
    }
    Some(n)
}

/// `{a, b, c}` to items; `{a, b, c, d...}` (or `…`) is marked truncated. Text without braces is
/// one item. Returns (items, truncated).
pub fn parse_multi_value(s: &str) -> (Vec<String>, bool) {
    let t = s.trim();
    let Some(inner) = t.strip_prefix('{').and_then(|r| r.strip_suffix('}')) else {
        return if t.is_empty() {
            (Vec::new(), false)
        } else {
            (vec![t.to_string()], false)
        };
    };
    let (inner, truncated) = if let Some(r) = inner.strip_suffix("...") {
        (r, true)
    } else if let Some(r) = inner.strip_suffix('…') {
        (r, true)
    } else {
        (inner, false)
    };
    let items = inner
        .split(", ")
        .flat_map(|p| {
            // A wrapped list joined without the space after the comma.
            let p = p.trim();
            if p.is_empty() {
                None
            } else {
                Some(p.to_string())
            }
        })
        .collect();
    (items, truncated)
}

/// Parses the dates PowerShell and Exchange print, treating times without an offset as UTC:
/// - en-US `5/2/2019 6:32:14 AM` (and `d/M/yyyy` when the first number is over 12);
/// - `02.05.2019 06:32:14`, `02-05-2019 06:32:14`, `15-01-21 23:50:05` (day first);
/// - `08-May-2026 07:45:27`, `2 May 2019 06:32:14`;
/// - ISO 8601 `2019-05-02T06:32:14.123Z`, `2019-05-02 06:32:14`, with or without an offset;
/// - `\/Date(1556778734000)\/` and `/Date(1556778734000+0200)/` (Windows PowerShell 5.1 JSON).
pub fn parse_ps_datetime(s: &str) -> Option<OffsetDateTime> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    if let Some(d) = parse_ms_date(t) {
        return Some(d);
    }
    if let Some(d) = parse_iso(t) {
        return Some(d);
    }
    parse_culture_date(t)
}

fn parse_ms_date(t: &str) -> Option<OffsetDateTime> {
    let t = t.trim_matches(|c| c == '\\' || c == '/');
    let inner = t.strip_prefix("Date(")?.strip_suffix(')')?;
    // Optional offset suffix: +hhmm / -hhmm after the milliseconds (the instant is UTC anyway).
    let body = inner.strip_prefix('-').unwrap_or(inner);
    let end = body
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(body.len());
    let ms: i64 = body[..end].parse().ok()?;
    let ms = if inner.starts_with('-') { -ms } else { ms };
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// A fast ISO 8601 parser for the shapes logs and JSON use.
pub fn parse_iso(t: &str) -> Option<OffsetDateTime> {
    let b = t.as_bytes();
    if b.len() < 16 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = b.get(r)?;
        let mut n = 0u32;
        for c in s {
            if !c.is_ascii_digit() {
                return None;
            }
            n = n * 10 + u32::from(c - b'0');
        }
        Some(n)
    };
    let year = num(0..4)? as i32;
    let month = num(5..7)? as u8;
    let day = num(8..10)? as u8;
    let hour = num(11..13)? as u8;
    if b.get(13) != Some(&b':') {
        return None;
    }
    let minute = num(14..16)? as u8;
    let mut i = 16;
    let mut second = 0u8;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b':') {
        second = num(i + 1..i + 3)? as u8;
        i += 3;
        if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
            i += 1;
            let mut digits = 0usize;
            while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
                if digits < 9 {
                    nanos = nanos * 10 + u32::from(c - b'0');
                }
                digits += 1;
                i += 1;
            }
            if digits == 0 {
                return None;
            }
            // Digits beyond nanoseconds are dropped; fewer are scaled up (`.981` is 981 ms).
            const SCALE: [u32; 9] = [
                100_000_000,
                10_000_000,
                1_000_000,
                100_000,
                10_000,
                1_000,
                100,
                10,
                1,
            ];
            nanos *= SCALE[digits.min(9) - 1];
        }
    }
    let offset = match &b[i..] {
        [] | [b'Z'] | [b'z'] => UtcOffset::UTC,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let digits: Vec<u8> = rest.iter().copied().filter(|c| *c != b':').collect();
            if digits.len() != 4 || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let h = i8::try_from((digits[0] - b'0') * 10 + (digits[1] - b'0')).ok()?;
            let m = i8::try_from((digits[2] - b'0') * 10 + (digits[3] - b'0')).ok()?;
            let (h, m) = if *sign == b'-' { (-h, -m) } else { (h, m) };
            UtcOffset::from_hms(h, m, 0).ok()?
        }
        _ => return None,
    };
    let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    let time = Time::from_hms_nano(hour, minute, second, nanos).ok()?;
    let t = PrimitiveDateTime::new(date, time);
    // Logs write `Z`: nothing to convert then.
    Some(if offset == UtcOffset::UTC {
        t.assume_utc()
    } else {
        t.assume_offset(offset).to_offset(UtcOffset::UTC)
    })
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

fn month_name(s: &str) -> Option<u8> {
    let l = s.to_ascii_lowercase();
    if l.len() < 3 {
        return None;
    }
    MONTHS
        .iter()
        .position(|m| l.starts_with(m))
        .map(|i| i as u8 + 1)
}

fn parse_culture_date(t: &str) -> Option<OffsetDateTime> {
    let mut words = t.split_whitespace();
    let date_part = words.next()?;
    let rest: Vec<&str> = words.collect();
    let (d, m, y) = if let Some(sep) = ['/', '.', '-'].into_iter().find(|c| date_part.contains(*c))
    {
        let parts: Vec<&str> = date_part.trim_end_matches('.').split(sep).collect();
        if parts.len() != 3 {
            return None;
        }
        let a: u32 = parts[0].parse().ok()?;
        if parts[0].len() == 4 {
            // ja-JP, zh-CN, en-ZA: `2019/05/02 6:32:14`, `2019/5/2 6:32:14`.
            let month: u32 = parts[1].parse().ok()?;
            let day: u32 = parts[2].parse().ok()?;
            return build(day, month, i32::try_from(a).ok()?, &rest);
        }
        let c = parts[2];
        let year = parse_year(c)?;
        if let Some(mn) = month_name(parts[1]) {
            (a, u32::from(mn), year)
        } else {
            let bnum: u32 = parts[1].parse().ok()?;
            if sep == '/' {
                if a > 12 {
                    (a, bnum, year)
                } else if bnum > 12 || slash_is_month_first(parts[0], parts[1], &rest) {
                    (bnum, a, year)
                } else {
                    (a, bnum, year)
                }
            } else if bnum > 12 {
                (bnum, a, year)
            } else {
                (a, bnum, year)
            }
        }
    } else {
        // `2 May 2019 06:32:14`
        let day: u32 = date_part.parse().ok()?;
        let mn = month_name(rest.first()?)?;
        let year = parse_year(rest.get(1)?)?;
        let time_words = &rest[2..];
        return build(day, u32::from(mn), year, time_words);
    };
    build(d, m, y, &rest)
}

/// Tells en-US `M/d/yyyy h:mm:ss tt` from the day-first cultures that also use slashes (en-GB,
/// en-AU, fr-FR, es-ES, it-IT: `dd/MM/yyyy HH:mm:ss`) when both numbers are 12 or less. en-US
/// prints the time with AM/PM and does not pad the date; the day-first cultures print a 24-hour
/// time and (en-GB, fr-FR, it-IT) pad to two digits. A date with neither cue is read as en-US,
/// the culture of most Exchange servers.
fn slash_is_month_first(first: &str, second: &str, time_words: &[&str]) -> bool {
    let ampm = time_words.get(1).is_some_and(|w| {
        matches!(
            w.to_ascii_uppercase().replace('.', "").as_str(),
            "AM" | "PM"
        )
    });
    if ampm {
        return true;
    }
    if time_words.is_empty() {
        return !(first.len() == 2 && second.len() == 2);
    }
    false
}

fn parse_year(s: &str) -> Option<i32> {
    let y: i32 = s.parse().ok()?;
    match s.len() {
        4 => Some(y),
        2 => Some(2000 + y),
        _ => None,
    }
}

fn build(day: u32, month: u32, year: i32, time_words: &[&str]) -> Option<OffsetDateTime> {
    let date = Date::from_calendar_date(
        year,
        Month::try_from(u8::try_from(month).ok()?).ok()?,
        u8::try_from(day).ok()?,
    )
    .ok()?;
    let (mut h, mut mi, mut s) = (0u8, 0u8, 0u8);
    if let Some(clock) = time_words.first() {
        let mut parts = clock.split(':');
        h = parts.next()?.parse().ok()?;
        mi = parts.next()?.parse().ok()?;
        if let Some(sec) = parts.next() {
            s = sec.split('.').next()?.parse().ok()?;
        }
        if let Some(ampm) = time_words.get(1) {
            let a = ampm.to_ascii_uppercase().replace('.', "");
            match a.as_str() {
                "AM" if h == 12 => h = 0,
                "AM" => {}
                "PM" if h < 12 => h += 12,
                "PM" => {}
                _ => return None,
            }
        }
    }
    let time = Time::from_hms(h, mi, s).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn dates_in_many_cultures() {
        let want = datetime!(2019-05-02 06:32:14 UTC);
        for s in [
            "5/2/2019 6:32:14 AM",
            "02.05.2019 06:32:14",
            "2019-05-02 06:32:14",
            "2019-05-02T06:32:14.000Z",
            "2019-05-02T08:32:14+02:00",
            "\\/Date(1556778734000)\\/",
            "/Date(1556778734000)/",
            "/Date(1556778734000+0200)/",
            "02-May-2019 06:32:14",
            "2 May 2019 06:32:14",
        ] {
            assert_eq!(parse_ps_datetime(s), Some(want), "{s}");
        }
        assert_eq!(
            parse_ps_datetime("12/31/2019 1:05:09 PM"),
            Some(datetime!(2019-12-31 13:05:09 UTC))
        );
        assert_eq!(
            parse_ps_datetime("31/12/2019 1:05:09 PM"),
            Some(datetime!(2019-12-31 13:05:09 UTC))
        );
        // en-GB and fr-FR (day first, 24-hour), ja-JP and zh-CN (year first).
        for s in [
            "02/05/2019 06:32:14",
            "2/5/2019 06:32:14",
            "02/05/2019",
            "2019/05/02 6:32:14",
            "2019/5/2 06:32:14",
        ] {
            let d = parse_ps_datetime(s).expect(s);
            assert_eq!((d.month(), d.day()), (Month::May, 2), "{s}");
        }
        assert_eq!(
            parse_ps_datetime("5/2/2019"),
            Some(datetime!(2019-05-02 00:00:00 UTC))
        );
        assert_eq!(
            parse_ps_datetime("15-01-21 23:50:05"),
            Some(datetime!(2021-01-15 23:50:05 UTC))
        );
        assert_eq!(
            parse_ps_datetime("12/31/2019 12:05:09 AM"),
            Some(datetime!(2019-12-31 00:05:09 UTC))
        );
        for bad in [
            "",
            "hello",
            "13/13/2019",
            "2019-13-01T00:00:00Z",
            "1/2/3 4",
            "Date(",
        ] {
            assert_eq!(parse_ps_datetime(bad), None, "{bad}");
        }
    }

    #[test]
    fn sizes_spans_lists() {
        assert_eq!(
            hybridlab_model::size::ByteSize::parse_listing("35 MB (36,700,160 bytes)"),
            Some(hybridlab_model::size::ByteSize::Bytes(36_700_160))
        );
        assert_eq!(
            hybridlab_model::size::ByteSize::parse_listing("Unlimited"),
            Some(hybridlab_model::size::ByteSize::Unlimited)
        );
        assert_eq!(
            hybridlab_model::size::ByteSize::parse_listing("10 MB"),
            Some(hybridlab_model::size::ByteSize::Bytes(10_485_760))
        );
        assert_eq!(
            hybridlab_model::size::ByteSize::Bytes(36_700_160).display_listing(),
            "35 MB (36,700,160 bytes)"
        );
        assert_eq!(
            hybridlab_model::size::ByteSize::Bytes(10_250).display_listing(),
            "10.01 KB (10,250 bytes)"
        );
        assert_eq!(
            parse_multi_value("{a, b, c, d...}"),
            (vec!["a".into(), "b".into(), "c".into(), "d".into()], true)
        );
        assert_eq!(parse_multi_value("{}"), (vec![], false));
        assert_eq!(parse_multi_value("x"), (vec!["x".into()], false));
        assert_eq!(parse_u64("36,700,160"), Some(36_700_160));
        assert_eq!(parse_bool("$true"), Some(true));
    }
}
