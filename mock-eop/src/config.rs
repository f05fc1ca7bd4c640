//! The `[eop]` configuration: the endpoint, its TLS and limits, the tenants with their accepted
//! domains and inbound connectors, and the EOP behaviours the domain reference marks as uncertain.
//!
//! # Contract
//! Scenario files embed [`EopConfig`] under `[eop]` (and [`crate::fault::Fault`] under
//! `[[faults]]`); `mock-eop serve --config FILE` reads the same two tables ([`MockFile`]). Keys are
//! snake_case; every table denies unknown keys; every key has a default, so `[eop]` may be empty.
//! An empty config has **no tenant**: every recipient is then outside any tenant and relaying is
//! refused. [`EopConfig::contoso`] is the contoso-like default `mock-eop serve` uses when no file
//! is given.
//!
//! ```toml
//! [eop.endpoint]
//! hostname = "AM5EUR02FT017.mail.protection.outlook.com"
//! region = "EUR"
//!
//! [eop.limits]
//! idle_timeout = "00:05:00"          # Exchange timespan, or "30s", "5m", "250ms", or seconds
//!
//! [[eop.tenants]]
//! name = "contoso"
//! accepted_domains = [
//!   { domain = "contoso.com", type = "internal_relay" },
//!   { domain = "contoso.mail.onmicrosoft.com" },
//! ]
//!
//! [[eop.tenants.inbound_connectors]]
//! name = "Inbound from contoso"
//! connector_type = "on_premises"
//! tls_sender_certificate_name = "*.contoso.com"
//! sender_ip_addresses = ["127.0.0.5", "127.0.1.0/24"]
//! require_tls = true
//! cloud_services_mail_enabled = true
//! ```
//!
//! Errors from [`parse_toml`] and [`MockFile::from_path`] name the file, line, column and field.
//!
//! Settings for behaviours exchange-hybrid.md tags as uncertain (section 9): the idle and session
//! timeouts ([`Limits`]), TLS 1.3 on/off ([`TlsSettings::tls13`]), what happens with an invalid
//! client certificate ([`TlsSettings::invalid_client_certificate`]), wildcard depth and the
//! accepted-domain rule for certificate names ([`AttributionSettings`]), the exact reject texts
//! ([`ReplyOverrides`]), the line length and protocol-error limits, and the BDAT chunk reply.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use hybridlab_labkit::pki::DnSpec;
pub use hybridlab_model::exo::{
    AcceptedDomain, ConnectorType, DomainType, InboundConnector, SenderDomain, SenderIpRange,
    Tenant,
};
use hybridlab_model::reply::Reply;
use hybridlab_model::timespan::TimeSpan;

