//! Certificate listings: `Get-ExchangeCertificate | Format-List` and
//! `Get-ChildItem Cert:\LocalMachine\My | Format-List *`, and both through `ConvertTo-Json`.
//!
//! The two cmdlets see different things, which is the heart of the classic case:
//! `Get-ExchangeCertificate` lists only certificates that have a private key, while the
//! certificate provider lists every certificate in the store with `HasPrivateKey`. A
//! [`CertListingRow`] holds the fields either shows; the writers take rows (the on-prem model fills
//! them, e.g. with [`CertListingRow::from_facts`]) and the reader returns rows with the
//! [`CertListingSource`] they came from and the line of every property.
//!
//! `Get-ExchangeCertificate | fl` property order (Exchange 2013-2019, from real output):
//! AccessRules, CertificateDomains, HasPrivateKey, IsSelfSigned, Issuer, NotAfter, NotBefore,
//! PublicKeySize, RootCAType, SerialNumber, Services, Status, Subject, Thumbprint.
//! `Get-ChildItem Cert:\... | fl *` order (Windows PowerShell 5.1, from real output): PSPath,
//! PSParentPath, PSChildName, PSDrive, PSProvider, PSIsContainer, EnhancedKeyUsageList,
//! DnsNameList, SendAsTrustedIssuer, EnrollmentPolicyEndPoint, EnrollmentServerEndPoint, PolicyId,
//! Archived, Extensions, FriendlyName, IssuerName, NotAfter, NotBefore, HasPrivateKey, PrivateKey,
//! PublicKey, RawData, SerialNumber, SubjectName, SignatureAlgorithm, Thumbprint, Version, Handle,
//! Issuer, Subject.

use hybridlab_model::x509::CertFacts;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::format_list::{self, FlOptions, FlRecord};
use super::ps::{Parsed, PsObject, PsValue};
use super::ps_json::{self, JsonStyle};
use super::text::LineEnding;

hybridlab_model::token_enum! {
    /// An Exchange service a certificate is enabled for (`AllowedServices` flags).
    ExchangeService {
        /// IMAP4 clients' TLS.
        Imap = 1 => "IMAP",
        /// POP3 clients' TLS.
        Pop = 2 => "POP",
        /// Unified Messaging (voice mail) TLS.
        Um = 4 => "UM",
        /// IIS (OWA, EWS...).
        Iis = 8 => "IIS",
        /// SMTP (STARTTLS; also grants NETWORK SERVICE read access to the key).
        Smtp = 16 => "SMTP",
        /// Federation trust with other organisations (free/busy sharing).
        Federation = 32 => "Federation",
        /// The Unified Messaging call router's TLS.
        UmCallRouter = 64 => "UMCallRouter",
    }
}

hybridlab_model::token_enum! {
    /// `Get-ExchangeCertificate` Status: Exchange's verdict on the certificate.
    CertificateStatus {
        /// Exchange could not tell.
        Unknown = 0 => "Unknown",
        /// Time-valid, chains to a trusted root, not revoked.
        Valid = 1 => "Valid",
        /// The issuer revoked it.
        Revoked = 2 => "Revoked",
        /// Expired or not yet valid.
        DateInvalid = 3 => "DateInvalid",
        /// Chain to an untrusted root.
        Untrusted = 4 => "Untrusted",
        /// Otherwise unusable (bad signature, malformed).
        Invalid = 5 => "Invalid",
        /// Revocation could not be checked.
        RevocationCheckFailure = 6 => "RevocationCheckFailure",
        /// A pending request, no certificate yet.
        PendingRequest = 7 => "PendingRequest",
    }
}

