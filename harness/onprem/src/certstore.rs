//! A model of `Cert:\LocalMachine\My` and the lab's trust stores.
//!
//! Certificates are generated at run time with [`hybridlab_labkit::pki`] from a [`StoreDescription`]
//! (subject and issuer DN, SANs, validity, key kind, EKU; self-signed or issued by a lab authority).
//! Each entry of the personal store carries the flags Windows has and a certificate file does not:
//! whether a private key is associated at all ([`StoreEntry::has_private_key`]), whether the transport
//! service can open it ([`StoreEntry::key_readable`]), the Exchange services it is enabled for, and
//! its place in enumeration order (the order `Find` returns certificates in, which decides the
//! classic key-less-twin case).
//!
//! The lab's trust roots (`LocalMachine\Root`) and intermediates (`LocalMachine\CA`, where the chain
//! the sender presents is built from) are kept separate from the personal store.

use std::fmt;
use std::sync::Arc;

use hybridlab_labkit::pki::{CertAuthority, CertSpec, DnSpec, Eku, IssuedCert, KeyKind, PkiError};
use hybridlab_model::x509::{CertFacts, X509Error};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use hybridlab_artefacts::certs::{CertListingRow, CertificateStatus, ExchangeService, RootCaType};

/// Errors building or reading a certificate store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertStoreError {
    /// A certificate or authority could not be generated.
    #[error("certificate {name:?}: {source}")]
    Pki {
        /// The entry's name in the description.
        name: String,
        /// Why rcgen could not generate it.
        #[source]
        source: PkiError,
    },
    /// A certificate could not be read back.
    #[error("certificate {name:?}: {source}")]
    X509 {
        /// The entry's name in the description.
        name: String,
        /// Why the generated (or given) DER does not parse.
        #[source]
        source: X509Error,
    },
    /// A description refers to an authority that is not defined (or defined later).
    #[error(
        "certificate {name:?}: field `issuer`: no authority named {issuer:?} is defined before it"
    )]
    UnknownIssuer {
        /// The entry's name in the description.
        name: String,
        /// The `issuer` it names, which no earlier authority has.
        issuer: String,
    },
    /// Two entries share a name.
    #[error("duplicate certificate name {0:?}")]
    DuplicateName(String),
    /// A time field is not a day offset nor an RFC 3339 time.
    #[error("certificate {name:?}: field `{field}`: {reason}")]
    BadTime {
        /// The entry's name in the description.
        name: String,
        /// Which time field (`not_before`, `not_after`).
        field: &'static str,
        /// Why its value is not a time.
        reason: String,
    },
    /// The description file could not be parsed.
    #[error("{0}")]
    Parse(String),
}

/// A point in time in a description: days relative to the build time (`-30`, `365`), an offset
/// with a unit (`"-30d"`, `"+335d"`, `"-2h"`, `"+90m"`, `"+30s"`), or an RFC 3339 time
/// (`"2026-01-31T23:59:59Z"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TimeSpec {
    /// Days from the time the store is built (negative: in the past).
    Days(i64),
    /// An absolute time, RFC 3339.
    At(String),
}

impl TimeSpec {
    fn resolve(
        &self,
        now: OffsetDateTime,
        name: &str,
        field: &'static str,
    ) -> Result<OffsetDateTime, CertStoreError> {
        match self {
            Self::Days(d) => Ok(now + Duration::days(*d)),
            Self::At(s) if relative_offset(s).is_some() => {
                Ok(now + relative_offset(s).unwrap_or_default())
            }
            Self::At(s) => OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map_err(|e| CertStoreError::BadTime {
                    name: name.to_string(),
                    field,
                    reason: format!("{s:?} is not an RFC 3339 time ({e})"),
                }),
        }
    }
}

