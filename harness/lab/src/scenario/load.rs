//! Loading scenario files: TOML with spans, `extend` chains, and validation whose errors name the
//! file, line and column of the offending key and say what is expected.
//!
//! How `extend` works: each file of the chain is parsed on its own into a spanned tree; the spans
//! are shifted so that they index one virtual text made of all the files one after the other; the
//! trees are merged (base first: tables merge key by key, arrays and scalars replace, an empty
//! string removes the key the base set); serde reads
//! the merged tree. A span in any error therefore maps back to exactly one file, line and column.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::model::{ChangeAction, Scenario};
use hybridlab_onprem::certstore::AuthorityDescription;
use hybridlab_onprem::connector::SendConnector;
use hybridlab_onprem::transport::CertificateCache;

/// How deep `extend` chains may go.
const MAX_EXTEND_DEPTH: usize = 8;

/// A scenario that cannot be used: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ScenarioError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column (characters), when known.
    pub column: Option<usize>,
    /// What is wrong and what is expected.
    pub message: String,
}

impl ScenarioError {
    fn new(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    fn render(&self) -> String {
        let mut s = self.file.display().to_string();
        if let Some(l) = self.line {
            s.push_str(&format!(":{l}"));
            if let Some(c) = self.column {
                s.push_str(&format!(":{c}"));
            }
        }
        format!("{s}: {}", self.message)
    }
}

/// One file of an `extend` chain inside the virtual text.
#[derive(Debug)]
struct SourceFile {
    path: PathBuf,
    offset: usize,
    len: usize,
}

/// All the files of a chain, one after the other.
#[derive(Debug, Default)]
struct Sources {
    text: String,
    files: Vec<SourceFile>,
}

impl Sources {
    fn push(&mut self, path: PathBuf, text: &str) -> usize {
        let offset = self.text.len();
        self.text.push_str(text);
        self.text.push('\n');
        self.files.push(SourceFile {
            path,
            offset,
            len: text.len(),
        });
        self.files.len() - 1
    }

