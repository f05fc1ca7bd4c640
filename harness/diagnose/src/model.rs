//! The correlated model: what the rules look at.
//!
//! The readers hand over sessions, rows and lines; this module joins them the way an expert would
//! on paper: each send session with its connector, the certificate it presented, its TLS outcome,
//! the replies and the idle time before the disconnect; each certificate thumbprint with every
//! listing that shows it (is it visible to `Get-ExchangeCertificate`? does it have a key? is there
//! a keyed twin with the same `<I>issuer<S>subject`?); each connector with the certificates its
//! `TlsCertificateName` resolves to at the reference time; each queue with its connector.
//!
//! Nothing here decides anything: the rules do (see `rules`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use hybridlab_model::reply::Reply;
use hybridlab_model::x509::{CertFacts, dn_eq};
use time::{Duration, OffsetDateTime};

use hybridlab_artefacts::Artefacts;
use hybridlab_artefacts::certs::{CertListingSource, CertificateStatus, ExchangeService};
use hybridlab_artefacts::connectivity::ConnectivityNote;
use hybridlab_artefacts::connectors::{InboundConnectorRow, SendConnectorRow};
use hybridlab_artefacts::mock_records::MockSession;
use hybridlab_artefacts::ndr::NdrRecipient;
use hybridlab_artefacts::protocol_log::{CertRole, LogKind, ParsedSession, SessionEvent};
use hybridlab_artefacts::ps::{Parsed, RowEvidence};
use hybridlab_artefacts::queue::LastError;
use hybridlab_artefacts::text::Evidence;
use hybridlab_model::exchange::{DisconnectReason, SecurityStatus};

/// The connector inactivity timeout when a listing does not show one (Exchange's default).
pub(crate) const DEFAULT_INACTIVITY: Duration = Duration::minutes(10);

/// One line to quote, with the time it happened when known (for "most recent first").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ev {
    pub file: String,
    pub line: usize,
    pub text: String,
    pub at: Option<OffsetDateTime>,
}

impl Ev {
    pub(crate) fn of(e: &Evidence, at: Option<OffsetDateTime>) -> Self {
        Self {
            file: base_name(&e.file).to_string(),
            line: e.line,
            text: e.text.clone(),
            at,
        }
    }

    pub(crate) fn to_evidence(&self) -> Evidence {
        Evidence {
            file: self.file.as_str().into(),
            line: self.line,
            text: self.text.clone(),
        }
    }
}

/// The file name without its folders (either separator).
pub(crate) fn base_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// A property line of a listed row.
pub(crate) fn prop_ev(ev: &RowEvidence, name: &str) -> Option<Ev> {
    ev.prop(name).map(|e| Ev::of(e, None))
}

/// The first line of a listed row.
pub(crate) fn row_ev(ev: &RowEvidence) -> Option<Ev> {
    ev.first.as_ref().map(|e| Ev::of(e, None))
}