hybridlab_model::token_enum! {
    /// `Get-ExchangeCertificate` RootCAType. The numeric values are not documented; only the names
    /// are read reliably.
    RootCaType {
        /// Self-signed certificates Exchange did not create, and the Auth certificate.
        None = 0 => "None",
        /// A third-party (public) CA.
        ThirdParty = 1 => "ThirdParty",
        /// An enterprise CA.
        Enterprise = 2 => "Enterprise",
        /// Exchange self-signed certificates.
        Registry = 3 => "Registry",
        /// Pushed by group policy.
        GroupPolicy = 4 => "GroupPolicy",
        /// Pending requests.
        Unknown = 5 => "Unknown",
    }
}

/// Parses `IMAP, POP, IIS, SMTP`, `None`, or the flags number (`27`).
pub fn parse_services(s: &str) -> Vec<ExchangeService> {
    let t = s.trim();
    if let Ok(n) = t.parse::<u32>() {
        return ExchangeService::ALL
            .iter()
            .copied()
            .filter(|f| n & f.value() != 0)
            .collect();
    }
    t.split(',').filter_map(|p| p.trim().parse().ok()).collect()
}

/// Renders services as Exchange does (`IMAP, POP, IIS, SMTP`, or `None`).
pub fn services_text(services: &[ExchangeService]) -> String {
    let mut v: Vec<ExchangeService> = services.to_vec();
    v.sort_by_key(|s| s.value());
    v.dedup();
    if v.is_empty() {
        "None".to_string()
    } else {
        v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// Which cmdlet a listing came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertListingSource {
    /// `Get-ExchangeCertificate`: only certificates with a private key.
    ExchangeCertificate,
    /// `Get-ChildItem Cert:\LocalMachine\My`: every certificate, with `HasPrivateKey`.
    CertProvider,
}

/// One certificate as a listing shows it. `None` means the listing did not show the property
/// (or showed it empty).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CertListingRow {
    /// `Thumbprint`: the SHA-1 of the certificate, 40 uppercase hex digits; what the transport's
    /// certificate cache and the protocol log name it by.
    pub thumbprint: String,
    /// Subject DN (.NET rendering).
    pub subject: String,
    /// Issuer DN (.NET rendering).
    pub issuer: String,
    /// NotBefore (listings print the server's local time; read as UTC).
    #[serde(with = "time::serde::rfc3339::option")]
    pub not_before: Option<OffsetDateTime>,
    /// `NotAfter`: the end of the validity (local time of the exporting server, read as UTC); the
    /// transport does not load the certificate after it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub not_after: Option<OffsetDateTime>,
    /// HasPrivateKey (always true in `Get-ExchangeCertificate`).
    pub has_private_key: Option<bool>,
    /// Services the certificate is enabled for (`Get-ExchangeCertificate` only).
    pub services: Option<Vec<ExchangeService>>,
    /// CertificateDomains (Exchange) or DnsNameList (provider): CN and SAN DNS names.
    pub certificate_domains: Vec<String>,
    /// Whether the listing cut the domain list (`{a, b, c, d...}`).
    pub certificate_domains_truncated: bool,
    /// `IsSelfSigned`: subject and issuer are the same (Exchange Online does not accept such a
    /// certificate for attribution).
    pub is_self_signed: Option<bool>,
    /// `Status`: Exchange's verdict on the certificate (`Valid`, `DateInvalid`, `Untrusted`...).
    pub status: Option<CertificateStatus>,
    /// `SerialNumber`: the issuer's serial number, hex; what `certutil -repairstore` re-attaches a
    /// key by.
    pub serial_number: Option<String>,
    /// `PublicKeySize`: the key length in bits.
    pub public_key_size: Option<u32>,
    /// `RootCAType`: where the chain's root comes from (`ThirdParty`, `Registry` for Exchange's
    /// self-signed certificates...).
    pub root_ca_type: Option<RootCaType>,
    /// `FriendlyName`: the admin-given label (not used to select the certificate).
    pub friendly_name: Option<String>,
    /// `PrivateKeyExportable`: whether the key can be exported with the certificate (needed to copy
    /// it to another server as a PFX).
    pub private_key_exportable: Option<bool>,
    /// EnhancedKeyUsageList entries (`Server Authentication (1.3.6.1.5.5.7.3.1)`).
    pub enhanced_key_usage: Vec<String>,
    /// The store (`LocalMachine\My`), from PSParentPath.
    pub store: Option<String>,
}