/// `[+-]N<unit>` with unit `d`, `h`, `m` or `s` (`"-30d"`, `"+335d"`).
pub fn relative_offset(s: &str) -> Option<Duration> {
    let t = s.trim();
    let (sign, rest) = match t.as_bytes().first()? {
        b'+' => (1, &t[1..]),
        b'-' => (-1, &t[1..]),
        _ => (1, t),
    };
    let unit = rest.chars().last()?;
    let n: i64 = rest[..rest.len() - unit.len_utf8()].parse().ok()?;
    let d = match unit {
        'd' => Duration::days(n),
        'h' => Duration::hours(n),
        'm' => Duration::minutes(n),
        's' => Duration::seconds(n),
        _ => return None,
    };
    Some(d * sign)
}

fn authority_key() -> KeyKind {
    KeyKind::AUTHORITY_DEFAULT
}

fn default_true() -> bool {
    true
}

fn default_services() -> Vec<ExchangeService> {
    vec![ExchangeService::Smtp]
}

fn default_ekus() -> Vec<Eku> {
    vec![Eku::ServerAuth, Eku::ClientAuth]
}

/// A lab certificate authority: a root (no `issuer`) or an intermediate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorityDescription {
    /// Name other entries use in `issuer` (in a scenario, the key of `[onprem.authorities.<name>]`).
    #[serde(default)]
    pub name: String,
    /// Subject DN, .NET order (`CN=Lab Issuing CA, O=hybridlab, C=US`).
    pub subject: DnSpec,
    /// The parent authority; none for a root.
    #[serde(default)]
    pub issuer: Option<String>,
    /// A root: in `LocalMachine\Root` (trusted). An intermediate: in `LocalMachine\CA`, so the
    /// sender can present it in its chain. `false` models a missing root or intermediate (FM-10/11).
    #[serde(default = "default_true")]
    pub installed: bool,
    /// An intermediate that is not installed but that Windows can still fetch through its AIA URL
    /// to validate certificates locally: the chain the sender *presents* still lacks it (FM-10).
    #[serde(default)]
    pub aia_fetchable: bool,
    /// A root that public trust stores (Exchange Online) trust: the mock EOP is given it to judge
    /// client certificates. `false` models a private enterprise CA (FM-13).
    #[serde(default = "default_true")]
    pub public: bool,
    /// Start of validity (default 5 years before).
    #[serde(default)]
    pub not_before: Option<TimeSpec>,
    /// End of validity (default 5 years after).
    #[serde(default)]
    pub not_after: Option<TimeSpec>,
    /// The authority's key algorithm (default ECDSA P-256: every authority gets a key of its
    /// own; an RSA authority's key is generated fresh, which is slower).
    #[serde(default = "authority_key")]
    pub key: KeyKind,
}

/// One certificate of `Cert:\LocalMachine\My`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertDescription {
    /// Scenario-local name (also the FriendlyName unless `friendly_name` is given).
    pub name: String,
    /// Subject DN, .NET order.
    pub subject: DnSpec,
    /// DNS SANs; default: the subject CN.
    #[serde(default)]
    pub dns_names: Option<Vec<String>>,
    /// The issuing authority's name; none for a self-signed certificate.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Start of validity (default 30 days before).
    #[serde(default)]
    pub not_before: Option<TimeSpec>,
    /// End of validity (default 365 days after).
    #[serde(default)]
    pub not_after: Option<TimeSpec>,
    /// The certificate's key algorithm (default RSA-2048, as public CAs issue them; the
    /// listings show `PublicKeySize` 2048).
    #[serde(default)]
    pub key: KeyKind,
    /// Extended key usages (default ServerAuth + ClientAuth; empty leaves the extension out).
    #[serde(default = "default_ekus")]
    pub ekus: Vec<Eku>,
    /// Serial number as hex (default: random).
    #[serde(default)]
    pub serial: Option<String>,
    /// A private key is associated (`HasPrivateKey`). `false` is the key-less twin / `.cer` import.
    #[serde(default = "default_true")]
    pub has_private_key: bool,
    /// The transport (NETWORK SERVICE) can open the key. `false` gives `UnknownCredentials`.
    #[serde(default = "default_true")]
    pub key_readable: bool,
    /// The Exchange services it is enabled for (default SMTP), as `Enable-ExchangeCertificate`
    /// sets them.
    #[serde(default = "default_services")]
    pub services: Vec<ExchangeService>,
    /// Place in enumeration order; entries are enumerated by ascending `order`, then as listed.
    #[serde(default)]
    pub order: Option<i64>,
    /// The FriendlyName the listings show (default: the name).
    #[serde(default)]
    pub friendly_name: Option<String>,
}