/// Errors loading a configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// TOML syntax or a value of the wrong shape, an unknown key, a missing key.
    #[error("{file}:{line}:{column}: {}{message}", field_prefix(.field))]
    Toml {
        /// The file (or origin label) the text came from.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// The key concerned, when known.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A value that parses but is inconsistent with the rest (duplicate names, no TLS version...).
    #[error("{file}{}: {path}: {message}", line_suffix(.line, .column))]
    Invalid {
        /// The file (or origin label).
        file: String,
        /// Best-effort 1-based line of the key, when it could be located.
        line: Option<usize>,
        /// Best-effort 1-based column of the key, with `line`.
        column: Option<usize>,
        /// Dotted path of the offending key, e.g. `tenants[0].inbound_connectors[1].name`.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The path.
        file: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

fn field_prefix(field: &Option<String>) -> String {
    match field {
        Some(f) => format!("field `{f}`: "),
        None => String::new(),
    }
}

fn line_suffix(line: &Option<usize>, column: &Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

/// Parses TOML text into `T`, mapping errors to [`ConfigError::Toml`] with the file name, line,
/// column and (when it can be told) the key. The scenario runner uses it for whole scenario files.
pub fn parse_toml<T: DeserializeOwned>(src: &str, file: &str) -> Result<T, ConfigError> {
    toml::from_str(src).map_err(|e| {
        let (line, column, key_on_line) = match e.span() {
            Some(span) => position(src, span.start),
            None => (1, 1, None),
        };
        let message = e.message().trim().to_string();
        let field = backticked(&message).or(key_on_line);
        ConfigError::Toml {
            file: file.to_string(),
            line,
            column,
            field,
            message,
        }
    })
}

/// 1-based line and column of byte offset `at`, and the `key` of a `key = value` line there.
fn position(src: &str, at: usize) -> (usize, usize, Option<String>) {
    let at = at.min(src.len());
    let before = &src[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = src[line_start..at].chars().count() + 1;
    let line_text = src[line_start..].lines().next().unwrap_or("");
    let key = line_text.split_once('=').and_then(|(k, _)| {
        let k = k.trim().trim_start_matches('{').trim();
        let k = k.rsplit([',', '{']).next().unwrap_or(k).trim();
        (!k.is_empty() && !k.starts_with('[') && !k.contains(' ')).then(|| k.to_string())
    });
    (line, column, key)
}

/// The first `` `name` `` in a serde message (unknown field `x`, missing field `y`).
fn backticked(message: &str) -> Option<String> {
    if !(message.starts_with("unknown field") || message.starts_with("missing field")) {
        return None;
    }
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}

/// Best-effort line and column of the last segment of a dotted path (`tls.tls13` -> the
/// `tls13 =` line).
fn locate(src: &str, path: &str) -> Option<(usize, usize)> {
    let last = path.rsplit('.').next()?;
    let key = last.split('[').next()?;
    src.lines().enumerate().find_map(|(i, l)| {
        let trimmed = l.trim_start();
        let found = trimmed
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='));
        found.then(|| (i + 1, l.chars().count() - trimmed.chars().count() + 1))
    })
}

/// The file `mock-eop serve --config` reads: the `[eop]` tables and the `[[faults]]` of a scenario.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MockFile {
    /// The endpoint, tenants and behaviour settings.
    pub eop: EopConfig,
    /// Scripted faults.
    pub faults: Vec<crate::fault::Fault>,
}

impl MockFile {
    /// Parses and validates TOML text; `file` labels errors.
    pub fn from_toml(src: &str, file: &str) -> Result<Self, ConfigError> {
        let parsed: Self = parse_toml(src, file)?;
        parsed
            .eop
            .validate()
            .map_err(|e| e.into_error(src, file, "eop."))?;
        for (i, f) in parsed.faults.iter().enumerate() {
            f.validate().map_err(|message| {
                let path = format!("faults[{i}]");
                let line = src
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| l.trim_start().starts_with("[[faults]]"))
                    .nth(i)
                    .map(|(n, _)| n + 1);
                ConfigError::Invalid {
                    file: file.to_string(),
                    line,
                    column: line.map(|_| 1),
                    path,
                    message,
                }
            })?;
        }
        Ok(parsed)
    }

    /// Reads, parses and validates a file.
    pub fn from_path(path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let src = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            file: file.clone(),
            source,
        })?;
        Self::from_toml(&src, &file)
    }
}