/// Thumbprints compare case-insensitively, without blanks.
pub(crate) fn norm_thumb(t: &str) -> String {
    t.chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Whether a thumbprint is already in the normal form (the logs' and listings' usual form).
fn is_norm_thumb(t: &str) -> bool {
    t.bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

// ---------------------------------------------------------------------------------------------
// The certificate store
// ---------------------------------------------------------------------------------------------

/// One certificate of `LocalMachine\My`, merged over every listing that shows it.
#[derive(Debug, Clone, Default)]
pub(crate) struct StoreCert {
    pub thumbprint: String,
    pub subject: String,
    pub issuer: String,
    pub not_before: Option<OffsetDateTime>,
    pub not_after: Option<OffsetDateTime>,
    /// True when `Get-ExchangeCertificate` lists it or a provider row says so; false when a
    /// provider row says `HasPrivateKey False`.
    pub has_key: Option<bool>,
    pub in_ems: bool,
    pub in_provider: bool,
    pub services: Option<Vec<ExchangeService>>,
    pub status: Option<CertificateStatus>,
    pub serial: Option<String>,
    pub domains: Vec<String>,
    /// The `Thumbprint` line of every row that lists it (EMS rows first).
    pub ev_rows: Vec<Ev>,
    /// The `HasPrivateKey` line of a provider row.
    pub ev_key: Option<Ev>,
    pub ev_not_after: Option<Ev>,
    pub ev_services: Option<Ev>,
    pub ev_status: Option<Ev>,
    pub ev_issuer: Option<Ev>,
    dates_from_json: bool,
}

impl StoreCert {
    /// Time-valid at `t` (the transport's `validOnly` search). Without dates: not `DateInvalid`.
    pub(crate) fn valid_at(&self, t: Option<OffsetDateTime>) -> bool {
        match (t, self.not_before, self.not_after) {
            (Some(t), nb, Some(na)) => nb.is_none_or(|nb| nb <= t) && t <= na,
            _ => self.status != Some(CertificateStatus::DateInvalid),
        }
    }

    /// Expired at `t` (or listed `DateInvalid` when the dates are unknown).
    pub(crate) fn expired_at(&self, t: Option<OffsetDateTime>) -> bool {
        match (t, self.not_after) {
            (Some(t), Some(na)) => na < t,
            _ => self.status == Some(CertificateStatus::DateInvalid),
        }
    }

    pub(crate) fn is_keyed(&self) -> bool {
        self.has_key == Some(true)
    }

    pub(crate) fn is_keyless(&self) -> bool {
        self.has_key == Some(false)
    }

    pub(crate) fn matches(&self, issuer: &str, subject: &str) -> bool {
        !self.subject.is_empty() && dn_eq(&self.subject, subject) && dn_eq(&self.issuer, issuer)
    }

    /// The best line to show for this certificate.
    pub(crate) fn ev(&self) -> Option<Ev> {
        self.ev_rows.first().cloned()
    }
}

/// Every certificate listing of the inputs, merged.
#[derive(Debug, Clone, Default)]
pub(crate) struct Store {
    pub certs: Vec<StoreCert>,
    /// A `Get-ExchangeCertificate` listing is among the inputs.
    pub ems_listed: bool,
    /// A `Get-ChildItem Cert:\LocalMachine\My` listing is among the inputs.
    pub provider_listed: bool,
}

impl Store {
    fn build(a: &Artefacts) -> Self {
        let mut store = Self::default();
        let mut index: HashMap<String, usize> = HashMap::new();
        // EMS rows first so their lines lead.
        let mut entries: Vec<_> = a.certificates.iter().collect();
        entries.sort_by_key(|e| e.source != CertListingSource::ExchangeCertificate);
        for e in entries {
            let row = &e.parsed.row;
            let ev = &e.parsed.evidence;
            let ems = e.source == CertListingSource::ExchangeCertificate;
            if ems {
                store.ems_listed = true;
            } else {
                store.provider_listed = true;
            }
            let thumb = norm_thumb(&row.thumbprint);
            if thumb.is_empty() {
                continue;
            }
            let i = *index.entry(thumb.clone()).or_insert_with(|| {
                store.certs.push(StoreCert {
                    thumbprint: thumb.clone(),
                    ..StoreCert::default()
                });
                store.certs.len() - 1
            });
            let c = &mut store.certs[i];
            if c.subject.is_empty() {
                c.subject = row.subject.clone();
            }
            if c.issuer.is_empty() {
                c.issuer = row.issuer.clone();
                c.ev_issuer = prop_ev(ev, "Issuer");
            }
            // JSON dates are unambiguous instants; Format-List dates are local and culture-bound.
            let json = e.format == hybridlab_artefacts::ListingFormat::Json;
            if row.not_after.is_some() && (c.not_after.is_none() || (json && !c.dates_from_json)) {
                c.not_after = row.not_after;
                c.not_before = row.not_before.or(c.not_before);
                c.dates_from_json = json;
                c.ev_not_after = prop_ev(ev, "NotAfter").or(c.ev_not_after.take());
            }
            if ems {
                c.in_ems = true;
                c.has_key = Some(true);
                c.services = row.services.clone().or(c.services.take());
                c.ev_services = prop_ev(ev, "Services").or(c.ev_services.take());
                c.status = row.status.or(c.status);
                c.ev_status = prop_ev(ev, "Status").or(c.ev_status.take());
            } else {
                c.in_provider = true;
                match row.has_private_key {
                    Some(true) => c.has_key = Some(true),
                    Some(false) if !c.in_ems => c.has_key = Some(false),
                    _ => {}
                }
                if row.has_private_key.is_some() {
                    c.ev_key = prop_ev(ev, "HasPrivateKey").or(c.ev_key.take());
                }
            }
            if c.serial.is_none() {
                c.serial = row.serial_number.clone().filter(|s| !s.is_empty());
            }
            for d in &row.certificate_domains {
                if !c.domains.iter().any(|x| x.eq_ignore_ascii_case(d)) {
                    c.domains.push(d.clone());
                }
            }
            if let Some(l) = prop_ev(ev, "Thumbprint").or_else(|| row_ev(ev)) {
                c.ev_rows.push(l);
            }
        }
        store
    }

    /// Any listing at all.
    pub(crate) fn listed(&self) -> bool {
        self.ems_listed || self.provider_listed
    }

    pub(crate) fn get(&self, thumbprint: &str) -> Option<&StoreCert> {
        if is_norm_thumb(thumbprint) {
            return self.certs.iter().find(|c| c.thumbprint == thumbprint);
        }
        let t = norm_thumb(thumbprint);
        self.certs.iter().find(|c| c.thumbprint == t)
    }

    /// Certificates with this issuer and subject (any validity).
    pub(crate) fn matching<'s>(
        &'s self,
        issuer: &'s str,
        subject: &'s str,
    ) -> impl Iterator<Item = &'s StoreCert> + 's {
        self.certs
            .iter()
            .filter(move |c| c.matches(issuer, subject))
    }
}

// ---------------------------------------------------------------------------------------------
// Connectors
// ---------------------------------------------------------------------------------------------

/// `<I>issuer<S>subject`, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsName {
    pub issuer: String,
    pub subject: String,
}