    /// The error for `message` at virtual offset `at`.
    fn error_at(&self, at: usize, message: impl Into<String>) -> ScenarioError {
        let file = self
            .files
            .iter()
            .rev()
            .find(|f| f.offset <= at)
            .or(self.files.first());
        let Some(file) = file else {
            return ScenarioError::new(Path::new("<scenario>"), message);
        };
        let local = at.saturating_sub(file.offset).min(file.len);
        let text = &self.text[file.offset..file.offset + file.len];
        let before = &text[..floor_char_boundary(text, local)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let column = before[line_start..].chars().count() + 1;
        ScenarioError {
            file: file.path.clone(),
            line: Some(line),
            column: Some(column),
            message: message.into(),
        }
    }

    fn error_span(&self, span: Option<Range<usize>>, message: impl Into<String>) -> ScenarioError {
        match span {
            Some(s) => self.error_at(s.start, message),
            None => {
                let path = self
                    .files
                    .last()
                    .map(|f| f.path.clone())
                    .unwrap_or_default();
                ScenarioError::new(&path, message)
            }
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Loads, merges, checks and validates a scenario file.
///
/// # Errors
/// The file (or a base it extends) cannot be read, is not TOML, has an unknown key or a value of
/// the wrong shape, names a certificate or authority that does not exist, or asks for something
/// impossible. The error names the file, line and column.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    // pass 1: the chain, scenario file first
    let mut chain: Vec<(PathBuf, String)> = Vec::new();
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    let mut next = Some(path.to_path_buf());
    while let Some(p) = next.take() {
        if chain.len() > MAX_EXTEND_DEPTH {
            return Err(ScenarioError::new(
                path,
                format!("`extend` chain deeper than {MAX_EXTEND_DEPTH} files"),
            ));
        }
        let canon = p.canonicalize().unwrap_or_else(|_| p.clone());
        if !seen.insert(canon) {
            let from = chain.last().map(|(f, _)| f.clone()).unwrap_or_default();
            return Err(ScenarioError::new(
                &from,
                format!("`extend` cycle: {} is already in the chain", p.display()),
            ));
        }
        let text = std::fs::read_to_string(&p).map_err(|e| {
            let from = chain.last().map(|(f, _)| f.as_path()).unwrap_or(path);
            if chain.is_empty() {
                ScenarioError::new(&p, format!("cannot read: {e}"))
            } else {
                ScenarioError::new(
                    from,
                    format!(
                        "extend = {:?}: cannot read {}: {e}",
                        p.display(),
                        p.display()
                    ),
                )
            }
        })?;
        let mut one = Sources::default();
        one.push(p.clone(), &text);
        let extend = {
            let tree = parse(&one, 0)?;
            match tree.get_ref().get("extend") {
                None => None,
                Some(v) => match v.get_ref() {
                    DeValue::String(s) => Some(s.to_string()),
                    _ => {
                        return Err(one.error_span(
                            Some(v.span()),
                            "field `extend`: expected a path (string) relative to this file",
                        ));
                    }
                },
            }
        };
        if let Some(rel) = extend {
            let base = p.parent().unwrap_or(Path::new(".")).join(&rel);
            next = Some(base);
        }
        chain.push((p, text));
    }
    chain.reverse();

    // pass 2: one virtual text, trees with shifted spans, merged base first
    let mut sources = Sources::default();
    let ids: Vec<usize> = chain
        .iter()
        .map(|(p, t)| sources.push(p.clone(), t))
        .collect();
    let mut merged: Option<Spanned<DeTable<'_>>> = None;
    for id in ids {
        let mut tree = parse(&sources, id)?;
        tree.get_mut().remove("extend");
        merged = Some(match merged {
            None => tree,
            Some(mut base) => {
                let span = tree.span();
                merge_tables(base.get_mut(), tree.into_inner());
                Spanned::new(span, base.into_inner())
            }
        });
    }
    let Some(mut merged) = merged else {
        return Err(ScenarioError::new(path, "empty extend chain"));
    };

    // scenario-level conveniences the reused types do not know
    let pre = preprocess(&sources, merged.get_mut())?;

    let tree_for_lookup = merged.clone();
    let mut scenario: Scenario = Scenario::deserialize(toml::de::Deserializer::from(merged))
        .map_err(|e| sources.error_span(e.span(), with_suggestion(e.message().trim())))?;
    scenario.source.path = path.to_path_buf();
    scenario.source.chain = chain.iter().map(|(p, _)| p.clone()).collect();
    scenario.source.tls_certificate_ref = pre.cert_ref.as_ref().map(|(n, _)| n.clone());
    if let Some(c) = pre.certificate_cache {
        scenario.onprem.certificate_cache = c;
    }
    scenario.onprem.not_installed = pre
        .not_installed
        .iter()
        .filter_map(|&i| scenario.onprem.certificates.get(i).map(|c| c.name.clone()))
        .collect();
    for (i, (name, _)) in &pre.change_cert_refs {
        if let Some(c) = scenario
            .changes
            .get_mut(*i)
            .and_then(|c| c.set_send_connector.as_mut())
        {
            c.certificate = Some(name.clone());
        }
    }
    if scenario.scenario.id.trim().is_empty() {
        scenario.scenario.id = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".into());
    }
    let v = Validator {
        sources: &sources,
        tree: tree_for_lookup.get_ref(),
    };
    v.validate(&mut scenario, &pre)?;
    Ok(scenario)
}

/// `unknown field `requre_tls`, expected one of ...` gets `; did you mean `require_tls`?`.
fn with_suggestion(message: &str) -> String {
    let (Some(rest), Some(list)) = (
        message
            .strip_prefix("unknown field `")
            .or_else(|| message.strip_prefix("unknown variant `")),
        message.split_once("expected one of ").map(|(_, l)| l),
    ) else {
        return message.to_string();
    };
    let Some(bad) = rest.split('`').next() else {
        return message.to_string();
    };
    let best = list
        .split(", ")
        .map(|o| o.trim_matches('`'))
        .map(|o| {
            (
                edit_distance(&bad.to_ascii_lowercase(), &o.to_ascii_lowercase()),
                o,
            )
        })
        .min();
    match best {
        Some((d, o)) if d <= 3 && d < bad.len() => format!("{message}; did you mean `{o}`?"),
        _ => message.to_string(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Parses file `id` of `sources` into a tree whose spans index the virtual text.
fn parse(sources: &Sources, id: usize) -> Result<Spanned<DeTable<'_>>, ScenarioError> {
    let f = &sources.files[id];
    let text = &sources.text[f.offset..f.offset + f.len];
    let tree = DeTable::parse(text).map_err(|e| {
        sources.error_span(
            e.span().map(|s| s.start + f.offset..s.end + f.offset),
            e.message().trim().to_string(),
        )
    })?;
    let span = tree.span();
    let table = shift_table(tree.into_inner(), f.offset);
    Ok(Spanned::new(
        span.start + f.offset..span.end + f.offset,
        table,
    ))
}

fn shift_table(t: DeTable<'_>, off: usize) -> DeTable<'_> {
    t.into_iter()
        .map(|(k, v)| {
            let ks = k.span();
            (
                Spanned::new(ks.start + off..ks.end + off, k.into_inner()),
                shift_value(v, off),
            )
        })
        .collect()
}

fn shift_value(v: Spanned<DeValue<'_>>, off: usize) -> Spanned<DeValue<'_>> {
    let s = v.span();
    let inner = match v.into_inner() {
        DeValue::Table(t) => DeValue::Table(shift_table(t, off)),
        DeValue::Array(mut a) => {
            for item in a.iter_mut() {
                let taken = std::mem::replace(item, Spanned::new(0..0, DeValue::Boolean(false)));
                *item = shift_value(taken, off);
            }
            DeValue::Array(a)
        }
        other => other,
    };
    Spanned::new(s.start + off..s.end + off, inner)
}

/// Tables merge key by key; anything else replaces; an empty string removes what the base set
/// (`tls_auth_level = ""` unsets an inherited TlsAuthLevel).
fn merge_tables<'a>(base: &mut DeTable<'a>, overlay: DeTable<'a>) {
    for (k, v) in overlay {
        if matches!(v.get_ref(), DeValue::String(s) if s.is_empty()) && base.contains_key(&k) {
            base.remove(&k);
            continue;
        }
        let both_tables = matches!(v.get_ref(), DeValue::Table(_))
            && matches!(base.get(&k).map(|b| b.get_ref()), Some(DeValue::Table(_)));
        if both_tables && let Some(mut existing) = base.remove(&k) {
            let span = v.span();
            if let (DeValue::Table(bt), DeValue::Table(ot)) = (existing.get_mut(), v.into_inner()) {
                merge_tables(bt, ot);
            }
            base.insert(k, Spanned::new(span, existing.into_inner()));
            continue;
        }
        base.remove(&k);
        base.insert(k, v);
    }
}

/// What the preprocessing took out of the tree.
#[derive(Debug, Default)]
struct Preprocessed {
    /// `tls_certificate_name = { cert = "name" }`: the name and its span.
    cert_ref: Option<(String, Range<usize>)>,
    /// `[onprem.transport] certificate_cache`.
    certificate_cache: Option<CertificateCache>,
    /// Indices into `[[onprem.certificates]]` of the entries with `installed = false`.
    not_installed: Vec<usize>,
    /// `[[changes]]` index -> `set_send_connector.tls_certificate_name = { cert = "name" }`.
    change_cert_refs: BTreeMap<usize, (String, Range<usize>)>,
}

fn table_mut<'a, 'b>(t: &'b mut DeTable<'a>, key: &str) -> Option<&'b mut DeTable<'a>> {
    match t.get_mut(key).map(|v| v.get_mut()) {
        Some(DeValue::Table(inner)) => Some(inner),
        _ => None,
    }
}

fn preprocess(sources: &Sources, root: &mut DeTable<'_>) -> Result<Preprocessed, ScenarioError> {
    let mut out = Preprocessed::default();
    if let Some(changes) = root.get_mut("changes")
        && let DeValue::Array(a) = changes.get_mut()
    {
        for (i, c) in a.iter_mut().enumerate() {
            if let DeValue::Table(t) = c.get_mut()
                && let Some(DeValue::Table(conn)) =
                    t.get_mut("set_send_connector").map(|v| v.get_mut())
                && let Some(r) = take_cert_ref(sources, conn)?
            {
                out.change_cert_refs.insert(i, r);
            }
        }
    }
    let Some(onprem) = table_mut(root, "onprem") else {
        return Ok(out);
    };
    if let Some(server) = table_mut(onprem, "server")
        && let Some(v) = server.get("version")
    {
        return Err(sources.error_span(
            Some(v.span()),
            "field `version`: set the Exchange version in [scenario] exchange_version",
        ));
    }
    if let Some(conn) = table_mut(onprem, "send_connector") {
        out.cert_ref = take_cert_ref(sources, conn)?;
    }
    if let Some(certs) = onprem.get_mut("certificates")
        && let DeValue::Array(a) = certs.get_mut()
    {
        for (i, c) in a.iter_mut().enumerate() {
            if let DeValue::Table(t) = c.get_mut() {
                if matches!(t.get("issuer").map(|v| v.get_ref()), Some(DeValue::String(s)) if s.eq_ignore_ascii_case("self-signed"))
                {
                    t.remove("issuer");
                }
                if let Some(v) = t.get("installed") {
                    match v.get_ref() {
                        DeValue::Boolean(false) => out.not_installed.push(i),
                        DeValue::Boolean(true) => {}
                        _ => {
                            return Err(sources.error_span(
                                Some(v.span()),
                                "field `installed`: expected true or false (false: absent from the store until a [[changes]] entry installs it)",
                            ));
                        }
                    }
                    t.remove("installed");
                }
            }
        }
    }
    let mut empty_transport = false;
    if let Some(tr) = table_mut(onprem, "transport")
        && let Some(v) = tr.get("certificate_cache")
    {
        out.certificate_cache = Some(match v.get_ref() {
            DeValue::String(s) if s.as_ref() == "until_restart" => CertificateCache::UntilRestart,
            DeValue::String(s) if s.as_ref() == "none" => CertificateCache::Disabled,
            _ => {
                return Err(sources.error_span(
                    Some(v.span()),
                    "field `certificate_cache`: expected \"until_restart\" (the transport keeps the certificate it selected until Restart-Service MSExchangeTransport) or \"none\"",
                ));
            }
        });
        tr.remove("certificate_cache");
        // an empty [onprem.transport] would pick the Edge defaults instead of the role's
        empty_transport = tr.is_empty();
    }
    if empty_transport {
        onprem.remove("transport");
    }
    Ok(out)
}

/// Takes `tls_certificate_name = { cert = "name" }` out of a connector table: the name and its
/// span. A literal string stays.
fn take_cert_ref(
    sources: &Sources,
    conn: &mut DeTable<'_>,
) -> Result<Option<(String, Range<usize>)>, ScenarioError> {
    let Some(v) = conn.get("tls_certificate_name") else {
        return Ok(None);
    };
    let DeValue::Table(t) = v.get_ref() else {
        return Ok(None);
    };
    let span = v.span();
    let mut name = None;
    for (k, val) in t.iter() {
        match (k.get_ref().as_ref(), val.get_ref()) {
            ("cert", DeValue::String(s)) => name = Some((s.to_string(), val.span())),
            ("cert", _) => {
                return Err(sources.error_span(
                    Some(val.span()),
                    "field `cert`: expected the name of a certificate in [[onprem.certificates]]",
                ));
            }
            (other, _) => {
                return Err(sources.error_span(
                    Some(k.span()),
                    format!(
                        "unknown field `{other}`, expected `cert` (tls_certificate_name = {{ cert = \"name\" }} or a literal \"<I>issuer<S>subject\")"
                    ),
                ));
            }
        }
    }
    let Some(name) = name else {
        return Err(sources.error_span(
            Some(span),
            "field `tls_certificate_name`: expected { cert = \"name\" } or a literal \"<I>issuer<S>subject\"",
        ));
    };
    conn.remove("tls_certificate_name");
    Ok(Some(name))
}

/// A step of a key path.
#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

/// `tenants[0].inbound_connectors[1].name` -> segments.
fn parse_path(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            out.push(Seg::Key(rest[..i].to_string()));
            rest = &rest[i..];
            while let Some(r) = rest.strip_prefix('[') {
                let Some(end) = r.find(']') else { break };
                if let Ok(n) = r[..end].parse() {
                    out.push(Seg::Index(n));
                }
                rest = &r[end + 1..];
            }
        } else if !rest.is_empty() {
            out.push(Seg::Key(rest.to_string()));
        }
    }
    out
}

struct Validator<'s, 't, 'i> {
    sources: &'s Sources,
    tree: &'t DeTable<'i>,
}

impl Validator<'_, '_, '_> {
    /// The span of the deepest existing key along `path` (the key itself when it exists).
    fn span_of(&self, path: &str) -> Option<Range<usize>> {
        let segs = parse_path(path);
        let mut best: Option<Range<usize>> = None;
        let mut table: Option<&DeTable<'_>> = Some(self.tree);
        let mut value: Option<&Spanned<DeValue<'_>>> = None;
        for seg in segs {
            match seg {
                Seg::Key(k) => {
                    let Some(t) = table else { break };
                    let Some((key, v)) = t.get_key_value(k.as_str()) else {
                        break;
                    };
                    best = Some(key.span());
                    value = Some(v);
                }
                Seg::Index(i) => {
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

    fn err(&self, path: &str, message: impl Into<String>) -> ScenarioError {
        self.sources.error_span(self.span_of(path), message)
    }

    fn validate(&self, s: &mut Scenario, pre: &Preprocessed) -> Result<(), ScenarioError> {
        let id = &s.scenario.id;
        if id
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c == '\\')
        {
            return Err(self.err(
                "scenario.id",
                format!("field `id`: {id:?} may not contain spaces or slashes"),
            ));
        }

        // on-premises
        let onprem = &mut s.onprem;
        match onprem.source_address {
            std::net::IpAddr::V4(v4) if v4.is_loopback() => {}
            other => {
                return Err(self.err(
                    "onprem.source_address",
                    format!(
                        "field `source_address`: {other} is not in 127.0.0.0/8 (the lab sends only from loopback)"
                    ),
                ));
            }
        }
        for (name, a) in onprem.authorities.iter_mut() {
            if !a.name.is_empty() && &a.name != name {
                return Err(self.err(
                    &format!("onprem.authorities.{name}.name"),
                    format!(
                        "field `name`: {:?} differs from the table key {name:?} (leave it out)",
                        a.name
                    ),
                ));
            }
            a.name = name.clone();
        }
        for (name, a) in &onprem.authorities {
            if let Some(parent) = &a.issuer
                && !onprem.authorities.contains_key(parent)
            {
                return Err(self.err(
                    &format!("onprem.authorities.{name}.issuer"),
                    format!(
                        "field `issuer`: no authority named {parent:?}; expected one of {}",
                        names(onprem.authorities.keys())
                    ),
                ));
            }
        }
        if let Some(cycle) = authority_cycle(&onprem.authorities) {
            return Err(self.err(
                &format!("onprem.authorities.{cycle}.issuer"),
                format!("field `issuer`: authority {cycle:?} is its own ancestor"),
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, c) in onprem.certificates.iter().enumerate() {
            if !seen.insert(c.name.clone()) {
                return Err(self.err(
                    &format!("onprem.certificates[{i}].name"),
                    format!("field `name`: duplicate certificate name {:?}", c.name),
                ));
            }
            if let Some(issuer) = &c.issuer
                && !onprem.authorities.contains_key(issuer)
            {
                return Err(self.err(
                    &format!("onprem.certificates[{i}].issuer"),
                    format!(
                        "field `issuer`: no authority named {issuer:?}; expected \"self-signed\" or one of {}",
                        names(onprem.authorities.keys())
                    ),
                ));
            }
            for (field, t) in [("not_before", &c.not_before), ("not_after", &c.not_after)] {
                if let Some(hybridlab_onprem::certstore::TimeSpec::At(v)) = t
                    && hybridlab_onprem::certstore::relative_offset(v).is_none()
                    && time::OffsetDateTime::parse(
                        v,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .is_err()
                {
                    return Err(self.err(
                        &format!("onprem.certificates[{i}].{field}"),
                        format!(
                            "field `{field}`: {v:?} is neither an offset from the run start (\"-30d\", \"+335d\", \"12h\") nor an RFC 3339 time"
                        ),
                    ));
                }
            }
        }
        let cert_names = || names(onprem.certificates.iter().map(|c| &c.name));
        if let Some((name, span)) = &pre.cert_ref
            && !seen.contains(name)
        {
            return Err(self.sources.error_span(
                Some(span.clone()),
                format!(
                    "field `cert`: no certificate named {name:?}; expected one of {}",
                    cert_names()
                ),
            ));
        }
        if let Some(name) = s
            .expect
            .thumbprint_logged
            .items()
            .iter()
            .find(|n| !seen.contains(*n))
        {
            return Err(self.err(
                "expect.thumbprint_logged",
                format!(
                    "field `thumbprint_logged`: no certificate named {name:?}; expected one of {}",
                    cert_names()
                ),
            ));
        }
        match &onprem.send_connector {
            None => {
                return Err(self.err(
                    "onprem",
                    "missing table [onprem.send_connector] (the send connector to EOP)",
                ));
            }
            Some(c) => {
                let mut c = c.clone();
                if pre.cert_ref.is_some() {
                    // stands in for the resolved identifier
                    c.tls_certificate_name = Some("<I>CN=x<S>CN=x".into());
                }
                if let Err(e) = c.validate() {
                    return Err(self.err(
                        "onprem.send_connector",
                        format!("the send connector is invalid: {e}"),
                    ));
                }
            }
        }
        if let Err(e) = onprem.schannel.provider_and_versions() {
            return Err(self.err("onprem.schannel.cipher_suites", e.to_string()));
        }

        // EOP and faults
        if let Err(inv) = s.eop.validate() {
            return Err(self.err(
                &format!("eop.{}", inv.path),
                format!("eop.{}: {}", inv.path, inv.message),
            ));
        }
        for (i, f) in s.faults.iter().enumerate() {
            if let Err(m) = f.validate() {
                return Err(self.err(&format!("faults[{i}]"), format!("faults[{i}]: {m}")));
            }
        }

        // messages and run
        if s.messages.is_empty() {
            return Err(self.err(
                "messages",
                "no [[messages]]: a scenario sends at least one message",
            ));
        }
        for (i, m) in s.messages.iter().enumerate() {
            if m.to.is_empty() {
                return Err(self.err(
                    &format!("messages[{i}].to"),
                    "field `to`: at least one recipient",
                ));
            }
            for addr in m.to.iter().chain(std::iter::once(&m.from)) {
                if !addr.is_empty() && !addr.contains('@') {
                    return Err(self.err(
                        &format!("messages[{i}]"),
                        format!("{addr:?} is not an address (local@domain)"),
                    ));
                }
            }
            if m.count == 0 || m.count > 1000 {
                return Err(self.err(&format!("messages[{i}].count"), "field `count`: 1 to 1000"));
            }
        }
        if s.run.duration.0.is_zero() {
            return Err(self.err("run.duration", "field `duration`: must be more than zero"));
        }
        if s.run.max_steps == 0 {
            return Err(self.err("run.max_steps", "field `max_steps`: must be at least 1"));
        }
        self.validate_changes(s, pre)?;
        if s.expect.no_other_error_finding && s.expect.top_finding.is_none() {
            return Err(self.err(
                "expect.no_other_error_finding",
                "field `no_other_error_finding`: needs `top_finding`",
            ));
        }
        if s.expect.no_error_finding
            && let Some(id) = &s.expect.top_finding
            && id.parse::<hybridlab_diagnose::FindingId>().is_ok_and(|f| {
                f.severity() == hybridlab_diagnose::Severity::Error && !f.can_recover()
            })
        {
            return Err(self.err(
                "expect.no_error_finding",
                format!(
                    "field `no_error_finding`: contradicts `top_finding` ({id} is of severity error; \
                     only a warning, or an error that later deliveries left behind, can rank first \
                     in a run without errors)"
                ),
            ));
        }
        if let Some(id) = &s.expect.top_finding
            && id.parse::<hybridlab_diagnose::FindingId>().is_err()
        {
            return Err(self.err(
                "expect.top_finding",
                format!(
                    "field `top_finding`: unknown finding id {id:?}, expected one of docs/findings.md: {}",
                    hybridlab_diagnose::catalogue::FindingId::ALL
                        .iter()
                        .map(|f| f.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        Ok(())
    }
}

impl Validator<'_, '_, '_> {
    /// The value at a key path (`changes[1].set_send_connector`).
    fn value_at(&self, path: &str) -> Option<&Spanned<DeValue<'_>>> {
        let mut value: Option<&Spanned<DeValue<'_>>> = None;
        let mut table: Option<&DeTable<'_>> = Some(self.tree);
        for seg in parse_path(path) {
            value = match seg {
                Seg::Key(k) => table?.get(k.as_str()),
                Seg::Index(i) => match value?.get_ref() {
                    DeValue::Array(a) => a.get(i),
                    _ => None,
                },
            };
            table = match value?.get_ref() {
                DeValue::Table(t) => Some(t),
                _ => None,
            };
        }
        value
    }

    /// `[[changes]]`: one action each, within the run, naming certificates that exist and are
    /// (or are not) in the store at that time; every `set_send_connector` gives a connector
    /// `Set-SendConnector` would accept (applied in time order, each on top of the earlier ones).
    fn validate_changes(&self, s: &mut Scenario, pre: &Preprocessed) -> Result<(), ScenarioError> {
        const ACTIONS: &str = "remove_certificate = \"name\", install_certificate = \"name\", \
             set_send_connector = { ... }, restart_transport = true or retry_queue = true";
        let names: Vec<&String> = s.onprem.certificates.iter().map(|c| &c.name).collect();
        let known = |n: &str| names.iter().any(|x| x.as_str() == n);
        let cert_list = || {
            names
                .iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (i, c) in s.changes.iter().enumerate() {
            let keys = c.action_keys();
            match keys.as_slice() {
                [] => {
                    return Err(self.err(
                        &format!("changes[{i}]"),
                        format!(
                            "[[changes]] entry {i}: no action; expected exactly one of {ACTIONS}"
                        ),
                    ));
                }
                [_] => {}
                [first, second, ..] => {
                    return Err(self.err(
                        &format!("changes[{i}].{second}"),
                        format!(
                            "field `{second}`: one action per [[changes]] entry (`{first}` is already set); \
                             add another [[changes]] entry with the same `at`"
                        ),
                    ));
                }
            }
            for (key, v) in [
                ("restart_transport", c.restart_transport),
                ("retry_queue", c.retry_queue),
            ] {
                if v == Some(false) {
                    return Err(self.err(
                        &format!("changes[{i}].{key}"),
                        format!(
                            "field `{key}`: expected true (leave the entry out rather than false)"
                        ),
                    ));
                }
            }
            if c.at.0 > s.run.duration.0 {
                return Err(self.err(
                    &format!("changes[{i}].at"),
                    format!(
                        "field `at`: {} is after the end of the run ([run] duration = {}); expected a time from the run start up to {}",
                        c.at, s.run.duration, s.run.duration
                    ),
                ));
            }
            for (key, name) in [
                ("remove_certificate", &c.remove_certificate),
                ("install_certificate", &c.install_certificate),
            ] {
                if let Some(n) = name
                    && !known(n)
                {
                    return Err(self.err(
                        &format!("changes[{i}].{key}"),
                        format!(
                            "field `{key}`: no certificate named {n:?}; expected one of {}",
                            cert_list()
                        ),
                    ));
                }
            }
            if let Some((n, span)) = pre.change_cert_refs.get(&i)
                && !known(n)
            {
                return Err(self.sources.error_span(
                    Some(span.clone()),
                    format!(
                        "field `cert`: no certificate named {n:?}; expected one of {}",
                        cert_list()
                    ),
                ));
            }
        }

        // the timeline, in time order (as listed for equal times)
        let mut order: Vec<usize> = (0..s.changes.len()).collect();
        order.sort_by_key(|&i| s.changes[i].at.0);
        let mut in_store: BTreeSet<String> = s
            .onprem
            .certificates
            .iter()
            .map(|c| c.name.clone())
            .filter(|n| !s.onprem.not_installed.contains(n))
            .collect();
        let mut conn_table: DeTable<'_> =
            match self.value_at("onprem.send_connector").map(|v| v.get_ref()) {
                Some(DeValue::Table(t)) => t.clone(),
                _ => DeTable::default(),
            };
        let mut conn_ref: Option<String> = s.source.tls_certificate_ref.clone();
        let mut results: Vec<(usize, SendConnector, Option<String>)> = Vec::new();
        for &i in &order {
            let c = &s.changes[i];
            let at = c.at;
            match c.action() {
                Some(ChangeAction::RemoveCertificate(n)) => {
                    if !in_store.remove(n) {
                        return Err(self.err(
                            &format!("changes[{i}].remove_certificate"),
                            format!(
                                "field `remove_certificate`: {n:?} is not in the store at {at} (declared with installed = false and not installed yet, or already removed)"
                            ),
                        ));
                    }
                }
                Some(ChangeAction::InstallCertificate(n)) => {
                    if !in_store.insert(n.to_string()) {
                        return Err(self.err(
                            &format!("changes[{i}].install_certificate"),
                            format!(
                                "field `install_certificate`: {n:?} is already in the store at {at}; declare it with installed = false in [[onprem.certificates]]"
                            ),
                        ));
                    }
                }
                Some(ChangeAction::SetSendConnector(_)) => {
                    let path = format!("changes[{i}].set_send_connector");
                    let Some(v) = self.value_at(&path) else {
                        continue;
                    };
                    let (DeValue::Table(patch), span) = (v.get_ref(), v.span()) else {
                        return Err(self.err(
                            &path,
                            "field `set_send_connector`: expected a table of [onprem.send_connector] keys ({ tls_domain = \"...\" })",
                        ));
                    };
                    let literal = patch
                        .get("tls_certificate_name")
                        .map(|v| match v.get_ref() {
                            DeValue::String(s) => s.trim().is_empty(),
                            _ => false,
                        });
                    merge_tables(&mut conn_table, patch.clone());
                    if pre.change_cert_refs.contains_key(&i) {
                        conn_ref = pre.change_cert_refs.get(&i).map(|(n, _)| n.clone());
                        conn_table.remove("tls_certificate_name");
                    } else if let Some(empty) = literal {
                        conn_ref = None;
                        if empty {
                            conn_table.remove("tls_certificate_name");
                        }
                    }
                    let mut conn = SendConnector::deserialize(toml::de::Deserializer::from(
                        Spanned::new(span, conn_table.clone()),
                    ))
                    .map_err(|e| {
                        self.sources.error_span(
                            e.span(),
                            format!("{path}: {}", with_suggestion(e.message().trim())),
                        )
                    })?;
                    let mut check = conn.clone();
                    if conn_ref.is_some() {
                        // stands in for the identifier resolved at run time
                        check.tls_certificate_name = Some("<I>CN=x<S>CN=x".into());
                    }
                    if let Err(e) = check.validate() {
                        return Err(self.err(
                            &path,
                            format!("{path}: after this change the send connector is invalid: {e}"),
                        ));
                    }
                    if conn_ref.is_some() {
                        conn.tls_certificate_name = None;
                    }
                    results.push((i, conn, conn_ref.clone()));
                }
                Some(ChangeAction::RestartTransport | ChangeAction::RetryQueue) | None => {}
            }
        }
        for (i, conn, r) in results {
            if let Some(cc) = s.changes[i].set_send_connector.as_mut() {
                cc.connector = Some(Box::new(conn));
                cc.connector_certificate = r;
            }
        }
        Ok(())
    }
}

fn names<'a>(it: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<String> = it.map(|n| format!("{n:?}")).collect();
    if v.is_empty() {
        "(none defined)".into()
    } else {
        v.join(", ")
    }
}

fn authority_cycle(auths: &BTreeMap<String, AuthorityDescription>) -> Option<String> {
    for start in auths.keys() {
        let mut cur = start;
        for _ in 0..=auths.len() {
            match auths.get(cur).and_then(|a| a.issuer.as_ref()) {
                None => break,
                Some(p) if p == start => return Some(start.clone()),
                Some(p) => cur = p,
            }
        }
    }
    None
}

/// Authorities in an order where every parent comes before its children.
pub fn authorities_in_order(
    auths: &BTreeMap<String, AuthorityDescription>,
) -> Vec<AuthorityDescription> {
    let mut out: Vec<AuthorityDescription> = Vec::new();
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    for _ in 0..=auths.len() {
        for (name, a) in auths {
            if placed.contains(name.as_str()) {
                continue;
            }
            if a.issuer.as_deref().is_none_or(|p| placed.contains(p)) {
                placed.insert(name);
                out.push(a.clone());
            }
        }
    }
    out
}

/// Every `*.toml` file under `path` (or `path` itself), sorted, skipping `README`s and folders
/// named `base` (files meant to be extended, not run).
///
/// # Errors
/// `path` does not exist or cannot be read.
pub fn discover(path: &Path) -> Result<Vec<PathBuf>, ScenarioError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| ScenarioError::new(path, format!("cannot read: {e}")))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    let mut visited = 0usize;
    while let Some(dir) = stack.pop() {
        visited += 1;
        if visited > 10_000 {
            break;
        }
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| ScenarioError::new(&dir, format!("cannot read: {e}")))?;
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                if name != "base" && !name.starts_with('.') {
                    stack.push(p);
                }
            } else if name.ends_with(".toml") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let m = "unknown field `requre_tls`, expected one of `require_tls`, `port`";
        assert!(with_suggestion(m).ends_with("did you mean `require_tls`?"));
        let m = "unknown variant `atributed`, expected one of `attributed`, `unattributed`";
        assert!(with_suggestion(m).ends_with("did you mean `attributed`?"));
        let m = "unknown field `zzz`, expected one of `require_tls`, `port`";
        assert_eq!(with_suggestion(m), m);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn key_paths() {
        let p = parse_path("eop.tenants[0].inbound_connectors[1].name");
        assert_eq!(p.len(), 6);
        assert!(matches!(&p[2], Seg::Index(0)));
        assert!(matches!(&p[5], Seg::Key(k) if k == "name"));
    }

    #[test]
    fn merge_replaces_arrays_merges_tables_and_unsets_with_empty_strings() {
        let mut src = Sources::default();
        let a = src.push(
            "base.toml".into(),
            "[t]\nx = 1\ny = \"keep\"\nz = \"drop\"\nlist = [1, 2]\n",
        );
        let b = src.push("top.toml".into(), "[t]\nx = 2\nz = \"\"\nlist = [3]\n");
        let mut base = parse(&src, a).unwrap();
        let top = parse(&src, b).unwrap();
        merge_tables(base.get_mut(), top.into_inner());
        #[derive(Deserialize)]
        struct T {
            x: i64,
            y: String,
            z: Option<String>,
            list: Vec<i64>,
        }
        #[derive(Deserialize)]
        struct Root {
            t: T,
        }
        let r = Root::deserialize(toml::de::Deserializer::from(base)).unwrap();
        assert_eq!(
            (r.t.x, r.t.y.as_str(), r.t.z, r.t.list),
            (2, "keep", None, vec![3])
        );
        // a span in the second file maps to that file
        let e = src.error_at(src.files[1].offset + 4, "x");
        assert_eq!(e.file, Path::new("top.toml"));
        assert_eq!((e.line, e.column), (Some(2), Some(1)));
    }
}