/// A validation failure before it is placed in a file: the dotted key path and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Dotted path relative to `[eop]`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl Invalid {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Places the failure in `file`, whose text is `src`; `prefix` is prepended to the path
    /// (`"eop."` when the config sits under `[eop]`).
    pub fn into_error(self, src: &str, file: &str, prefix: &str) -> ConfigError {
        let path = format!("{prefix}{}", self.path);
        let at = locate(src, &path);
        ConfigError::Invalid {
            file: file.to_string(),
            line: at.map(|a| a.0),
            column: at.map(|a| a.1),
            path,
            message: self.message,
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Everything the mock EOP endpoint needs to know (the `[eop]` tables).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EopConfig {
    /// The front-end host the sender talks to.
    pub endpoint: Endpoint,
    /// STARTTLS, protocol versions, the server certificate, client-certificate handling.
    pub tls: TlsSettings,
    /// Size, recipient, line, error and time limits.
    pub limits: Limits,
    /// Uncertain details of the attribution rules.
    pub attribution: AttributionSettings,
    /// Replacement texts for the replies EOP's wording is not certain for.
    pub replies: ReplyOverrides,
    /// The Exchange Online organisations behind the endpoint.
    pub tenants: Vec<Tenant>,
    /// Exchange Online's delivery to on-premises (retries, expiry, timeouts): see
    /// [`crate::exo`].
    pub delivery: hybridlab_model::delivery::DeliverySettings,
}

impl EopConfig {
    /// The default of `mock-eop serve` without a config file: one contoso-like tenant in the
    /// endpoint's region with accepted domains `contoso.com` (InternalRelay),
    /// `contoso.mail.onmicrosoft.com` and `contoso.onmicrosoft.com`, and one HCW-style OnPremises
    /// inbound connector `Inbound from contoso` (TlsSenderCertificateName `mail.contoso.com`,
    /// RequireTls, CloudServicesMailEnabled).
    pub fn contoso() -> Self {
        Self {
            tenants: vec![Tenant {
                name: "contoso".into(),
                region: None,
                accepted_domains: vec![
                    AcceptedDomain {
                        domain: "contoso.com".into(),
                        kind: DomainType::InternalRelay,
                    },
                    AcceptedDomain {
                        domain: "contoso.mail.onmicrosoft.com".into(),
                        kind: DomainType::Authoritative,
                    },
                    AcceptedDomain {
                        domain: "contoso.onmicrosoft.com".into(),
                        kind: DomainType::Authoritative,
                    },
                ],
                inbound_connectors: vec![InboundConnector {
                    name: "Inbound from contoso".into(),
                    connector_type: ConnectorType::OnPremises,
                    tls_sender_certificate_name: Some("mail.contoso.com".into()),
                    require_tls: true,
                    cloud_services_mail_enabled: true,
                    ..InboundConnector::default()
                }],
                reject_direct_send: false,
                outbound_connectors: Vec::new(),
            }],
            ..Self::default()
        }
    }

    /// Cross-field checks serde cannot do: unique names, at least one TLS version, a connector
    /// that can be matched at all, sane limits.
    pub fn validate(&self) -> Result<(), Invalid> {
        if !self.tls.tls12 && !self.tls.tls13 {
            return Err(Invalid::new(
                "tls.tls13",
                "at least one of tls12 and tls13 must be enabled",
            ));
        }
        if self.limits.max_line_length < 64 {
            return Err(Invalid::new(
                "limits.max_line_length",
                "must be at least 64 bytes",
            ));
        }
        if self.limits.idle_timeout.0.is_zero() {
            return Err(Invalid::new(
                "limits.idle_timeout",
                "must be more than zero",
            ));
        }
        let sc = &self.tls.server_certificate;
        if sc.not_after_days <= sc.not_before_days {
            return Err(Invalid::new(
                "tls.server_certificate.not_after_days",
                "must be later than not_before_days",
            ));
        }
        if sc.cert_file.is_some() != sc.key_file.is_some() {
            return Err(Invalid::new(
                "tls.server_certificate.cert_file",
                "cert_file and key_file go together",
            ));
        }
        let mut tenant_names: Vec<String> = Vec::new();
        let mut domains: Vec<(String, String)> = Vec::new();
        for (ti, t) in self.tenants.iter().enumerate() {
            let tp = format!("tenants[{ti}]");
            if t.name.trim().is_empty() {
                return Err(Invalid::new(format!("{tp}.name"), "must not be empty"));
            }
            if tenant_names.iter().any(|n| n.eq_ignore_ascii_case(&t.name)) {
                return Err(Invalid::new(
                    format!("{tp}.name"),
                    format!("duplicate tenant name {:?}", t.name),
                ));
            }
            tenant_names.push(t.name.clone());
            for (di, d) in t.accepted_domains.iter().enumerate() {
                if !is_domain(&d.domain) {
                    return Err(Invalid::new(
                        format!("{tp}.accepted_domains[{di}].domain"),
                        format!("{:?} is not a domain name", d.domain),
                    ));
                }
                if let Some((owner, _)) = domains
                    .iter()
                    .find(|(_, dom)| dom.eq_ignore_ascii_case(&d.domain))
                {
                    return Err(Invalid::new(
                        format!("{tp}.accepted_domains[{di}].domain"),
                        format!(
                            "{:?} is already an accepted domain of tenant {owner:?}",
                            d.domain
                        ),
                    ));
                }
                domains.push((t.name.clone(), d.domain.clone()));
            }
            crate::exo::validate_outbound_connectors(t, &tp)?;
            let mut names: Vec<&str> = Vec::new();
            for (ci, c) in t.inbound_connectors.iter().enumerate() {
                let cp = format!("{tp}.inbound_connectors[{ci}]");
                if c.name.trim().is_empty() {
                    return Err(Invalid::new(format!("{cp}.name"), "must not be empty"));
                }
                if names.iter().any(|n| n.eq_ignore_ascii_case(&c.name)) {
                    return Err(Invalid::new(
                        format!("{cp}.name"),
                        format!(
                            "duplicate connector name {:?} in tenant {:?}",
                            c.name, t.name
                        ),
                    ));
                }
                names.push(&c.name);
                if let Some(n) = &c.tls_sender_certificate_name {
                    let bare = n.strip_prefix("*.").unwrap_or(n);
                    if !is_domain(bare) {
                        return Err(Invalid::new(
                            format!("{cp}.tls_sender_certificate_name"),
                            format!("{n:?} is not a domain or *.domain"),
                        ));
                    }
                }
                if c.tls_sender_certificate_name.is_none() && c.sender_ip_addresses.is_empty() {
                    return Err(Invalid::new(
                        format!("{cp}.tls_sender_certificate_name"),
                        "a connector needs tls_sender_certificate_name or sender_ip_addresses \
                         (Exchange Online refuses one with neither)",
                    ));
                }
                if c.connector_type == ConnectorType::OnPremises
                    && (c.restrict_domains_to_certificate || c.restrict_domains_to_ip_addresses)
                {
                    return Err(Invalid::new(
                        format!("{cp}.restrict_domains_to_certificate"),
                        "RestrictDomainsTo* apply to Partner connectors only",
                    ));
                }
                if c.restrict_domains_to_certificate && c.tls_sender_certificate_name.is_none() {
                    return Err(Invalid::new(
                        format!("{cp}.restrict_domains_to_certificate"),
                        "needs tls_sender_certificate_name",
                    ));
                }
                if c.restrict_domains_to_ip_addresses && c.sender_ip_addresses.is_empty() {
                    return Err(Invalid::new(
                        format!("{cp}.restrict_domains_to_ip_addresses"),
                        "needs sender_ip_addresses",
                    ));
                }
                for (si, s) in c.sender_domains.iter().enumerate() {
                    if s.0 != "*" && !is_domain(s.0.strip_prefix("*.").unwrap_or(&s.0)) {
                        return Err(Invalid::new(
                            format!("{cp}.sender_domains[{si}]"),
                            format!("{:?} is not *, a domain or *.domain", s.0),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The tenant that has `domain` as an accepted domain.
    pub fn tenant_of_domain(&self, domain: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.accepts(domain))
    }

    /// A tenant by name (case-insensitive).
    pub fn tenant(&self, name: &str) -> Option<&Tenant> {
        self.tenants
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
    }

    /// The region a tenant lives in (its own, else the endpoint's).
    pub fn region_of<'a>(&'a self, tenant: &'a Tenant) -> &'a str {
        tenant.region.as_deref().unwrap_or(&self.endpoint.region)
    }
}

fn is_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The EOP front end the sender reaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Endpoint {
    /// The front-end host in the banner and EHLO reply.
    pub hostname: String,
    /// The region (forest) of this endpoint; a tenant in another region gets ATTR35 (4.4.62).
    pub region: String,
    /// The back-end host named in `250 2.6.0 ... [InternalId=..., Hostname=...]`.
    pub backend_host: String,
    /// The host in brackets at the end of reject texts (`... Relay Access Denied [host]`).
    pub reject_host: String,
    /// Whether the banner ends with a bracketed 16-hex session id (current banners do; older
    /// ones did not).
    pub banner_session_id: bool,
}

impl Default for Endpoint {
    fn default() -> Self {
        Self {
            hostname: "AM5EUR02FT017.mail.protection.outlook.com".into(),
            region: "EUR".into(),
            backend_host: "AM0PR01MB1234.eurprd01.prod.exchangelabs.com".into(),
            reject_host: "AM5EUR02FT017.eop-EUR02.prod.protection.outlook.com".into(),
            banner_session_id: true,
        }
    }
}

/// TLS on the endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// Advertise and accept STARTTLS (EOP always does; `false` models an endpoint without a
    /// certificate: no STARTTLS in EHLO, the command is unrecognised).
    pub starttls: bool,
    /// Offer TLS 1.2.
    pub tls12: bool,
    /// Offer TLS 1.3. EOP's TLS 1.3 support on the MX is uncertain \[U\]; on by default.
    pub tls13: bool,
    /// Restrict the cipher suites (rustls names such as `TLS13_AES_256_GCM_SHA384`,
    /// `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`); empty = ring's defaults. For mismatch scenarios.
    pub cipher_suites: Vec<CipherSuiteName>,
    /// Restrict the key-exchange groups (`X25519`, `secp256r1`, `secp384r1`); empty = defaults.
    pub key_exchange_groups: Vec<KxGroupName>,
    /// Ask for a client certificate (optional for the client). EOP does.
    pub request_client_certificate: bool,
    /// What an invalid client certificate (untrusted, expired, wrong purpose) does.
    pub invalid_client_certificate: InvalidClientCertificate,
    /// How long the handshake may take after `220 2.0.0 SMTP server ready`.
    pub handshake_timeout: TimeSpan,
    /// The endpoint's own certificate.
    pub server_certificate: ServerCertificate,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            starttls: true,
            tls12: true,
            tls13: true,
            cipher_suites: Vec::new(),
            key_exchange_groups: Vec::new(),
            request_client_certificate: true,
            invalid_client_certificate: InvalidClientCertificate::Ignore,
            handshake_timeout: TimeSpan::from_secs(60),
            server_certificate: ServerCertificate::default(),
        }
    }
}

/// What EOP does with a client certificate that does not validate. Uncertain \[U\]: the observed
/// behaviour is that attribution silently fails (`ignore`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidClientCertificate {
    /// Complete the handshake, record the chain verdict, do not attribute by certificate.
    #[default]
    Ignore,
    /// Abort the handshake with a TLS alert (bad_certificate / unknown_ca).
    RejectHandshake,
}

/// Who issued the endpoint's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertIssuer {
    /// The lab's "public" root (through an intermediate): the root clients are given to trust.
    #[default]
    Public,
    /// A root the lab never hands out (on-prem does not trust EOP's chain, FM-11).
    Untrusted,
    /// Self-signed leaf.
    SelfSigned,
}

/// Which certificates the endpoint sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainSent {
    /// Leaf and intermediate.
    #[default]
    Full,
    /// Leaf only (a client without the intermediate cannot build the chain).
    LeafOnly,
}

/// The endpoint's certificate: generated at start (validity relative to the lab clock's start) or
/// loaded from PEM files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerCertificate {
    /// Subject DN, .NET order (`CN=..., O=..., C=US`).
    pub subject: DnSpec,
    /// DNS subjectAltNames.
    pub dns_names: Vec<String>,
    /// NotBefore, in days relative to the lab clock's start (negative = in the past).
    pub not_before_days: i64,
    /// NotAfter, in days relative to the lab clock's start (negative = already expired).
    pub not_after_days: i64,
    /// The issuing root.
    pub issuer: CertIssuer,
    /// Full chain or leaf only.
    pub chain: ChainSent,
    /// PEM file with the chain (leaf first); with `key_file`, replaces generation.
    pub cert_file: Option<PathBuf>,
    /// PEM file with the private key.
    pub key_file: Option<PathBuf>,
}

impl Default for ServerCertificate {
    fn default() -> Self {
        Self {
            subject: DnSpec(vec![
                hybridlab_labkit::pki::DnAttr {
                    key: "CN".into(),
                    value: "mail.protection.outlook.com".into(),
                },
                hybridlab_labkit::pki::DnAttr {
                    key: "O".into(),
                    value: "Microsoft Corporation".into(),
                },
                hybridlab_labkit::pki::DnAttr {
                    key: "L".into(),
                    value: "Redmond".into(),
                },
                hybridlab_labkit::pki::DnAttr {
                    key: "S".into(),
                    value: "Washington".into(),
                },
                hybridlab_labkit::pki::DnAttr {
                    key: "C".into(),
                    value: "US".into(),
                },
            ]),
            dns_names: [
                "mail.protection.outlook.com",
                "*.mail.protection.outlook.com",
                "*.mail.eo.outlook.com",
                "outlook.com",
                "mail.messaging.microsoft.com",
            ]
            .map(String::from)
            .to_vec(),
            not_before_days: -30,
            not_after_days: 335,
            issuer: CertIssuer::Public,
            chain: ChainSent::Full,
            cert_file: None,
            key_file: None,
        }
    }
}

/// Limits of the endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Advertised as `SIZE`; larger messages get `552 5.3.4`. EOP: 157286400 (150 MiB).
    pub max_message_size: u64,
    /// Recipients per message; more get `452 4.5.3 Too many recipients`. EXO: 500.
    pub max_recipients: usize,
    /// Longest command line in bytes, CRLF included \[U\]; longer lines get `500 5.5.2 Line too long`.
    pub max_line_length: usize,
    /// Protocol errors tolerated; the next one gets `421 4.7.0 Too many errors ...` and the
    /// connection is closed \[U\] (Exchange's MaxProtocolErrors default is 5).
    pub max_protocol_errors: u32,
    /// Idle time before `451 4.7.0 Timeout waiting for client input` and close \[U\].
    pub idle_timeout: TimeSpan,
    /// Absolute session lifetime before `421 4.4.1 Connection timed out` \[U\]; none by default.
    pub session_timeout: Option<TimeSpan>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_size: 157_286_400,
            max_recipients: 500,
            max_line_length: 4096,
            max_protocol_errors: 5,
            idle_timeout: TimeSpan::from_secs(300),
            session_timeout: None,
        }
    }
}