impl CertDescription {
    /// A description for `subject` issued by `issuer` (an authority name) with defaults.
    pub fn new(name: &str, subject: &str, issuer: Option<&str>) -> Result<Self, PkiError> {
        Ok(Self {
            name: name.to_string(),
            subject: subject.parse()?,
            dns_names: None,
            issuer: issuer.map(str::to_string),
            not_before: None,
            not_after: None,
            key: KeyKind::default(),
            ekus: default_ekus(),
            serial: None,
            has_private_key: true,
            key_readable: true,
            services: default_services(),
            order: None,
            friendly_name: None,
        })
    }
}

/// What a store holds: authorities (roots, intermediates) and personal certificates.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreDescription {
    /// Authorities, parents before children.
    #[serde(default)]
    pub authorities: Vec<AuthorityDescription>,
    /// `LocalMachine\My`, in listing order.
    #[serde(default)]
    pub certificates: Vec<CertDescription>,
}

impl StoreDescription {
    /// Parses a TOML description (`[[authorities]]`, `[[certificates]]`); errors name line and column.
    pub fn from_toml(text: &str) -> Result<Self, CertStoreError> {
        toml::from_str(text).map_err(|e| CertStoreError::Parse(e.to_string()))
    }
}

/// One certificate in `LocalMachine\My`, with the Windows-only flags.
#[derive(Clone)]
pub struct StoreEntry {
    /// Scenario-local name (the description's `name`).
    pub name: String,
    /// The certificate, DER.
    pub der: CertificateDer<'static>,
    /// The private key (PKCS#8), present only when `has_private_key`.
    key_pkcs8: Option<Vec<u8>>,
    /// Facts read from the certificate (thumbprint, .NET DNs, SANs, validity...).
    pub facts: CertFacts,
    /// `HasPrivateKey`: a private key is associated (`false`: the key-less twin).
    pub has_private_key: bool,
    /// Whether the transport service (NETWORK SERVICE) can open the key (`false`: SChannel
    /// reports `UnknownCredentials`).
    pub key_readable: bool,
    /// The Exchange services it is enabled for.
    pub services: Vec<ExchangeService>,
    /// The FriendlyName the listings show.
    pub friendly_name: String,
    /// 0-based position in enumeration order.
    pub enumeration_index: usize,
}

impl fmt::Debug for StoreEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreEntry")
            .field("name", &self.name)
            .field("thumbprint", &self.facts.thumbprint)
            .field("subject", &self.facts.subject)
            .field("issuer", &self.facts.issuer)
            .field("has_private_key", &self.has_private_key)
            .field("key_readable", &self.key_readable)
            .field("enumeration_index", &self.enumeration_index)
            .finish_non_exhaustive()
    }
}

