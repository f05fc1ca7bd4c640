//! Send connectors as the model sees them: from a listing, or only known by the name their sessions
//! log; which connector a domain, a queue or a non-delivery report belongs to; EOP's host names and
//! address ranges.

use std::net::IpAddr;

use hybridlab_artefacts::Artefacts;
use hybridlab_artefacts::connectors::SendConnectorRow;
use hybridlab_artefacts::ps::Parsed;
use hybridlab_model::identifier::X509Identifier;
use time::Duration;

use super::queues::QueueView;
use super::session::SessionView;
use super::{DEFAULT_INACTIVITY, Ev, prop_ev};

/// A send connector: from a listing, or only known by the name its sessions log.
#[derive(Debug, Clone)]
pub(crate) struct ConnectorView<'a> {
    pub name: String,
    pub row: Option<&'a Parsed<SendConnectorRow>>,
    /// Hybrid per the conventions (or, without a listing, a connector whose sessions go to EOP).
    pub hybrid: bool,
    /// The raw `TlsCertificateName`, when set.
    pub tls_name_raw: Option<String>,
    /// Parsed, when of the form `<I>issuer<S>subject` (the model's one parser of that form).
    pub tls_name: Option<X509Identifier>,
    /// Indices into `Model::sessions`.
    pub sessions: Vec<usize>,
}