/// Uncertain details of tenant attribution (exchange-hybrid.md 3.2, 8.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttributionSettings {
    /// How far `*.` in TlsSenderCertificateName (and in a wildcard certificate) reaches \[U\].
    pub wildcard: WildcardMatching,
    /// A certificate attributes a connector only when the connector's TlsSenderCertificateName
    /// is (a subdomain of) an accepted domain of the tenant (MC1226222) [D/U].
    pub certificate_domain_must_be_accepted: bool,
}

impl Default for AttributionSettings {
    fn default() -> Self {
        Self {
            wildcard: WildcardMatching::SingleLabel,
            certificate_domain_must_be_accepted: true,
        }
    }
}

/// Wildcard semantics for certificate names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WildcardMatching {
    /// RFC 6125: `*.contoso.com` covers exactly one left-most label.
    #[default]
    SingleLabel,
    /// `*.contoso.com` covers any depth (`a.b.contoso.com`), never the bare `contoso.com`.
    AnyDepth,
}

/// Replacement reply lines (`"550 5.7.64 ..."`); `{host}` is replaced by the endpoint's
/// `reject_host`, `{ip}` by the client's address. Unset = the texts in [`hybridlab_model::reply::eop`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplyOverrides {
    /// Attributed connector requires TLS, session is cleartext (`451 5.7.3 ...`).
    pub starttls_required: Option<ReplyTemplate>,
    /// Relay from an unattributed sender (`550 5.7.64 TenantAttribution; ...`).
    pub relay_denied: Option<ReplyTemplate>,
    /// Unaccepted sender domain without a certificate connector (`550 5.7.64 ... ATTR36 ...`).
    pub relay_denied_attr36: Option<ReplyTemplate>,
    /// Partner connector restriction violated (`550 5.7.51 TenantInboundAttribution; ...`).
    pub partner_restricted: Option<ReplyTemplate>,
    /// RejectDirectSend (`550 5.7.68 ...`).
    pub direct_send_denied: Option<ReplyTemplate>,
    /// Tenant in another region (`451 4.4.62 ... ATTR35 ...`).
    pub wrong_region: Option<ReplyTemplate>,
    /// The reply to a non-last BDAT chunk \[U\]; `{size}` is the chunk size.
    pub bdat_chunk: Option<ReplyTemplate>,
}