/// Parses `<I>issuer<S>subject` (tags case-insensitive); `None` for anything else.
pub(crate) fn parse_tls_name(s: &str) -> Option<TlsName> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    if !lower.starts_with("<i>") {
        return None;
    }
    let s_at = lower.find("<s>")?;
    let issuer = t[3..s_at].trim();
    let subject = t[s_at + 3..].trim();
    if issuer.is_empty() || subject.is_empty() {
        return None;
    }
    Some(TlsName {
        issuer: issuer.to_string(),
        subject: subject.to_string(),
    })
}

/// A send connector: from a listing, or only known by the name its sessions log.
#[derive(Debug, Clone)]
pub(crate) struct ConnectorView<'a> {
    pub name: String,
    pub row: Option<&'a Parsed<SendConnectorRow>>,
    /// Hybrid per the conventions (or, without a listing, a connector whose sessions go to EOP).
    pub hybrid: bool,
    /// The raw `TlsCertificateName`, when set.
    pub tls_name_raw: Option<String>,
    /// Parsed, when of the right form.
    pub tls_name: Option<TlsName>,
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
pub(crate) fn address_space_domain(a: &str) -> Option<String> {
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

// ---------------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------------

/// A remote-certificate validation verdict found in an info line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChainVerdict {
    /// Chain problems: UntrustedRoot, PartialChain, revocation, expiry.
    Untrusted,
    /// SubjectMismatch.
    NameMismatch,
}

const UNTRUSTED_TOKENS: [&str; 9] = [
    "UntrustedRoot",
    "PartialChain",
    "RevocationStatusUnknown",
    "OfflineRevocation",
    "Revoked",
    "NotTimeValid",
    "Expired",
    "NotSignatureValid",
    "CertExpired",
];

