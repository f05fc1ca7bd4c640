//! `[eop.tls]`: STARTTLS, the protocol versions, cipher suites and groups on offer, the
//! endpoint's certificate, and what happens with a client certificate that does not validate.

use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use hybridlab_labkit::pki::{DnAttr, DnSpec, KeyKind};
use hybridlab_model::timespan::TimeSpan;

/// TLS on the endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// Advertise and accept STARTTLS (EOP always does; `false` models an endpoint without a
    /// certificate: no STARTTLS in EHLO, the command is unrecognised).
    pub starttls: bool,
    /// Whether a client may negotiate TLS 1.2 (EOP's minimum).
    pub tls12: bool,
    /// Whether a client may negotiate TLS 1.3. EOP's TLS 1.3 support on the MX is uncertain
    /// \[U\]: Microsoft's encryption reference
    /// (<https://learn.microsoft.com/en-us/purview/technical-reference-details-about-encryption>)
    /// long said "TLS 1.3 is currently not supported", later announcements added it on some
    /// endpoints. Off by default, as that reference says.
    pub tls13: bool,
    /// Restrict the cipher suites (rustls names such as `TLS13_AES_256_GCM_SHA384`,
    /// `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`); empty = EOP's documented list for the
    /// certificate's key type ([`crate::tls::eop_cipher_suites`]).
    pub cipher_suites: Vec<CipherSuiteName>,
    /// Restrict the key-exchange groups (`X25519`, `secp256r1`, `secp384r1`); empty = defaults.
    pub key_exchange_groups: Vec<KxGroupName>,
    /// Ask for a client certificate (optional for the client). EOP does.
    pub request_client_certificate: bool,
    /// What an invalid client certificate (untrusted, expired, wrong purpose) does.
    pub invalid_client_certificate: InvalidClientCertificate,
    /// How long the handshake may take after `220 2.0.0 SMTP server ready`.
    pub handshake_timeout: TimeSpan,
    /// The certificate the endpoint presents: generated from this description, or read from
    /// PEM files.
    pub server_certificate: ServerCertificate,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            starttls: true,
            tls12: true,
            tls13: false,
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
    /// The DNS names of the subjectAltName extension (what a client matches the host against).
    pub dns_names: Vec<String>,
    /// The leaf's key: `rsa2048` (the default, as EOP's certificate: ECDHE-RSA suites) or
    /// `ecdsa-p256`/`ecdsa-p384` (cheaper handshakes for load tests; ECDHE-ECDSA suites).
    pub key: KeyKind,
    /// NotBefore, in days relative to the lab clock's start (negative = in the past).
    pub not_before_days: i64,
    /// NotAfter, in days relative to the lab clock's start (negative = already expired).
    pub not_after_days: i64,
    /// The root the generated chain leads to.
    pub issuer: CertIssuer,
    /// Whether the endpoint sends the intermediate with its leaf.
    pub chain: ChainSent,
    /// PEM file with the chain (leaf first); with `key_file`, replaces generation.
    pub cert_file: Option<PathBuf>,
    /// PEM file with the private key of `cert_file`'s leaf.
    pub key_file: Option<PathBuf>,
}

impl Default for ServerCertificate {
    fn default() -> Self {
        let attr = |key: &str, value: &str| DnAttr {
            key: key.into(),
            value: value.into(),
        };
        Self {
            subject: DnSpec(vec![
                attr("CN", "mail.protection.outlook.com"),
                attr("O", "Microsoft Corporation"),
                attr("L", "Redmond"),
                attr("S", "Washington"),
                attr("C", "US"),
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
            key: KeyKind::Rsa2048,
            not_before_days: -30,
            not_after_days: 335,
            issuer: CertIssuer::Public,
            chain: ChainSent::Full,
            cert_file: None,
            key_file: None,
        }
    }
}

/// A name ring does not offer: `what` is "cipher suite" or "key-exchange group", `known` lists
/// the names it does offer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {name:?}; known: {}{note}", known.join(", "))]
pub struct UnknownTlsName {
    /// "cipher suite" or "key-exchange group".
    pub what: &'static str,
    /// The name as written.
    pub name: String,
    /// The names ring offers, in its order.
    pub known: Vec<String>,
    /// Why a name one might expect is missing (empty when nothing needs saying).
    pub note: &'static str,
}

/// A rustls cipher-suite name, checked against the ring provider's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CipherSuiteName(pub String);

impl CipherSuiteName {
    /// The names of the suites ring offers, as rustls spells them.
    pub fn known() -> Vec<String> {
        rustls::crypto::ring::ALL_CIPHER_SUITES
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect()
    }
}

impl FromStr for CipherSuiteName {
    type Err = UnknownTlsName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let known = Self::known();
        match known.iter().find(|k| k.eq_ignore_ascii_case(s)) {
            Some(k) => Ok(Self(k.clone())),
            None => Err(UnknownTlsName {
                what: "cipher suite",
                name: s.to_string(),
                known,
                note: " (CBC and RSA key-exchange suites need OpenSSL and are not available)",
            }),
        }
    }
}

hybridlab_model::serde_via_str!(CipherSuiteName, |v| v.0.clone());

/// A key-exchange group name (`X25519`, `secp256r1`, `secp384r1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KxGroupName(pub String);

impl KxGroupName {
    /// The names of the groups ring offers, as rustls spells them.
    pub fn known() -> Vec<String> {
        rustls::crypto::ring::ALL_KX_GROUPS
            .iter()
            .map(|g| format!("{:?}", g.name()))
            .collect()
    }
}

impl FromStr for KxGroupName {
    type Err = UnknownTlsName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let known = Self::known();
        match known.iter().find(|k| k.eq_ignore_ascii_case(s)) {
            Some(k) => Ok(Self(k.clone())),
            None => Err(UnknownTlsName {
                what: "key-exchange group",
                name: s.to_string(),
                known,
                note: "",
            }),
        }
    }
}

hybridlab_model::serde_via_str!(KxGroupName, |v| v.0.clone());