impl StoreEntry {
    /// The private key for rustls, when the entry has one.
    pub fn private_key(&self) -> Option<PrivateKeyDer<'static>> {
        self.key_pkcs8
            .as_ref()
            .map(|k| PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(k.clone())))
    }

    /// `Get-ExchangeCertificate` lists only certificates with a private key.
    pub fn visible_to_get_exchangecertificate(&self) -> bool {
        self.has_private_key
    }

    /// The `<I>issuer<S>subject` identifier.
    pub fn x509_identifier(&self) -> String {
        self.facts.x509_identifier()
    }

    /// The certificate as PEM (what `Export-Certificate` / a Base-64 `.cer` holds).
    pub fn cert_pem(&self) -> String {
        hybridlab_labkit::pki::pem_encode("CERTIFICATE", &self.der)
    }

    /// The private key as PKCS#8 PEM, when the entry has one. Whoever writes it to disk must
    /// make the file readable by its owner only (mode 0600).
    pub fn key_pem(&self) -> Option<String> {
        self.key_pkcs8
            .as_ref()
            .map(|k| hybridlab_labkit::pki::pem_encode("PRIVATE KEY", k))
    }

    /// Whether it is enabled for the SMTP service.
    pub fn smtp_enabled(&self) -> bool {
        self.services.contains(&ExchangeService::Smtp)
    }

    /// The certificate as the listings show it at `now`: one row serves both
    /// `Get-ExchangeCertificate` (whose writer keeps only rows with a private key, as the cmdlet)
    /// and `Get-ChildItem Cert:\LocalMachine\My` (every row).
    ///
    /// The Windows-only values are derived, and some of the derivations are guesses \[U\]:
    /// - `HasPrivateKey`, `Services`, `FriendlyName` come from the store flags;
    /// - `Status`: `DateInvalid` outside NotBefore..NotAfter, else `Valid` when the chain builds to
    ///   a root of `LocalMachine\Root` (with `LocalMachine\CA`), else `Untrusted`; a self-signed
    ///   certificate is `Valid` (Exchange's own self-signed certificates are also placed in Root);
    /// - `RootCAType`: `Registry` for a self-signed certificate (Exchange's), `ThirdParty` when the
    ///   chain builds, `Unknown` otherwise.
    pub fn listing_row(&self, store: &CertStore, now: OffsetDateTime) -> CertListingRow {
        let mut row = CertListingRow::from_facts(&self.facts, self.has_private_key);
        let chains = !self.facts.is_self_signed && store.chains_to_trusted_root(self, now);
        row.status = Some(if !self.facts.is_time_valid(now) {
            CertificateStatus::DateInvalid
        } else if self.facts.is_self_signed || chains {
            CertificateStatus::Valid
        } else {
            CertificateStatus::Untrusted
        });
        row.root_ca_type = Some(if self.facts.is_self_signed {
            RootCaType::Registry
        } else if chains {
            RootCaType::ThirdParty
        } else {
            RootCaType::Unknown
        });
        row.services = Some(self.services.clone());
        row.friendly_name = Some(self.friendly_name.clone()).filter(|n| !n.is_empty());
        row
    }
}

/// A certificate in `LocalMachine\Root` or `LocalMachine\CA`.
#[derive(Debug, Clone)]
pub struct AuthorityEntry {
    /// The authority's name in the description.
    pub name: String,
    /// The certificate, DER.
    pub der: CertificateDer<'static>,
    /// Facts read from the certificate (subject, validity...).
    pub facts: CertFacts,
}

/// `LocalMachine\My` plus the lab's trust roots and intermediates.
#[derive(Debug, Clone, Default)]
pub struct CertStore {
    my: Vec<StoreEntry>,
    roots: Vec<AuthorityEntry>,
    intermediates: Vec<AuthorityEntry>,
    aia_intermediates: Vec<AuthorityEntry>,
    authorities: Vec<(String, Arc<CertAuthority>)>,
}

impl CertStore {
    /// A store with no certificate and no trust root.
    pub fn new() -> Self {
        Self::default()
    }

    /// Generates every authority and certificate of `desc`, with relative times taken from `now`.
    ///
    /// # Errors
    /// Unknown issuer names, duplicate names, bad times, or rcgen failures.
    pub fn build(desc: &StoreDescription, now: OffsetDateTime) -> Result<Self, CertStoreError> {
        let mut store = Self::new();
        for a in &desc.authorities {
            store.add_authority(a, now)?;
        }
        let mut order: Vec<(i64, usize, &CertDescription)> = desc
            .certificates
            .iter()
            .enumerate()
            .map(|(i, c)| (c.order.unwrap_or(i as i64), i, c))
            .collect();
        order.sort_by_key(|(o, i, _)| (*o, *i));
        for (_, _, c) in order {
            store.add_certificate(c, now)?;
        }
        Ok(store)
    }