impl ConnectorView<'_> {
    pub(crate) fn prop(&self, name: &str) -> Option<Ev> {
        self.row.and_then(|r| prop_ev(&r.evidence, name))
    }

    pub(crate) fn inactivity_timeout(&self) -> Duration {
        self.row
            .and_then(|r| r.row.connection_inactivity_timeout)
            .filter(|d| d.is_positive())
            .unwrap_or(DEFAULT_INACTIVITY)
    }

    pub(crate) fn require_tls(&self) -> Option<bool> {
        self.row.and_then(|r| r.row.require_tls)
    }

    pub(crate) fn ignore_starttls(&self) -> Option<bool> {
        self.row.and_then(|r| r.row.ignore_starttls)
    }

    pub(crate) fn smart_hosts(&self) -> &[String] {
        self.row.map_or(&[], |r| r.row.smart_hosts.as_slice())
    }

    /// Whether `id` (a queue's NextHopConnector) names this connector: its `Guid`, or its name
    /// (as older lab bundles wrote it).
    pub(crate) fn is_next_hop_connector(&self, id: &str) -> bool {
        let id = id.trim();
        !id.is_empty()
            && (self.name.eq_ignore_ascii_case(id)
                || self
                    .row
                    .and_then(|r| r.row.guid.as_deref())
                    .is_some_and(|g| g.trim().eq_ignore_ascii_case(id)))
    }

    pub(crate) fn frontend_proxy(&self) -> bool {
        self.row
            .and_then(|r| r.row.frontend_proxy_enabled)
            .unwrap_or(false)
    }

    /// The `*.mail.onmicrosoft.com` (or other) domain of its address spaces, most specific first.
    pub(crate) fn address_domains(&self) -> Vec<String> {
        self.row
            .map(|r| {
                r.row
                    .address_spaces
                    .iter()
                    .filter_map(|a| address_space_domain(a))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// `smtp:contoso.mail.onmicrosoft.com;1` -> `contoso.mail.onmicrosoft.com`.
pub(super) fn address_space_domain(a: &str) -> Option<String> {
    let t = a.trim();
    let body = match t.split_once(':') {
        Some((kind, rest)) if kind.eq_ignore_ascii_case("smtp") => rest,
        Some(_) => return None,
        None => t,
    };
    let d = body.split(';').next().unwrap_or("").trim();
    (!d.is_empty()).then(|| d.to_ascii_lowercase())
}

/// Whether a domain matches an address-space pattern (`*`, `*.contoso.com`, `contoso.com`).
fn domain_matches(pattern: &str, domain: &str) -> bool {
    let d = domain.trim().to_ascii_lowercase();
    match pattern {
        "*" => true,
        p => match p.strip_prefix("*.") {
            Some(suffix) => d.ends_with(&format!(".{suffix}")) || d == suffix,
            None => d == p,
        },
    }
}

fn is_hybrid_row(r: &SendConnectorRow) -> bool {
    r.cloud_services_mail_enabled == Some(true)
        || r.address_spaces
            .iter()
            .any(|a| address_space_domain(a).is_some_and(|d| d.ends_with(".mail.onmicrosoft.com")))
        || r.smart_hosts.iter().any(|h| is_eop_host(h))
}

/// An EOP MX host name (`contoso-com.mail.protection.outlook.com`, `*.mx.microsoft`).
pub(crate) fn is_eop_host(h: &str) -> bool {
    let h = h.trim().trim_end_matches('.').to_ascii_lowercase();
    h.ends_with(".mail.protection.outlook.com")
        || h == "mail.protection.outlook.com"
        || h.ends_with(".mx.microsoft")
}

/// EOP's published front-door ranges.
pub(crate) fn is_eop_ip(ip: IpAddr) -> bool {
    static NETS: std::sync::LazyLock<Vec<ipnet::IpNet>> = std::sync::LazyLock::new(|| {
        [
            "40.92.0.0/15",
            "40.93.0.0/16",
            "40.107.0.0/16",
            "52.100.0.0/14",
            "104.47.0.0/17",
            "2a01:111:f400::/48",
            "2a01:111:f403::/48",
        ]
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect()
    });
    NETS.iter().any(|n| n.contains(&ip))
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// The connector whose address spaces cover `domain` most specifically (`*` only when it is the
/// only hybrid connector's).
pub(super) fn domain_connector(domain: &str, connectors: &[ConnectorView<'_>]) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (i, c) in connectors.iter().enumerate() {
        for d in c.address_domains() {
            if domain_matches(&d, domain) {
                let score = if d == "*" { 0 } else { d.len() };
                if best.is_none_or(|(_, s)| score > s) {
                    best = Some((i, score));
                }
            }
        }
    }
    best.map(|(i, _)| i)
}

/// Which connector a queue belongs to: the one its NextHopConnector names (GUID, or name), else
/// its next hop in the connector's address spaces or smart hosts, else the connector whose
/// sessions went to the LastError's IP.
pub(super) fn queue_connector(
    q: &QueueView<'_>,
    connectors: &[ConnectorView<'_>],
    sessions: &[SessionView<'_>],
) -> Option<usize> {
    if let Some(id) = q.next_hop_connector
        && let Some(i) = connectors.iter().position(|c| c.is_next_hop_connector(id))
    {
        return Some(i);
    }
    let hop = q.next_hop.trim();
    if !hop.is_empty() {
        // Most specific address space wins; `*` last.
        let mut best: Option<(usize, usize)> = None;
        for (i, c) in connectors.iter().enumerate() {
            for d in c.address_domains() {
                if domain_matches(&d, hop) {
                    let score = if d == "*" { 0 } else { d.len() };
                    if best.is_none_or(|(_, s)| score > s) {
                        best = Some((i, score));
                    }
                }
            }
            if c.smart_hosts().iter().any(|h| h.eq_ignore_ascii_case(hop)) {
                return Some(i);
            }
        }
        if let Some((i, score)) = best
            && score > 0
        {
            return Some(i);
        }
    }
    if let Ok(ip) = q.last_error.ip.trim().parse::<IpAddr>()
        && let Some(s) = sessions.iter().rev().find(|s| s.remote().ip() == ip)
    {
        return s.connector;
    }
    if hop.to_ascii_lowercase().ends_with(".mail.onmicrosoft.com") {
        let hybrids: Vec<usize> = (0..connectors.len())
            .filter(|&i| connectors[i].hybrid)
            .collect();
        if hybrids.len() == 1 {
            return Some(hybrids[0]);
        }
    }
    None
}

/// The send connectors of the listings, in listing order.
pub(super) fn from_listings(a: &Artefacts) -> Vec<ConnectorView<'_>> {
    a.send_connectors
        .iter()
        .map(|r| {
            let raw = r
                .row
                .tls_certificate_name
                .clone()
                .filter(|s| !s.trim().is_empty());
            ConnectorView {
                name: r.row.name.clone(),
                row: Some(r),
                hybrid: is_hybrid_row(&r.row),
                tls_name: raw.as_deref().and_then(|r| r.parse().ok()),
                tls_name_raw: raw,
                sessions: Vec::new(),
            }
        })
        .collect()
}

/// Gives each session its connector (by the logged connector id, exactly, else as a prefix either
/// way), adding a listing-less connector for a name no listing shows; such a connector counts as
/// hybrid when any of its sessions went to EOP.
pub(super) fn attach_sessions<'a>(
    connectors: &mut Vec<ConnectorView<'a>>,
    sessions: &mut [SessionView<'a>],
) {
    for (si, s) in sessions.iter_mut().enumerate() {
        let cid = s.ps.session.connector_id.trim();
        let found = connectors
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(cid))
            .or_else(|| {
                connectors.iter().position(|c| {
                    c.row.is_some()
                        && !c.name.is_empty()
                        && (starts_with_ci(cid, &c.name) || starts_with_ci(&c.name, cid))
                })
            });
        let ci = match found {
            Some(ci) => ci,
            None => {
                connectors.push(ConnectorView {
                    name: cid.to_string(),
                    row: None,
                    hybrid: false,
                    tls_name_raw: None,
                    tls_name: None,
                    sessions: Vec::new(),
                });
                connectors.len() - 1
            }
        };
        s.connector = Some(ci);
        connectors[ci].sessions.push(si);
    }
    for c in connectors.iter_mut().filter(|c| c.row.is_none()) {
        c.hybrid = c.sessions.iter().any(|&i| sessions[i].to_eop);
    }
}