/// A reply line with `{host}`, `{ip}` or `{size}` placeholders, checked to start with a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTemplate(pub String);

impl ReplyTemplate {
    /// The reply with placeholders filled.
    pub fn render(&self, host: &str, ip: &str, size: usize) -> Reply {
        let text = self
            .0
            .replace("{host}", host)
            .replace("{ip}", ip)
            .replace("{size}", &size.to_string());
        Reply::parse_line(&text).unwrap_or_else(|| Reply::new(451, text))
    }
}

impl FromStr for ReplyTemplate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match Reply::parse_line(s) {
            Some(r) if r.code >= 200 => Ok(Self(s.to_string())),
            _ => Err(format!(
                "{s:?} is not a reply line (`<code> <text>`, code 200-599)"
            )),
        }
    }
}

hybridlab_model::serde_via_str!(ReplyTemplate, |v| v.0.clone());

/// A rustls cipher-suite name, checked against the ring provider's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CipherSuiteName(pub String);

impl CipherSuiteName {
    /// Names ring offers.
    pub fn known() -> Vec<String> {
        rustls::crypto::ring::ALL_CIPHER_SUITES
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect()
    }
}

impl FromStr for CipherSuiteName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let known = Self::known();
        match known.iter().find(|k| k.eq_ignore_ascii_case(s)) {
            Some(k) => Ok(Self(k.clone())),
            None => Err(format!(
                "unknown cipher suite {s:?}; known: {} (CBC and RSA key-exchange suites need OpenSSL and are not available)",
                known.join(", ")
            )),
        }
    }
}