    /// Generates an authority and installs it (root store or intermediate store).
    pub fn add_authority(
        &mut self,
        a: &AuthorityDescription,
        now: OffsetDateTime,
    ) -> Result<(), CertStoreError> {
        if self.authorities.iter().any(|(n, _)| n == &a.name) {
            return Err(CertStoreError::DuplicateName(a.name.clone()));
        }
        let mut spec = CertSpec::authority(a.subject.clone(), now);
        spec.key = a.key;
        if let Some(t) = &a.not_before {
            spec.not_before = t.resolve(now, &a.name, "not_before")?;
        }
        if let Some(t) = &a.not_after {
            spec.not_after = t.resolve(now, &a.name, "not_after")?;
        }
        let pki = |source| CertStoreError::Pki {
            name: a.name.clone(),
            source,
        };
        let ca = match &a.issuer {
            None => CertAuthority::root(&spec).map_err(pki)?,
            Some(parent) => self
                .authority(parent)
                .ok_or_else(|| CertStoreError::UnknownIssuer {
                    name: a.name.clone(),
                    issuer: parent.clone(),
                })?
                .intermediate(&spec)
                .map_err(pki)?,
        };
        let entry = AuthorityEntry {
            name: a.name.clone(),
            der: ca.cert.der.clone(),
            facts: ca.cert.facts.clone(),
        };
        if a.installed {
            if a.issuer.is_none() {
                self.roots.push(entry);
            } else {
                self.intermediates.push(entry);
            }
        } else if a.issuer.is_some() && a.aia_fetchable {
            self.aia_intermediates.push(entry);
        }
        self.authorities.push((a.name.clone(), Arc::new(ca)));
        Ok(())
    }

    /// Generates a certificate and appends it to `LocalMachine\My` (enumerated last).
    pub fn add_certificate(
        &mut self,
        c: &CertDescription,
        now: OffsetDateTime,
    ) -> Result<&StoreEntry, CertStoreError> {
        if self.my.iter().any(|e| e.name == c.name) {
            return Err(CertStoreError::DuplicateName(c.name.clone()));
        }
        let mut spec = CertSpec::leaf(c.subject.common_name().unwrap_or(""), now);
        spec.subject = c.subject.clone();
        spec.dns_names = match &c.dns_names {
            Some(v) => v.clone(),
            None => c
                .subject
                .common_name()
                .map(|cn| vec![cn.to_string()])
                .unwrap_or_default(),
        };
        spec.key = c.key;
        spec.ekus = c.ekus.clone();
        if let Some(t) = &c.not_before {
            spec.not_before = t.resolve(now, &c.name, "not_before")?;
        }
        if let Some(t) = &c.not_after {
            spec.not_after = t.resolve(now, &c.name, "not_after")?;
        }
        if let Some(s) = &c.serial {
            spec.serial = Some(parse_hex(s).ok_or_else(|| CertStoreError::BadTime {
                name: c.name.clone(),
                field: "serial",
                reason: format!("{s:?} is not hex"),
            })?);
        }
        let pki = |source| CertStoreError::Pki {
            name: c.name.clone(),
            source,
        };
        let issued = match &c.issuer {
            None => IssuedCert::self_signed(&spec).map_err(pki)?,
            Some(i) => self
                .authority(i)
                .ok_or_else(|| CertStoreError::UnknownIssuer {
                    name: c.name.clone(),
                    issuer: i.clone(),
                })?
                .issue(&spec)
                .map_err(pki)?,
        };
        let idx = self.my.len();
        self.my.push(StoreEntry {
            name: c.name.clone(),
            der: issued.der.clone(),
            key_pkcs8: c.has_private_key.then(|| issued.key_pkcs8.clone()),
            facts: issued.facts.clone(),
            has_private_key: c.has_private_key,
            key_readable: c.key_readable,
            services: c.services.clone(),
            friendly_name: c.friendly_name.clone().unwrap_or_else(|| c.name.clone()),
            enumeration_index: idx,
        });
        Ok(&self.my[idx])
    }