impl CertListingRow {
    /// A row from certificate facts plus the Windows-only key flag (services, status, root type and
    /// friendly name are left for the caller).
    pub fn from_facts(facts: &CertFacts, has_private_key: bool) -> Self {
        let mut domains: Vec<String> = Vec::new();
        for n in facts.names() {
            domains.push(n.to_string());
        }
        Self {
            thumbprint: facts.thumbprint.clone(),
            subject: facts.subject.clone(),
            issuer: facts.issuer.clone(),
            not_before: Some(facts.not_before),
            not_after: Some(facts.not_after),
            has_private_key: Some(has_private_key),
            services: None,
            certificate_domains: domains,
            certificate_domains_truncated: false,
            is_self_signed: Some(facts.is_self_signed),
            status: None,
            serial_number: Some(facts.serial.clone()),
            public_key_size: Some(facts.public_key_bits),
            root_ca_type: None,
            friendly_name: None,
            private_key_exportable: None,
            enhanced_key_usage: facts
                .extended_key_usages
                .iter()
                .filter_map(|e| match e.as_str() {
                    "ServerAuth" => Some("Server Authentication (1.3.6.1.5.5.7.3.1)".to_string()),
                    "ClientAuth" => Some("Client Authentication (1.3.6.1.5.5.7.3.2)".to_string()),
                    _ => None,
                })
                .collect(),
            store: Some("LocalMachine\\My".to_string()),
        }
    }

    /// `<I>issuer<S>subject`, what a connector's TlsCertificateName holds for this certificate.
    pub fn x509_identifier(&self) -> String {
        hybridlab_model::identifier::X509Identifier {
            issuer: self.issuer.clone(),
            subject: self.subject.clone(),
        }
        .to_string()
    }

    /// Whether the row lists `service`.
    pub fn has_service(&self, service: ExchangeService) -> bool {
        self.services.as_ref().is_some_and(|s| s.contains(&service))
    }
}

/// The PowerShell provider path prefix.
const PROVIDER: &str = "Microsoft.PowerShell.Security\\Certificate";

fn opt_text(v: &Option<String>) -> PsValue {
    PsValue::opt_text(v.as_deref())
}

fn access_rules(row: &CertListingRow) -> PsValue {
    if row.has_private_key == Some(true) {
        PsValue::list(["System.Security.AccessControl.CryptoKeyAccessRule"; 3])
    } else {
        PsValue::Null
    }
}

/// `Get-ExchangeCertificate | Format-List` records: only rows with a private key, as the cmdlet.
pub fn exchange_certificate_records(rows: &[CertListingRow]) -> Vec<FlRecord> {
    rows.iter()
        .filter(|r| r.has_private_key == Some(true))
        .map(|r| {
            vec![
                ("AccessRules".into(), access_rules(r)),
                (
                    "CertificateDomains".into(),
                    PsValue::list(&r.certificate_domains),
                ),
                ("HasPrivateKey".into(), PsValue::opt_bool(r.has_private_key)),
                ("IsSelfSigned".into(), PsValue::opt_bool(r.is_self_signed)),
                ("Issuer".into(), PsValue::text(&r.issuer)),
                ("NotAfter".into(), PsValue::opt_date(r.not_after)),
                ("NotBefore".into(), PsValue::opt_date(r.not_before)),
                ("PublicKeySize".into(), PsValue::opt_num(r.public_key_size)),
                (
                    "RootCAType".into(),
                    PsValue::opt_text(r.root_ca_type.map(|t| t.as_str())),
                ),
                ("SerialNumber".into(), opt_text(&r.serial_number)),
                (
                    "Services".into(),
                    PsValue::text(services_text(r.services.as_deref().unwrap_or(&[]))),
                ),
                (
                    "Status".into(),
                    PsValue::opt_text(r.status.map(|s| s.as_str())),
                ),
                ("Subject".into(), PsValue::text(&r.subject)),
                ("Thumbprint".into(), PsValue::text(&r.thumbprint)),
            ]
        })
        .collect()
}