/// Reads a chain-status info line (`Remote certificate chain validation status: 'UntrustedRoot'`).
fn chain_verdict(data: &str, context: &str) -> Option<(ChainVerdict, String)> {
    // The tokens are .NET enum names: look for them first (no allocation on ordinary lines).
    let has = |t: &str| data.contains(t) || context.contains(t);
    let verdict = if has("SubjectMismatch") || has("Subject mismatch") || has("subject mismatch") {
        (ChainVerdict::NameMismatch, "SubjectMismatch")
    } else {
        (
            ChainVerdict::Untrusted,
            *UNTRUSTED_TOKENS.iter().find(|t| has(t))?,
        )
    };
    let lower = format!("{data} {context}").to_ascii_lowercase();
    let about_certs = lower.contains("chain")
        || lower.contains("validation")
        || lower.contains("certificate")
        || lower.contains("tls authentication");
    about_certs.then(|| (verdict.0, verdict.1.to_string()))
}

/// One send session, with the indices of the events the rules look at.
#[derive(Debug, Clone)]
pub(crate) struct SessionView<'a> {
    pub ps: &'a ParsedSession,
    pub connector: Option<usize>,
    pub to_eop: bool,
    pub start: Option<OffsetDateTime>,
    pub connected: Option<usize>,
    pub attempting: Option<usize>,
    pub banner: Option<usize>,
    /// The first EHLO reply before any STARTTLS.
    pub ehlo_reply: Option<usize>,
    pub starttls: Option<usize>,
    pub sending_cert: Option<usize>,
    pub remote_cert: Option<usize>,
    pub tls_ok: Option<usize>,
    pub tls_failed: Option<(SecurityStatus, usize)>,
    pub chain: Option<(ChainVerdict, String, usize)>,
    pub disconnect: Option<usize>,
    /// The address EOP saw (`Hello [203.0.113.77]`).
    pub observed_ip: Option<String>,
    /// Index of the EHLO reply that carried `observed_ip`.
    pub observed_ip_at: Option<usize>,
}

impl<'a> SessionView<'a> {
    fn build(ps: &'a ParsedSession) -> Self {
        let mut v = Self {
            ps,
            connector: None,
            to_eop: false,
            start: ps.session.events.first().map(|e| e.at),
            connected: None,
            attempting: None,
            banner: None,
            ehlo_reply: None,
            starttls: None,
            sending_cert: None,
            remote_cert: None,
            tls_ok: None,
            tls_failed: None,
            chain: None,
            disconnect: None,
            observed_ip: None,
            observed_ip_at: None,
        };
        let mut last_sent: Option<&str> = None;
        for (i, te) in ps.session.events.iter().enumerate() {
            match &te.event {
                SessionEvent::AttemptingConnect => {
                    v.attempting.get_or_insert(i);
                }
                SessionEvent::Connected => {
                    v.connected.get_or_insert(i);
                }
                SessionEvent::Sent { line } => {
                    if line.trim().eq_ignore_ascii_case("STARTTLS") {
                        v.starttls.get_or_insert(i);
                    }
                    last_sent = Some(line.as_str());
                }
                SessionEvent::Received { reply } => {
                    let after_ehlo = last_sent.is_some_and(|l| {
                        let w = l.split_whitespace().next().unwrap_or("");
                        w.eq_ignore_ascii_case("EHLO") || w.eq_ignore_ascii_case("HELO")
                    });
                    if last_sent.is_none() && reply.code == 220 && v.banner.is_none() {
                        v.banner = Some(i);
                    }
                    if after_ehlo && reply.code == 250 {
                        if v.ehlo_reply.is_none() && v.starttls.is_none() && v.tls_ok.is_none() {
                            v.ehlo_reply = Some(i);
                        }
                        if let Some(ip) = hello_ip(reply) {
                            v.observed_ip = Some(ip);
                            v.observed_ip_at = Some(i);
                        }
                    }
                }
                SessionEvent::Certificate { role, .. } => match role {
                    CertRole::Sending => v.sending_cert = Some(i),
                    CertRole::Remote | CertRole::Received => v.remote_cert = Some(i),
                },
                SessionEvent::TlsNegotiated { .. } => v.tls_ok = Some(i),
                SessionEvent::TlsFailed { status } => v.tls_failed = Some((*status, i)),
                SessionEvent::Info { data, context } => {
                    if let Some((verdict, token)) = chain_verdict(data, context) {
                        v.chain = Some((verdict, token, i));
                    } else if let Some(status) = SecurityStatus::from_log_text(context) {
                        v.tls_failed = Some((status, i));
                    }
                }
                SessionEvent::Disconnected { .. } => v.disconnect = Some(i),
                SessionEvent::ReceivedLine { .. } => {}
            }
        }
        let host_is_eop = |i: Option<usize>| {
            i.and_then(|i| v.reply(i))
                .and_then(|r| r.lines.first())
                .and_then(|l| l.split_whitespace().next())
                .is_some_and(is_eop_host)
        };
        v.to_eop = host_is_eop(v.banner)
            || host_is_eop(v.ehlo_reply)
            || v.remote_cert
                .and_then(|i| v.cert(i))
                .is_some_and(|c| c.names().iter().any(|n| is_eop_host(n)))
            || is_eop_ip(ps.session.remote.ip());
        v
    }