    /// Adds an existing certificate (from a file) to `LocalMachine\My`.
    ///
    /// # Errors
    /// The DER is not a certificate.
    pub fn add_existing(
        &mut self,
        name: &str,
        der: CertificateDer<'static>,
        key_pkcs8: Option<Vec<u8>>,
    ) -> Result<&StoreEntry, CertStoreError> {
        let facts = CertFacts::from_der(&der).map_err(|source| CertStoreError::X509 {
            name: name.to_string(),
            source,
        })?;
        let idx = self.my.len();
        self.my.push(StoreEntry {
            name: name.to_string(),
            der,
            has_private_key: key_pkcs8.is_some(),
            key_pkcs8,
            facts,
            key_readable: true,
            services: default_services(),
            friendly_name: name.to_string(),
            enumeration_index: idx,
        });
        Ok(&self.my[idx])
    }

    /// Adds a trusted root (`LocalMachine\Root`), e.g. the mock EOP's CA.
    pub fn add_trusted_root(
        &mut self,
        name: &str,
        der: CertificateDer<'static>,
    ) -> Result<(), CertStoreError> {
        let facts = CertFacts::from_der(&der).map_err(|source| CertStoreError::X509 {
            name: name.to_string(),
            source,
        })?;
        self.roots.push(AuthorityEntry {
            name: name.to_string(),
            der,
            facts,
        });
        Ok(())
    }

    /// Adds an intermediate (`LocalMachine\CA`).
    pub fn add_intermediate(
        &mut self,
        name: &str,
        der: CertificateDer<'static>,
    ) -> Result<(), CertStoreError> {
        let facts = CertFacts::from_der(&der).map_err(|source| CertStoreError::X509 {
            name: name.to_string(),
            source,
        })?;
        self.intermediates.push(AuthorityEntry {
            name: name.to_string(),
            der,
            facts,
        });
        Ok(())
    }

    /// Removes a certificate from `LocalMachine\My` (`Remove-Item Cert:\LocalMachine\My\<thumb>`).
    pub fn remove(&mut self, thumbprint: &str) -> Option<StoreEntry> {
        let pos = self
            .my
            .iter()
            .position(|e| e.facts.thumbprint.eq_ignore_ascii_case(thumbprint))?;
        let e = self.my.remove(pos);
        for (i, e) in self.my.iter_mut().enumerate() {
            e.enumeration_index = i;
        }
        Some(e)
    }

    /// Puts an entry (one [`Self::remove`] gave back, or a clone from another store) into
    /// `LocalMachine\My` at enumeration position `index` (clamped: past the end appends), as an
    /// admin's `Import-PfxCertificate` does.
    pub fn insert(&mut self, entry: StoreEntry, index: usize) {
        let at = index.min(self.my.len());
        self.my.insert(at, entry);
        for (i, e) in self.my.iter_mut().enumerate() {
            e.enumeration_index = i;
        }
    }

