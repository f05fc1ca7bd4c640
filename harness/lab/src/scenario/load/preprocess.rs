//! Scenario-level conveniences the reused types do not know, taken out of the merged tree before
//! serde reads it: `tls_certificate_name = { cert = "name" }` (in the connector and in
//! `set_send_connector`), `installed` in `[[onprem.certificates]]`, `certificate_cache` in
//! `[onprem.transport]`, and `issuer = "self-signed"`.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::locate::{ScenarioError, Sources};
use hybridlab_onprem::transport::CertificateCache;

/// What the preprocessing took out of the tree.
#[derive(Debug, Default)]
pub(super) struct Preprocessed {
    /// `tls_certificate_name = { cert = "name" }`: the name and its span.
    pub(super) cert_ref: Option<(String, Range<usize>)>,
    /// `[onprem.transport] certificate_cache`.
    pub(super) certificate_cache: Option<CertificateCache>,
    /// Indices into `[[onprem.certificates]]` of the entries with `installed = false`.
    pub(super) not_installed: Vec<usize>,
    /// `[[changes]]` index -> `set_send_connector.tls_certificate_name = { cert = "name" }`.
    pub(super) change_cert_refs: BTreeMap<usize, (String, Range<usize>)>,
    /// `[[receive.connectors]]` index -> `tls_certificate_name = { cert = "name" }`.
    pub(super) receive_cert_refs: BTreeMap<usize, (String, Range<usize>)>,
    /// `[[changes]]` index -> `set_receive_connector.tls_certificate_name = { cert = "name" }`.
    pub(super) change_receive_cert_refs: BTreeMap<usize, (String, Range<usize>)>,
}

fn table_mut<'a, 'b>(t: &'b mut DeTable<'a>, key: &str) -> Option<&'b mut DeTable<'a>> {
    match t.get_mut(key).map(|v| v.get_mut()) {
        Some(DeValue::Table(inner)) => Some(inner),
        _ => None,
    }
}

/// Takes the conveniences out of `root` (the merged tree).
///
/// # Errors
/// A convenience key has a value of the wrong shape, or `[onprem.server]` sets `version`.
pub(super) fn preprocess(
    sources: &Sources,
    root: &mut DeTable<'_>,
) -> Result<Preprocessed, ScenarioError> {
    let mut out = Preprocessed {
        change_cert_refs: change_cert_refs(sources, root, "set_send_connector")?,
        change_receive_cert_refs: change_cert_refs(sources, root, "set_receive_connector")?,
        ..Preprocessed::default()
    };
    if let Some(receive) = table_mut(root, "receive") {
        certificates(sources, receive)?;
        if let Some(conns) = receive.get_mut("connectors")
            && let DeValue::Array(a) = conns.get_mut()
        {
            for (i, c) in a.iter_mut().enumerate() {
                if let DeValue::Table(t) = c.get_mut()
                    && let Some(r) = take_cert_ref(sources, t)?
                {
                    out.receive_cert_refs.insert(i, r);
                }
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
    out.not_installed = certificates(sources, onprem)?;
    out.certificate_cache = certificate_cache(sources, onprem)?;
    Ok(out)
}

/// `[[changes]]` index -> the certificate reference its `set_send_connector` had, taken out.
fn change_cert_refs(
    sources: &Sources,
    root: &mut DeTable<'_>,
    key: &str,
) -> Result<BTreeMap<usize, (String, Range<usize>)>, ScenarioError> {
    let mut out = BTreeMap::new();
    if let Some(changes) = root.get_mut("changes")
        && let DeValue::Array(a) = changes.get_mut()
    {
        for (i, c) in a.iter_mut().enumerate() {
            if let DeValue::Table(t) = c.get_mut()
                && let Some(DeValue::Table(conn)) = t.get_mut(key).map(|v| v.get_mut())
                && let Some(r) = take_cert_ref(sources, conn)?
            {
                out.insert(i, r);
            }
        }
    }
    Ok(out)
}

/// `[[onprem.certificates]]`: `issuer = "self-signed"` and `installed` taken out; gives the
/// indices of the entries with `installed = false`.
fn certificates(sources: &Sources, onprem: &mut DeTable<'_>) -> Result<Vec<usize>, ScenarioError> {
    let mut not_installed = Vec::new();
    let Some(certs) = onprem.get_mut("certificates") else {
        return Ok(not_installed);
    };
    let DeValue::Array(a) = certs.get_mut() else {
        return Ok(not_installed);
    };
    for (i, c) in a.iter_mut().enumerate() {
        let DeValue::Table(t) = c.get_mut() else {
            continue;
        };
        if matches!(t.get("issuer").map(|v| v.get_ref()), Some(DeValue::String(s)) if s.eq_ignore_ascii_case("self-signed"))
        {
            t.remove("issuer");
        }
        if let Some(v) = t.get("installed") {
            match v.get_ref() {
                DeValue::Boolean(false) => not_installed.push(i),
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
    Ok(not_installed)
}

/// `[onprem.transport] certificate_cache`, taken out (and `[onprem.transport]` with it when
/// nothing else is left: an empty table would pick the Edge defaults instead of the role's).
fn certificate_cache(
    sources: &Sources,
    onprem: &mut DeTable<'_>,
) -> Result<Option<CertificateCache>, ScenarioError> {
    let Some(tr) = table_mut(onprem, "transport") else {
        return Ok(None);
    };
    let Some(v) = tr.get("certificate_cache") else {
        return Ok(None);
    };
    let cache = match v.get_ref() {
        DeValue::String(s) if s.as_ref() == "until_restart" => CertificateCache::UntilRestart,
        DeValue::String(s) if s.as_ref() == "none" => CertificateCache::Disabled,
        _ => {
            return Err(sources.error_span(
                Some(v.span()),
                "field `certificate_cache`: expected \"until_restart\" (the transport keeps the certificate it selected until Restart-Service MSExchangeTransport) or \"none\"",
            ));
        }
    };
    tr.remove("certificate_cache");
    if tr.is_empty() {
        onprem.remove("transport");
    }
    Ok(Some(cache))
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