    pub(crate) fn id(&self) -> &'a str {
        &self.ps.session.session_id
    }

    pub(crate) fn at(&self, i: usize) -> OffsetDateTime {
        self.ps.session.events[i].at
    }

    pub(crate) fn event(&self, i: usize) -> &'a SessionEvent {
        &self.ps.session.events[i].event
    }

    pub(crate) fn reply(&self, i: usize) -> Option<&'a Reply> {
        match self.event(i) {
            SessionEvent::Received { reply } => Some(reply),
            _ => None,
        }
    }

    pub(crate) fn cert(&self, i: usize) -> Option<&'a CertFacts> {
        match self.event(i) {
            SessionEvent::Certificate { cert, .. } => Some(cert),
            _ => None,
        }
    }

    /// Whether the validity of the certificate event `i` was logged (one-line block).
    pub(crate) fn cert_dates_logged(&self, i: usize) -> bool {
        self.ps.sources[i].cert_validity_logged
    }

    /// The first line of event `i`.
    pub(crate) fn ev(&self, i: usize) -> Ev {
        Ev::of(self.ps.sources[i].first(), Some(self.at(i)))
    }

    /// The line of event `i` containing `needle` (a certificate block's thumbprint line).
    pub(crate) fn ev_containing(&self, i: usize, needle: &str) -> Ev {
        Ev::of(self.ps.sources[i].line_containing(needle), Some(self.at(i)))
    }

    /// The thumbprint line of the sending certificate.
    pub(crate) fn thumbprint_ev(&self, i: usize) -> Ev {
        self.ev_containing(i, "Certificate thumbprint")
    }

    /// Replies received, with their indices.
    pub(crate) fn replies(&self) -> impl Iterator<Item = (usize, &'a Reply)> + '_ {
        self.ps
            .session
            .events
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match &e.event {
                SessionEvent::Received { reply } => Some((i, reply)),
                _ => None,
            })
    }

    /// Commands sent before event `i` (latest first).
    pub(crate) fn sent_before(&self, i: usize) -> impl Iterator<Item = (usize, &'a str)> + '_ {
        self.ps.session.events[..i]
            .iter()
            .enumerate()
            .rev()
            .filter_map(|(j, e)| match &e.event {
                SessionEvent::Sent { line } => Some((j, line.as_str())),
                _ => None,
            })
    }

    pub(crate) fn disconnect_reason(&self) -> Option<&'a DisconnectReason> {
        self.disconnect.and_then(|i| match self.event(i) {
            SessionEvent::Disconnected { reason } => Some(reason),
            _ => None,
        })
    }

    /// Any command sent (EHLO, MAIL...).
    pub(crate) fn sent_any(&self, verb: &str) -> Option<usize> {
        self.ps.session.events.iter().position(|e| match &e.event {
            SessionEvent::Sent { line } => line
                .split([' ', ':'])
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case(verb)),
            _ => false,
        })
    }

    /// The remote host name as the banner or EHLO reply names it, else the remote IP.
    pub(crate) fn remote_name(&self) -> String {
        [self.ehlo_reply, self.banner]
            .into_iter()
            .flatten()
            .filter_map(|i| self.reply(i))
            .filter_map(|r| r.lines.first())
            .filter_map(|l| l.split_whitespace().next())
            .find(|h| h.contains('.') && !h.contains('*'))
            .map(str::to_string)
            .unwrap_or_else(|| self.ps.session.remote.ip().to_string())
    }

    pub(crate) fn remote(&self) -> SocketAddr {
        self.ps.session.remote
    }

    /// The time of the last event.
    pub(crate) fn end(&self) -> Option<OffsetDateTime> {
        self.ps.session.events.last().map(|e| e.at)
    }
}