    /// A generated authority by name (to issue more certificates, or hand a root to the mock).
    pub fn authority(&self, name: &str) -> Option<&CertAuthority> {
        self.authorities
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a.as_ref())
    }

    /// `LocalMachine\My` in enumeration order (`Get-ChildItem Cert:\LocalMachine\My`).
    pub fn my(&self) -> &[StoreEntry] {
        &self.my
    }

    /// An entry by scenario name.
    pub fn entry(&self, name: &str) -> Option<&StoreEntry> {
        self.my.iter().find(|e| e.name == name)
    }

    /// An entry by thumbprint (case-insensitive).
    pub fn by_thumbprint(&self, thumbprint: &str) -> Option<&StoreEntry> {
        self.my
            .iter()
            .find(|e| e.facts.thumbprint.eq_ignore_ascii_case(thumbprint))
    }

    /// Every certificate of `LocalMachine\My` as listing rows at `now`, in enumeration order
    /// (see [`StoreEntry::listing_row`]). Hand them to
    /// [`hybridlab_artefacts::certs::write_exchange_certificate_list`] (which keeps the keyed ones) and
    /// [`hybridlab_artefacts::certs::write_cert_provider_list`] (all).
    pub fn listing_rows(&self, now: OffsetDateTime) -> Vec<CertListingRow> {
        self.my.iter().map(|e| e.listing_row(self, now)).collect()
    }

    /// What `Get-ExchangeCertificate` lists: only entries with a private key.
    pub fn exchange_certificates(&self) -> impl Iterator<Item = &StoreEntry> {
        self.my
            .iter()
            .filter(|e| e.visible_to_get_exchangecertificate())
    }

    /// The trusted roots (`LocalMachine\Root`).
    pub fn roots(&self) -> &[AuthorityEntry] {
        &self.roots
    }

    /// The intermediates installed for chain building (`LocalMachine\CA`).
    pub fn intermediates(&self) -> &[AuthorityEntry] {
        &self.intermediates
    }

    /// The trusted roots as a rustls root store (what the sender validates the peer against).
    pub fn root_cert_store(&self) -> rustls::RootCertStore {
        let mut rs = rustls::RootCertStore::empty();
        for r in &self.roots {
            // A lab root always parses; a foreign one that does not is simply not trusted.
            let _ = rs.add(r.der.clone());
        }
        rs
    }

    /// The chain the sender presents for `entry`: the leaf, then intermediates from
    /// `LocalMachine\CA` found by issuer DN (roots are not sent, as SChannel does not send them).
    pub fn chain_for(&self, entry: &StoreEntry) -> Vec<CertificateDer<'static>> {
        let mut chain = vec![entry.der.clone()];
        let mut issuer = entry.facts.issuer.clone();
        let mut subject = entry.facts.subject.clone();
        for _ in 0..8 {
            if hybridlab_model::x509::dn_eq(&issuer, &subject) {
                break;
            }
            match self
                .intermediates
                .iter()
                .find(|i| hybridlab_model::x509::dn_eq(&i.facts.subject, &issuer))
            {
                Some(i) if !chain.contains(&i.der) => {
                    chain.push(i.der.clone());
                    subject = i.facts.subject.clone();
                    issuer = i.facts.issuer.clone();
                }
                _ => break,
            }
        }
        chain
    }

    /// .NET `validOnly: true` for the `TlsCertificateName` search: in date at `now` and the chain
    /// builds (with `LocalMachine\CA`) to a root in `LocalMachine\Root`. Self-signed certificates are
    /// valid only if they are themselves trusted roots.
    pub fn is_valid(&self, entry: &StoreEntry, now: OffsetDateTime) -> bool {
        entry.facts.is_time_valid(now) && self.chains_to_trusted_root(entry, now)
    }

    /// Whether the chain builds to a trusted root at `now` (real webpki path building).
    pub fn chains_to_trusted_root(&self, entry: &StoreEntry, now: OffsetDateTime) -> bool {
        let Ok(ee) = webpki::EndEntityCert::try_from(&entry.der) else {
            return false;
        };
        let anchors: Vec<_> = self
            .roots
            .iter()
            .filter_map(|r| webpki::anchor_from_trusted_cert(&r.der).ok())
            .collect();
        if anchors.is_empty() {
            return false;
        }
        let inter: Vec<CertificateDer<'_>> = self
            .intermediates
            .iter()
            .chain(&self.aia_intermediates)
            .map(|i| i.der.clone())
            .collect();
        let secs = now.unix_timestamp().max(0) as u64;
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &inter,
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs)),
            webpki::KeyUsage::client_auth(),
            None,
            None,
        )
        .is_ok()
    }
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let s: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    if s.is_empty() || !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// Ready-made stores for tests and demos.
pub mod fixtures {
    use super::*;