hybridlab_model::serde_via_str!(CipherSuiteName, |v| v.0.clone());

/// A key-exchange group name (`X25519`, `secp256r1`, `secp384r1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KxGroupName(pub String);

impl KxGroupName {
    /// Names ring offers.
    pub fn known() -> Vec<String> {
        rustls::crypto::ring::ALL_KX_GROUPS
            .iter()
            .map(|g| format!("{:?}", g.name()))
            .collect()
    }
}

impl FromStr for KxGroupName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let known = Self::known();
        match known.iter().find(|k| k.eq_ignore_ascii_case(s)) {
            Some(k) => Ok(Self(k.clone())),
            None => Err(format!(
                "unknown key-exchange group {s:?}; known: {}",
                known.join(", ")
            )),
        }
    }
}

hybridlab_model::serde_via_str!(KxGroupName, |v| v.0.clone());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_has_defaults() {
        let f = MockFile::from_toml("", "empty.toml").unwrap();
        assert_eq!(f.eop, EopConfig::default());
        assert!(f.eop.tenants.is_empty());
        assert_eq!(f.eop.limits.max_message_size, 157_286_400);
        let f = MockFile::from_toml("[eop]\n", "e.toml").unwrap();
        assert!(f.faults.is_empty());
    }

    #[test]
    fn full_example_parses() {
        let src = r#"
[eop.endpoint]
hostname = "BL2NAM06FT004.mail.protection.outlook.com"
region = "NAM"

[eop.limits]
idle_timeout = "00:01:00"
session_timeout = "10m"

[eop.tls]
tls13 = false
cipher_suites = ["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"]

[eop.tls.server_certificate]
issuer = "untrusted"
chain = "leaf_only"
not_after_days = -1
not_before_days = -400

[[eop.tenants]]
name = "contoso"
region = "EUR"
accepted_domains = [{ domain = "contoso.com", type = "internal_relay" }, { domain = "contoso.mail.onmicrosoft.com" }]

[[eop.tenants.inbound_connectors]]
name = "Inbound from contoso"
connector_type = "on_premises"
tls_sender_certificate_name = "*.contoso.com"
sender_ip_addresses = ["127.0.0.5", "127.0.1.0/24"]
sender_domains = ["smtp:*;1"]
require_tls = true
"#;
        let f = MockFile::from_toml(src, "s.toml").unwrap();
        assert_eq!(f.eop.endpoint.region, "NAM");
        assert_eq!(f.eop.limits.idle_timeout, TimeSpan::from_secs(60));
        assert_eq!(f.eop.limits.session_timeout, Some(TimeSpan::from_secs(600)));
        let t = &f.eop.tenants[0];
        assert_eq!(t.accepted_domains[0].kind, DomainType::InternalRelay);
        assert_eq!(t.accepted_domains[1].kind, DomainType::Authoritative);
        let c = &t.inbound_connectors[0];
        assert_eq!(c.connector_type, ConnectorType::OnPremises);
        assert!(c.covers_ip("127.0.0.5".parse().unwrap()));
        assert!(!c.covers_ip("127.0.0.6".parse().unwrap()));
        assert!(c.covers_ip("127.0.1.77".parse().unwrap()));
        assert!(c.covers_sender(Some("fabrikam.com")));
        assert_eq!(f.eop.region_of(t), "EUR");
        assert_eq!(f.eop.tls.server_certificate.issuer, CertIssuer::Untrusted);
    }

    #[test]
    fn unknown_key_names_file_line_column_and_field() {
        let src = "[eop.endpoint]\nregion = \"EUR\"\nhostnme = \"x\"\n";
        let err = MockFile::from_toml(src, "bad.toml").unwrap_err();
        match &err {
            ConfigError::Toml {
                file,
                line,
                column,
                field,
                ..
            } => {
                assert_eq!(file, "bad.toml");
                assert_eq!(*line, 3);
                assert_eq!(*column, 1);
                assert_eq!(field.as_deref(), Some("hostnme"));
            }
            other => panic!("unexpected {other:?}"),
        }
        let text = err.to_string();
        assert!(text.starts_with("bad.toml:3:1: field `hostnme`:"), "{text}");
    }

    #[test]
    fn bad_values_are_located() {
        let src = "[[eop.tenants]]\nname = \"c\"\n[[eop.tenants.inbound_connectors]]\nname = \"x\"\nsender_ip_addresses = [\"10.0.0.0/16\"]\n";
        let err = MockFile::from_toml(src, "ip.toml").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("ip.toml:5:"), "{text}");
        assert!(text.contains("sender_ip_addresses"), "{text}");
        assert!(text.contains("wider than /24"), "{text}");

        let err = MockFile::from_toml("[eop.limits]\nidle_timeout = \"soon\"\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("t.toml:2:"), "{err}");
        assert!(err.contains("idle_timeout"), "{err}");

        let err = MockFile::from_toml("[eop.tls]\ntls12 = false\ntls13 = false\n", "v.toml")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "v.toml:3:1: eop.tls.tls13: at least one of tls12 and tls13 must be enabled"
        );

        let err = MockFile::from_toml(
            "[eop.tls]\ncipher_suites = [\"TLS_RSA_WITH_RC4_128_MD5\"]\n",
            "c.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown cipher suite"), "{err}");

        let err = MockFile::from_toml(
            "[[eop.tenants]]\nname = \"a\"\naccepted_domains=[{domain=\"x.com\"}]\n[[eop.tenants]]\nname = \"b\"\naccepted_domains=[{domain=\"X.com\"}]\n",
            "d.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("already an accepted domain"), "{err}");
    }

    #[test]
    fn timespans() {
        let p = |s: &str| s.parse::<TimeSpan>().unwrap().0;
        assert_eq!(p("00:05:00").as_secs(), 300);
        assert_eq!(p("1.00:00:00").as_secs(), 86_400);
        assert_eq!(p("00:00:01.5").as_millis(), 1500);
        assert_eq!(p("250ms").as_millis(), 250);
        assert_eq!(p("30s").as_secs(), 30);
        assert_eq!(p("5m").as_secs(), 300);
        assert_eq!(p("2h").as_secs(), 7200);
        assert_eq!(p("12").as_secs(), 12);
        assert!("00:61:00".parse::<TimeSpan>().is_err());
        assert!("-5s".parse::<TimeSpan>().is_err());
        assert!("5 parsecs".parse::<TimeSpan>().is_err());
        assert!("24:00:00".parse::<TimeSpan>().is_err());
        // written back the way Exchange shows a TimeSpan, and read back the same
        assert_eq!(TimeSpan(p("250ms")).to_string(), "00:00:00.250");
        assert_eq!(TimeSpan::from_secs(60).to_string(), "00:01:00");
        assert_eq!(TimeSpan::days(2).to_string(), "2.00:00:00");
        for t in ["00:00:00.250", "2.03:04:05", "00:10:00"] {
            assert_eq!(TimeSpan(p(t)).to_string(), t);
        }
    }

    #[test]
    fn contoso_default_is_valid_and_round_trips() {
        let c = EopConfig::contoso();
        c.validate().unwrap();
        let text = toml::to_string(&MockFile {
            eop: c.clone(),
            faults: Vec::new(),
        })
        .unwrap();
        let back = MockFile::from_toml(&text, "rt.toml").unwrap();
        assert_eq!(back.eop, c);
    }
}