/// `Hello [198.51.100.10]` in the first line of an EHLO reply.
fn hello_ip(r: &Reply) -> Option<String> {
    let l = r.lines.first()?;
    let i = l.find('[')?;
    let j = l[i..].find(']')? + i;
    let ip = &l[i + 1..j];
    ip.parse::<IpAddr>().ok().map(|_| ip.to_string())
}

// ---------------------------------------------------------------------------------------------
// Queues and messages
// ---------------------------------------------------------------------------------------------

/// A queue (or queued message) with a `LastError`.
#[derive(Debug, Clone)]
pub(crate) struct QueueView<'a> {
    pub next_hop: &'a str,
    pub last_error: &'a LastError,
    pub ev: Option<Ev>,
    pub connector: Option<usize>,
}

impl QueueView<'_> {
    pub(crate) fn led(&self) -> &str {
        &self.last_error.led
    }

    /// The reply the LED wraps: after the last `->`, inside `responded with: "..."`, or the LED.
    pub(crate) fn inner_reply(&self) -> Option<Reply> {
        let led = self.led().trim();
        let inner = if let Some((_, r)) = led.rsplit_once("->") {
            r.trim()
        } else if let Some(i) = led.find("responded with: \"") {
            let rest = &led[i + "responded with: \"".len()..];
            rest.split('"').next().unwrap_or(rest).trim_end_matches('.')
        } else {
            led
        };
        Reply::parse_line(inner)
    }
}

/// One failed recipient of a non-delivery report, with the reply its `Diagnostic-Code` carries.
#[derive(Debug, Clone)]
pub(crate) struct NdrView<'a> {
    pub rcpt: &'a NdrRecipient,
    pub reply: Reply,
    /// The `Diagnostic-Code` line.
    pub ev: Ev,
    /// The send connector whose address spaces cover the recipient's domain.
    pub connector: Option<usize>,
}

/// One session of the mock EOP's record, joined with the send session it belongs to.
#[derive(Debug, Clone)]
pub(crate) struct EopView<'a> {
    pub m: &'a MockSession,
    /// Index into `Model::sessions`: the send session whose banner names this session id, else
    /// the one from the same local endpoint.
    pub session: Option<usize>,
}

impl EopView<'_> {
    /// The session's verdict, or the last message's.
    pub(crate) fn verdict(&self) -> Option<&hybridlab_model::attribution::AttributionVerdict> {
        self.m
            .record
            .attribution
            .as_ref()
            .or_else(|| self.m.record.messages.last().map(|x| &x.attribution))
    }

    /// The client certificate EOP saw (`None`: none sent, or no handshake).
    pub(crate) fn client_certificate(&self) -> Option<&hybridlab_model::record::ClientCertificate> {
        self.m
            .record
            .tls
            .as_ref()
            .and_then(|t| t.client_certificate.as_ref())
    }

    /// The evidence lines: the verdict, then the client certificate.
    pub(crate) fn evs(&self) -> Vec<Ev> {
        let at = Some(self.m.record.started_at);
        [&self.m.ev_attribution, &self.m.ev_client_certificate]
            .into_iter()
            .flatten()
            .map(|e| Ev::of(e, at))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

/// Everything joined.
#[derive(Debug)]
pub(crate) struct Model<'a> {
    pub a: &'a Artefacts,
    /// The reference time (conventions: newest log time, else `--now`, else queue times).
    pub as_of: Option<OffsetDateTime>,
    pub store: Store,
    pub connectors: Vec<ConnectorView<'a>>,
    /// Send sessions, in the reader's order (by first line time).
    pub sessions: Vec<SessionView<'a>>,
    /// Queues and messages with a LastError.
    pub queues: Vec<QueueView<'a>>,
    /// Failed recipients of the non-delivery reports.
    pub ndrs: Vec<NdrView<'a>>,
    /// The mock EOP's session records (the Exchange Online side), joined with the send sessions.
    pub eop: Vec<EopView<'a>>,
    /// The server name, when a listing or the logs tell it.
    pub server: Option<String>,
}