    /// Subject of the lab's "public" certificate.
    pub const CONTOSO_SUBJECT: &str =
        "CN=mail.contoso.com, O=Contoso Ltd, L=Redmond, S=Washington, C=US";
    /// Issuer (intermediate) DN of the lab's "public" CA.
    pub const ISSUING_CA: &str = "CN=Lab Global G2 TLS RSA SHA256 2020 CA1, O=Lab CA Inc, C=US";
    /// The DN of the lab's "public" root.
    pub const ROOT_CA: &str = "CN=Lab Global Root G2, O=Lab CA Inc, C=US";

    /// Root + intermediate authorities named `root` and `issuing`.
    pub fn authorities() -> Vec<AuthorityDescription> {
        vec![
            AuthorityDescription {
                name: "root".into(),
                subject: ROOT_CA.parse().unwrap_or_default(),
                issuer: None,
                installed: true,
                aia_fetchable: false,
                public: true,
                not_before: None,
                not_after: None,
                key: KeyKind::AUTHORITY_DEFAULT,
            },
            AuthorityDescription {
                name: "issuing".into(),
                subject: ISSUING_CA.parse().unwrap_or_default(),
                issuer: Some("root".into()),
                installed: true,
                aia_fetchable: false,
                public: true,
                not_before: None,
                not_after: None,
                key: KeyKind::AUTHORITY_DEFAULT,
            },
        ]
    }

    /// A public-style certificate for `mail.contoso.com` (+ autodiscover) issued by `issuing`.
    pub fn contoso(name: &str) -> CertDescription {
        let mut c = CertDescription {
            name: name.to_string(),
            subject: CONTOSO_SUBJECT.parse().unwrap_or_default(),
            dns_names: Some(vec![
                "mail.contoso.com".into(),
                "autodiscover.contoso.com".into(),
            ]),
            issuer: Some("issuing".into()),
            not_before: None,
            not_after: None,
            key: KeyKind::default(),
            ekus: default_ekus(),
            serial: None,
            has_private_key: true,
            key_readable: true,
            services: vec![ExchangeService::Iis, ExchangeService::Smtp],
            order: None,
            friendly_name: None,
        };
        c.friendly_name = Some(format!("{name} (mail.contoso.com)"));
        c
    }

    /// Exchange's self-signed default certificate `CN=<server>`.
    pub fn exchange_self_signed(server: &str, fqdn: &str) -> CertDescription {
        CertDescription {
            name: "self-signed".into(),
            subject: DnSpec::cn(server),
            dns_names: Some(vec![server.to_string(), fqdn.to_string()]),
            issuer: None,
            not_before: Some(TimeSpec::Days(-365)),
            not_after: Some(TimeSpec::Days(365 * 4)),
            key: KeyKind::default(),
            ekus: default_ekus(),
            serial: None,
            has_private_key: true,
            key_readable: true,
            services: vec![ExchangeService::Iis, ExchangeService::Smtp],
            order: None,
            friendly_name: Some("Microsoft Exchange".into()),
        }
    }

    /// The classic case: the key-less twin (`twin-nokey`) enumerated first, the keyed certificate
    /// (`keyed`) second, both with the same subject and issuer.
    pub fn classic_twins(keyless_first: bool) -> StoreDescription {
        let mut nokey = contoso("twin-nokey");
        nokey.has_private_key = false;
        nokey.services = Vec::new();
        let keyed = contoso("keyed");
        StoreDescription {
            authorities: authorities(),
            certificates: if keyless_first {
                vec![nokey, keyed]
            } else {
                vec![keyed, nokey]
            },
        }
    }
}

#[cfg(test)]
mod tests;