/// A deterministic stand-in for values that are runtime handles or raw bytes.
fn pseudo(thumb: &str, salt: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt;
    for b in thumb.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// `Get-ChildItem Cert:\<store> | Format-List *` records: every row.
pub fn cert_provider_records(rows: &[CertListingRow]) -> Vec<FlRecord> {
    rows.iter()
        .map(|r| {
            let store = r.store.clone().unwrap_or_else(|| "LocalMachine\\My".into());
            let parent = format!("{PROVIDER}::{store}");
            let h = pseudo(&r.thumbprint, 1);
            vec![
                (
                    "PSPath".into(),
                    PsValue::text(format!("{parent}\\{}", r.thumbprint)),
                ),
                ("PSParentPath".into(), PsValue::text(&parent)),
                ("PSChildName".into(), PsValue::text(&r.thumbprint)),
                ("PSDrive".into(), PsValue::text("Cert")),
                ("PSProvider".into(), PsValue::text(PROVIDER)),
                ("PSIsContainer".into(), PsValue::Bool(false)),
                (
                    "EnhancedKeyUsageList".into(),
                    PsValue::list(&r.enhanced_key_usage),
                ),
                ("DnsNameList".into(), PsValue::list(&r.certificate_domains)),
                ("SendAsTrustedIssuer".into(), PsValue::Bool(false)),
                (
                    "EnrollmentPolicyEndPoint".into(),
                    PsValue::text(
                        "Microsoft.CertificateServices.Commands.EnrollmentEndPointProperty",
                    ),
                ),
                (
                    "EnrollmentServerEndPoint".into(),
                    PsValue::text(
                        "Microsoft.CertificateServices.Commands.EnrollmentEndPointProperty",
                    ),
                ),
                ("PolicyId".into(), PsValue::Null),
                ("Archived".into(), PsValue::Bool(false)),
                (
                    "Extensions".into(),
                    PsValue::list(["System.Security.Cryptography.Oid"; 6]),
                ),
                ("FriendlyName".into(), opt_text(&r.friendly_name)),
                (
                    "IssuerName".into(),
                    PsValue::text(
                        "System.Security.Cryptography.X509Certificates.X500DistinguishedName",
                    ),
                ),
                ("NotAfter".into(), PsValue::opt_date(r.not_after)),
                ("NotBefore".into(), PsValue::opt_date(r.not_before)),
                ("HasPrivateKey".into(), PsValue::opt_bool(r.has_private_key)),
                (
                    "PrivateKey".into(),
                    // .NET's PrivateKey property covers RSA (and DSA) keys only: an ECC
                    // certificate (PublicKeySize 256/384/521) shows none.
                    if r.has_private_key == Some(true)
                        && !matches!(r.public_key_size, Some(256 | 384 | 521))
                    {
                        PsValue::text("System.Security.Cryptography.RSACryptoServiceProvider")
                    } else {
                        PsValue::Null
                    },
                ),
                (
                    "PublicKey".into(),
                    PsValue::text("System.Security.Cryptography.X509Certificates.PublicKey"),
                ),
                (
                    "RawData".into(),
                    PsValue::List {
                        items: vec![
                            "48".into(),
                            "130".into(),
                            ((h % 6) + 3).to_string(),
                            (h % 256).to_string(),
                        ],
                        truncated: true,
                    },
                ),
                ("SerialNumber".into(), opt_text(&r.serial_number)),
                (
                    "SubjectName".into(),
                    PsValue::text(
                        "System.Security.Cryptography.X509Certificates.X500DistinguishedName",
                    ),
                ),
                (
                    "SignatureAlgorithm".into(),
                    PsValue::text("System.Security.Cryptography.Oid"),
                ),
                ("Thumbprint".into(), PsValue::text(&r.thumbprint)),
                ("Version".into(), PsValue::num(3)),
                (
                    "Handle".into(),
                    PsValue::num(2_215_000_000_000 + h % 1_000_000_000),
                ),
                ("Issuer".into(), PsValue::text(&r.issuer)),
                ("Subject".into(), PsValue::text(&r.subject)),
            ]
        })
        .collect()
}

/// `Get-ExchangeCertificate | Format-List` text.
pub fn write_exchange_certificate_list(rows: &[CertListingRow], opts: &FlOptions) -> String {
    format_list::render(&exchange_certificate_records(rows), opts)
}

/// `Get-ChildItem Cert:\LocalMachine\My | Format-List *` text.
pub fn write_cert_provider_list(rows: &[CertListingRow], opts: &FlOptions) -> String {
    format_list::render(&cert_provider_records(rows), opts)
}

/// `Get-ExchangeCertificate | ConvertTo-Json`: the Format-List properties plus FriendlyName,
/// PrivateKeyExportable and Identity.
pub fn write_exchange_certificate_json(
    rows: &[CertListingRow],
    style: JsonStyle,
    server: &str,
) -> String {
    let recs: Vec<FlRecord> = exchange_certificate_records(rows)
        .into_iter()
        .zip(rows.iter().filter(|r| r.has_private_key == Some(true)))
        .map(|(mut rec, r)| {
            rec.push(("FriendlyName".into(), opt_text(&r.friendly_name)));
            rec.push((
                "PrivateKeyExportable".into(),
                PsValue::opt_bool(r.private_key_exportable),
            ));
            rec.push((
                "Identity".into(),
                PsValue::text(format!("{server}\\{}", r.thumbprint)),
            ));
            rec
        })
        .collect();
    ps_json::render(&recs, style, LineEnding::CrLf)
}

/// `Get-ChildItem Cert:\LocalMachine\My | ConvertTo-Json`: the identifying properties (the
/// real output also holds nested objects for Extensions, PublicKey...; those are left out).
pub fn write_cert_provider_json(rows: &[CertListingRow], style: JsonStyle) -> String {
    let keep = [
        "PSPath",
        "PSParentPath",
        "PSChildName",
        "PSIsContainer",
        "EnhancedKeyUsageList",
        "DnsNameList",
        "Archived",
        "FriendlyName",
        "NotAfter",
        "NotBefore",
        "HasPrivateKey",
        "SerialNumber",
        "Thumbprint",
        "Version",
        "Issuer",
        "Subject",
    ];
    let recs: Vec<FlRecord> = cert_provider_records(rows)
        .into_iter()
        .map(|rec| {
            rec.into_iter()
                .filter(|(n, _)| keep.contains(&n.as_str()))
                .collect()
        })
        .collect();
    ps_json::render(&recs, style, LineEnding::CrLf)
}

const EXCHANGE_ONLY: [&str; 5] = [
    "CertificateDomains",
    "Services",
    "RootCAType",
    "AccessRules",
    "ServicesStringForm",
];
const PROVIDER_ONLY: [&str; 5] = [
    "PSPath",
    "PSParentPath",
    "DnsNameList",
    "EnhancedKeyUsageList",
    "SendAsTrustedIssuer",
];

/// Which certificate cmdlet printed this object, if it is a certificate at all.
pub fn classify(obj: &PsObject) -> Option<CertListingSource> {
    if !obj.has("Thumbprint") {
        return None;
    }
    if EXCHANGE_ONLY.iter().any(|k| obj.has(k)) {
        return Some(CertListingSource::ExchangeCertificate);
    }
    if PROVIDER_ONLY.iter().any(|k| obj.has(k))
        || obj.has("HasPrivateKey")
        || (obj.has("Subject") && (obj.has("NotAfter") || obj.has("Issuer")))
    {
        return Some(CertListingSource::CertProvider);
    }
    None
}

/// Builds a row from a listed object (either cmdlet, text or JSON). `None` without a Thumbprint.
pub fn row_from_object(obj: &PsObject) -> Option<Parsed<CertListingRow>> {
    let thumbprint: String = obj
        .text("Thumbprint")?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    let (domains, truncated) = if obj.has("CertificateDomains") {
        (
            obj.list("CertificateDomains"),
            obj.list_truncated("CertificateDomains"),
        )
    } else {
        (obj.list("DnsNameList"), obj.list_truncated("DnsNameList"))
    };
    let services = obj.text("Services").map(|s| parse_services(&s));
    let store = obj
        .text("PSParentPath")
        .map(|p| p.split_once("::").map_or(p.clone(), |(_, s)| s.to_string()));
    let row = CertListingRow {
        thumbprint,
        subject: obj.text_or_empty("Subject"),
        issuer: obj.text_or_empty("Issuer"),
        not_before: obj.date("NotBefore"),
        not_after: obj.date("NotAfter"),
        has_private_key: obj.bool("HasPrivateKey"),
        services,
        certificate_domains: domains,
        certificate_domains_truncated: truncated,
        is_self_signed: obj.bool("IsSelfSigned"),
        status: obj.text("Status").and_then(|s| s.parse().ok()),
        serial_number: obj.text("SerialNumber"),
        public_key_size: obj.u64("PublicKeySize").and_then(|n| u32::try_from(n).ok()),
        root_ca_type: obj.text("RootCAType").and_then(|s| s.parse().ok()),
        friendly_name: obj.text("FriendlyName"),
        private_key_exportable: obj.bool("PrivateKeyExportable"),
        enhanced_key_usage: obj.list("EnhancedKeyUsageList"),
        store,
    };
    Some(Parsed::of(row, obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_deserialize_in_any_case_or_as_numbers() {
        #[derive(Debug, Deserialize)]
        struct S {
            services: Vec<ExchangeService>,
        }
        let s: S = toml::from_str(r#"services = ["smtp", "IIS", "UMCallRouter"]"#).unwrap();
        assert_eq!(
            s.services,
            vec![
                ExchangeService::Smtp,
                ExchangeService::Iis,
                ExchangeService::UmCallRouter
            ]
        );
        let e = toml::from_str::<S>(r#"services = ["SMTPX"]"#).unwrap_err();
        assert!(
            e.to_string()
                .contains("expected one of: IMAP, POP, UM, IIS, SMTP"),
            "{e}"
        );
        assert_eq!(
            serde_json::from_str::<CertificateStatus>("\"DateInvalid\"").unwrap(),
            CertificateStatus::DateInvalid
        );
        assert_eq!(
            serde_json::to_string(&ExchangeService::UmCallRouter).unwrap(),
            "\"UMCallRouter\""
        );
    }

    #[test]
    fn services_and_status_names_and_numbers() {
        assert_eq!(
            parse_services("IMAP, POP, IIS, SMTP"),
            [
                ExchangeService::Imap,
                ExchangeService::Pop,
                ExchangeService::Iis,
                ExchangeService::Smtp
            ]
        );
        assert_eq!(parse_services("27"), parse_services("IMAP, POP, IIS, SMTP"));
        assert!(parse_services("None").is_empty());
        assert_eq!(
            services_text(&[ExchangeService::Smtp, ExchangeService::Iis]),
            "IIS, SMTP"
        );
        assert_eq!("1".parse(), Ok(CertificateStatus::Valid));
        assert_eq!("DateInvalid".parse(), Ok(CertificateStatus::DateInvalid));
        assert_eq!("ThirdParty".parse(), Ok(RootCaType::ThirdParty));
    }
}