/// The newest time in the protocol and connectivity logs.
pub(crate) fn newest_log_time(a: &Artefacts) -> Option<OffsetDateTime> {
    let p = a
        .protocol
        .sessions
        .iter()
        .filter_map(|s| s.session.events.iter().map(|e| e.at).max())
        .max();
    let c = a.connectivity.iter().map(|(e, _)| e.at).max();
    p.max(c)
}

impl<'a> Model<'a> {
    pub(crate) fn build(a: &'a Artefacts, now: Option<OffsetDateTime>) -> Self {
        let as_of = now.or_else(|| newest_log_time(a)).or_else(|| {
            a.queues
                .iter()
                .filter_map(|q| q.row.last_retry_time)
                .chain(a.messages.iter().filter_map(|m| m.row.date_received))
                .max()
        });
        let store = Store::build(a);

        // Connectors from the listings, then the names only the logs know.
        let mut connectors: Vec<ConnectorView<'a>> = a
            .send_connectors
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
                    tls_name: raw.as_deref().and_then(parse_tls_name),
                    tls_name_raw: raw,
                    sessions: Vec::new(),
                }
            })
            .collect();

        let mut sessions: Vec<SessionView<'a>> = a
            .protocol
            .sessions
            .iter()
            .filter(|s| s.kind != Some(LogKind::Receive))
            .map(SessionView::build)
            .collect();
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

        let mut queues = Vec::new();
        for q in &a.queues {
            if let Some(le) = &q.row.last_error {
                queues.push(QueueView {
                    next_hop: &q.row.next_hop_domain,
                    last_error: le,
                    ev: prop_ev(&q.evidence, "LastError"),
                    connector: None,
                });
            }
        }
        for m in &a.messages {
            if let Some(le) = &m.row.last_error {
                let next_hop = a
                    .queues
                    .iter()
                    .find(|q| q.row.identity.eq_ignore_ascii_case(&m.row.queue))
                    .map_or("", |q| q.row.next_hop_domain.as_str());
                queues.push(QueueView {
                    next_hop,
                    last_error: le,
                    ev: prop_ev(&m.evidence, "LastError"),
                    connector: None,
                });
            }
        }
        for q in &mut queues {
            q.connector = queue_connector(q, &connectors, &sessions);
        }

        let mut ndrs = Vec::new();
        for n in &a.ndrs {
            for rcpt in &n.recipients {
                let Some(reply) = rcpt.reply() else { continue };
                let domain = rcpt.address.rsplit_once('@').map_or("", |(_, d)| d);
                ndrs.push(NdrView {
                    rcpt,
                    reply,
                    ev: Ev::of(&rcpt.evidence, n.date),
                    connector: domain_connector(domain, &connectors),
                });
            }
        }

        let eop = a
            .mock_sessions
            .iter()
            .map(|m| {
                let id = m.record.session_id.as_str();
                let by_banner = sessions.iter().position(|s| {
                    s.banner
                        .and_then(|i| s.reply(i))
                        .is_some_and(|r| !id.is_empty() && r.text().contains(&format!("[{id}]")))
                });
                let by_endpoint = || {
                    sessions
                        .iter()
                        .position(|s| s.ps.session.local == Some(m.record.peer))
                };
                EopView {
                    m,
                    session: by_banner.or_else(by_endpoint),
                }
            })
            .collect();

        let server = a
            .queues
            .iter()
            .filter_map(|q| q.row.identity.split_once('\\').map(|(s, _)| s.to_string()))
            .find(|s| !s.is_empty())
            .or_else(|| {
                a.send_connectors
                    .iter()
                    .flat_map(|c| c.row.source_transport_servers.iter())
                    .next()
                    .cloned()
            });

        Self {
            a,
            as_of,
            store,
            connectors,
            sessions,
            queues,
            ndrs,
            eop,
            server,
        }
    }

    /// The mock EOP's record of a send session (by index into `sessions`).
    pub(crate) fn eop_of(&self, si: usize) -> Option<&EopView<'a>> {
        self.eop.iter().find(|e| e.session == Some(si))
    }

    /// The index of a send session.
    pub(crate) fn session_index(&self, s: &SessionView<'_>) -> Option<usize> {
        self.sessions.iter().position(|x| std::ptr::eq(x.ps, s.ps))
    }

    pub(crate) fn connector_of(&self, s: &SessionView<'_>) -> Option<&ConnectorView<'a>> {
        s.connector.map(|i| &self.connectors[i])
    }

    /// Sessions of a connector.
    pub(crate) fn sessions_of<'m>(
        &'m self,
        ci: usize,
    ) -> impl Iterator<Item = &'m SessionView<'a>> + 'm {
        self.connectors[ci]
            .sessions
            .iter()
            .map(move |&i| &self.sessions[i])
    }

    /// Queues attributed to a connector.
    pub(crate) fn queues_of<'m>(
        &'m self,
        ci: usize,
    ) -> impl Iterator<Item = &'m QueueView<'a>> + 'm {
        self.queues.iter().filter(move |q| q.connector == Some(ci))
    }

    /// The queue LastError lines of a connector whose LED contains any of `needles`.
    pub(crate) fn queue_evs(&self, ci: Option<usize>, needles: &[&str]) -> Vec<Ev> {
        self.queues
            .iter()
            .filter(|q| ci.is_none() || q.connector == ci || q.connector.is_none())
            .filter(|q| {
                let l = q.led().to_ascii_lowercase();
                needles.is_empty() || needles.iter().any(|n| l.contains(&n.to_ascii_lowercase()))
            })
            .filter_map(|q| q.ev.clone())
            .collect()
    }

    /// The server name for fixes (the `<SERVER>` placeholder when no listing tells it).
    pub(crate) fn server_name(&self) -> String {
        self.server
            .clone()
            .unwrap_or_else(|| "<SERVER>".to_string())
    }

    /// The connectivity events of a session, with their lines.
    pub(crate) fn connectivity_notes(
        &self,
    ) -> impl Iterator<Item = (ConnectivityNote, Ev, &'a str, &'a str)> + '_ {
        self.a.connectivity.iter().map(|(e, ev)| {
            (
                e.note(),
                Ev::of(ev, Some(e.at)),
                e.session.as_str(),
                e.destination.as_str(),
            )
        })
    }

    /// The tenant's coexistence domain (`contoso.mail.onmicrosoft.com`), when anything names it.
    pub(crate) fn tenant_domain(&self) -> Option<String> {
        self.connectors
            .iter()
            .flat_map(|c| c.address_domains())
            .find(|d| d.ends_with(".mail.onmicrosoft.com"))
            .or_else(|| {
                self.queues
                    .iter()
                    .map(|q| q.next_hop.to_ascii_lowercase())
                    .find(|d| d.ends_with(".mail.onmicrosoft.com"))
            })
            .or_else(|| {
                self.a
                    .queues
                    .iter()
                    .map(|q| q.row.next_hop_domain.to_ascii_lowercase())
                    .find(|d| d.ends_with(".mail.onmicrosoft.com"))
            })
    }

    /// Enabled Exchange Online inbound connectors of type OnPremises.
    pub(crate) fn onprem_inbound(&self) -> impl Iterator<Item = &'a Parsed<InboundConnectorRow>> {
        self.a.inbound_connectors.iter().filter(|c| {
            c.row.enabled != Some(false)
                && c.row
                    .connector_type
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case("OnPremises"))
        })
    }
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// The connector whose address spaces cover `domain` most specifically (`*` only when it is the
/// only hybrid connector's).
fn domain_connector(domain: &str, connectors: &[ConnectorView<'_>]) -> Option<usize> {
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

/// Which connector a queue belongs to: its next hop in the connector's address spaces or smart
/// hosts, else the connector whose sessions went to the LastError's IP.
fn queue_connector(
    q: &QueueView<'_>,
    connectors: &[ConnectorView<'_>],
    sessions: &[SessionView<'_>],
) -> Option<usize> {
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
