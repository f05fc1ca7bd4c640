//! A lab PKI built with rcgen at run time: root and intermediate authorities, server and client
//! certificates from a description. Nothing here is ever checked in, so nothing expires in CI.
//!
//! Names are written the .NET way (`CN=mail.contoso.com, O=Contoso Ltd, S=Washington, C=US`, most
//! specific first) and parsed by [`DnSpec`]; the certificate encodes them in the usual ASN.1 order
//! (country first), so [`hybridlab_model::x509::dotnet_dn`] renders them back to the same string.
//!
//! Keys: leaves get RSA-2048 unless told otherwise, as EOP's certificate and most public-CA
//! certificates on Exchange servers have (ECDHE-RSA suites, `PublicKeySize : 2048` in listings).
//! ring cannot generate RSA keys, so the `rsa` crate generates one key per process, cached and
//! shared by every RSA leaf (key generation costs tens of milliseconds even optimised); ring signs
//! with it. Authorities default to ECDSA P-256 (fast, and every authority gets a key of its own, so
//! two authorities with the same name never validate each other's certificates); an RSA authority
//! gets a fresh RSA key. ECDSA P-256/P-384 and Ed25519 stay selectable.

use std::fmt;
use std::net::IpAddr;
use std::sync::OnceLock;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use hybridlab_model::dn::{DnAttr, DnError, DnSpec};
pub use hybridlab_model::x509::pem_encode;
use hybridlab_model::x509::{CertFacts, X509Error};

/// Errors building lab certificates.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A distinguished name string could not be parsed.
    #[error("invalid distinguished name {dn:?}: {reason}")]
    Dn {
        /// The input.
        dn: String,
        /// What is wrong.
        reason: String,
    },
    /// A distinguished name that does not parse.
    #[error(transparent)]
    Name(#[from] DnError),
    /// The RSA key could not be generated or encoded.
    #[error("RSA key generation failed: {0}")]
    Rsa(String),
    /// rcgen refused the parameters or could not sign.
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// The generated certificate could not be read back.
    #[error(transparent)]
    X509(#[from] X509Error),
    /// PEM input could not be read.
    #[error("invalid PEM: {0}")]
    Pem(String),
}

/// The rcgen name for a .NET-order DN (ASN.1 order is the reverse).
fn dn_to_rcgen(spec: &DnSpec) -> Result<DistinguishedName, PkiError> {
    let mut dn = DistinguishedName::new();
    let mut seen: Vec<String> = Vec::new();
    // .NET shows the reverse of the ASN.1 order: encode last-shown first.
    for attr in spec.0.iter().rev() {
        // rcgen keeps one value per attribute type: a second `DC=` or `OU=` would silently
        // replace the first, so refuse it instead of generating a different name.
        let key = match attr.key.to_ascii_uppercase().as_str() {
            "ST" => "S".to_string(),
            k => k.to_string(),
        };
        if seen.contains(&key) {
            return Err(PkiError::Dn {
                dn: spec.to_string(),
                reason: format!(
                    "{}= appears twice; the lab's certificate generator encodes one value per attribute type",
                    attr.key
                ),
            });
        }
        seen.push(key);
        let ty = match attr.key.to_ascii_uppercase().as_str() {
            "CN" => DnType::CommonName,
            "O" => DnType::OrganizationName,
            "OU" => DnType::OrganizationalUnitName,
            "L" => DnType::LocalityName,
            "S" | "ST" => DnType::StateOrProvinceName,
            "C" => DnType::CountryName,
            "E" => DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
            "DC" => DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 25]),
            "STREET" => DnType::CustomDnType(vec![2, 5, 4, 9]),
            "SERIALNUMBER" => DnType::CustomDnType(vec![2, 5, 4, 5]),
            other => {
                let oid = other.strip_prefix("OID.").ok_or_else(|| PkiError::Dn {
                    dn: spec.to_string(),
                    reason: format!("unknown attribute {other:?}"),
                })?;
                let parts: Result<Vec<u64>, _> = oid.split('.').map(str::parse).collect();
                DnType::CustomDnType(parts.map_err(|_| PkiError::Dn {
                    dn: spec.to_string(),
                    reason: format!("bad OID {oid:?}"),
                })?)
            }
        };
        dn.push(ty, attr.value.as_str());
    }
    Ok(dn)
}

/// Key algorithm of a generated certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyKind {
    /// RSA with a 2048-bit modulus, signing with SHA-256 (the default: EOP's and public CAs'
    /// usual key). Leaves share one key generated per process (see the module docs).
    #[default]
    Rsa2048,
    /// ECDSA on P-256 with SHA-256 (the authorities' default).
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384.
    EcdsaP384,
    /// Ed25519.
    Ed25519,
}

impl KeyKind {
    /// The key algorithm authorities get unless told otherwise.
    pub const AUTHORITY_DEFAULT: Self = Self::EcdsaP256;

    /// A key for a leaf: RSA leaves share the process's cached key.
    fn generate(self) -> Result<KeyPair, PkiError> {
        let alg = match self {
            Self::Rsa2048 => return rsa_key_pair(cached_rsa_pkcs8()?),
            Self::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Self::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            Self::Ed25519 => &rcgen::PKCS_ED25519,
        };
        Ok(KeyPair::generate_for(alg)?)
    }

    /// A key of its own, for an authority.
    fn generate_fresh(self) -> Result<KeyPair, PkiError> {
        match self {
            Self::Rsa2048 => rsa_key_pair(&new_rsa_pkcs8()?),
            other => other.generate(),
        }
    }
}

/// A new RSA-2048 key (exponent 65537) as PKCS#8 DER.
fn new_rsa_pkcs8() -> Result<Vec<u8>, PkiError> {
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048)
        .map_err(|e| PkiError::Rsa(e.to_string()))?;
    let der = key
        .to_pkcs8_der()
        .map_err(|e| PkiError::Rsa(e.to_string()))?;
    Ok(der.as_bytes().to_vec())
}

/// The process's RSA-2048 leaf key, generated on first use.
fn cached_rsa_pkcs8() -> Result<&'static [u8], PkiError> {
    static KEY: OnceLock<Vec<u8>> = OnceLock::new();
    if let Some(k) = KEY.get() {
        return Ok(k);
    }
    let fresh = new_rsa_pkcs8()?;
    Ok(KEY.get_or_init(|| fresh))
}

fn rsa_key_pair(pkcs8: &[u8]) -> Result<KeyPair, PkiError> {
    Ok(KeyPair::from_pkcs8_der_and_sign_algo(
        &PrivatePkcs8KeyDer::from(pkcs8),
        &rcgen::PKCS_RSA_SHA256,
    )?)
}

/// Extended key usage a certificate carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Eku {
    /// id-kp-serverAuth.
    ServerAuth,
    /// id-kp-clientAuth.
    ClientAuth,
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSpec {
    /// Subject DN.
    pub subject: DnSpec,
    /// DNS names for the subjectAltName extension.
    pub dns_names: Vec<String>,
    /// IP addresses for the subjectAltName extension.
    pub ip_addresses: Vec<IpAddr>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Key algorithm.
    pub key: KeyKind,
    /// Extended key usages; empty leaves the extension out (any use).
    pub ekus: Vec<Eku>,
    /// Serial number bytes; `None` lets rcgen choose.
    pub serial: Option<Vec<u8>>,
}

impl CertSpec {
    /// A leaf for `cn` (also the first DNS SAN), valid from `now - 30 days` to `now + 365 days`,
    /// usable for server and client authentication (as public CA certificates are).
    pub fn leaf(cn: &str, now: OffsetDateTime) -> Self {
        Self {
            subject: DnSpec::cn(cn),
            dns_names: vec![cn.to_string()],
            ip_addresses: Vec::new(),
            not_before: now - time::Duration::days(30),
            not_after: now + time::Duration::days(365),
            key: KeyKind::default(),
            ekus: vec![Eku::ServerAuth, Eku::ClientAuth],
            serial: None,
        }
    }

    /// An authority's description, valid ten years around `now`.
    pub fn authority(subject: DnSpec, now: OffsetDateTime) -> Self {
        Self {
            subject,
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            not_before: now - time::Duration::days(365 * 5),
            not_after: now + time::Duration::days(365 * 5),
            key: KeyKind::AUTHORITY_DEFAULT,
            ekus: Vec::new(),
            serial: None,
        }
    }

    fn params(&self, ca: Option<u8>) -> Result<CertificateParams, PkiError> {
        let mut p = CertificateParams::default();
        p.distinguished_name = dn_to_rcgen(&self.subject)?;
        p.not_before = self.not_before;
        p.not_after = self.not_after;
        for d in &self.dns_names {
            p.subject_alt_names.push(SanType::DnsName(
                d.clone().try_into().map_err(PkiError::Rcgen)?,
            ));
        }
        for ip in &self.ip_addresses {
            p.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        p.serial_number = self.serial.as_deref().map(SerialNumber::from_slice);
        match ca {
            Some(depth) => {
                p.is_ca = IsCa::Ca(if depth == 0 {
                    BasicConstraints::Unconstrained
                } else {
                    BasicConstraints::Constrained(depth)
                });
                p.key_usages = vec![
                    KeyUsagePurpose::KeyCertSign,
                    KeyUsagePurpose::CrlSign,
                    KeyUsagePurpose::DigitalSignature,
                ];
            }
            None => {
                p.is_ca = IsCa::ExplicitNoCa;
                p.key_usages = vec![
                    KeyUsagePurpose::DigitalSignature,
                    KeyUsagePurpose::KeyEncipherment,
                ];
                p.use_authority_key_identifier_extension = true;
            }
        }
        for e in &self.ekus {
            p.extended_key_usages.push(match e {
                Eku::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
                Eku::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
            });
        }
        Ok(p)
    }
}

/// A generated certificate with its private key.
#[derive(Clone)]
pub struct IssuedCert {
    /// The certificate.
    pub der: CertificateDer<'static>,
    /// The private key, PKCS#8 DER.
    pub key_pkcs8: Vec<u8>,
    /// The certificate read back.
    pub facts: CertFacts,
}

impl fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCert")
            .field("subject", &self.facts.subject)
            .field("issuer", &self.facts.issuer)
            .field("thumbprint", &self.facts.thumbprint)
            .finish_non_exhaustive()
    }
}

impl IssuedCert {
    fn from_parts(cert: rcgen::Certificate, key: &KeyPair) -> Result<Self, PkiError> {
        let der = cert.der().clone();
        let facts = CertFacts::from_der(&der)?;
        Ok(Self {
            der,
            key_pkcs8: key.serialize_der(),
            facts,
        })
    }

    /// The private key for rustls.
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()))
    }

    /// The certificate as PEM.
    pub fn cert_pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.der)
    }

    /// The private key as PKCS#8 PEM.
    pub fn key_pem(&self) -> String {
        pem_encode("PRIVATE KEY", &self.key_pkcs8)
    }

    /// A self-signed certificate (Exchange's default `CN=<server>` certificate, a rogue client...).
    pub fn self_signed(spec: &CertSpec) -> Result<Self, PkiError> {
        let key = spec.key.generate()?;
        let cert = spec.params(None)?.self_signed(&key)?;
        Self::from_parts(cert, &key)
    }
}

/// A certificate authority that can issue certificates.
pub struct CertAuthority {
    /// The authority's own certificate.
    pub cert: IssuedCert,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for CertAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertAuthority")
            .field("cert", &self.cert)
            .finish_non_exhaustive()
    }
}

impl CertAuthority {
    /// A self-signed root.
    pub fn root(spec: &CertSpec) -> Result<Self, PkiError> {
        let key = spec.key.generate_fresh()?;
        let params = spec.params(Some(0))?;
        let cert = params.self_signed(&key)?;
        let issued = IssuedCert::from_parts(cert, &key)?;
        Ok(Self {
            cert: issued,
            issuer: Issuer::new(params, key),
        })
    }

    /// An intermediate signed by `self`.
    pub fn intermediate(&self, spec: &CertSpec) -> Result<Self, PkiError> {
        let key = spec.key.generate_fresh()?;
        let params = spec.params(Some(0))?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let issued = IssuedCert::from_parts(cert, &key)?;
        Ok(Self {
            cert: issued,
            issuer: Issuer::new(params, key),
        })
    }

    /// An end-entity certificate signed by `self`.
    pub fn issue(&self, spec: &CertSpec) -> Result<IssuedCert, PkiError> {
        let key = spec.key.generate()?;
        let cert = spec.params(None)?.signed_by(&key, &self.issuer)?;
        IssuedCert::from_parts(cert, &key)
    }

    /// Loads an authority from a PEM certificate and PKCS#8 PEM key (`mock-eop serve` with files).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(key_pem)?;
        let der = pem_decode_first("CERTIFICATE", cert_pem)?;
        let der = CertificateDer::from(der);
        let facts = CertFacts::from_der(&der)?;
        let issuer = Issuer::from_ca_cert_der(&der, key)?;
        let key_pkcs8 = issuer.key().serialize_der();
        Ok(Self {
            cert: IssuedCert {
                der,
                key_pkcs8,
                facts,
            },
            issuer,
        })
    }
}

/// Decodes the first PEM block with `label`.
pub fn pem_decode_first(label: &str, pem: &str) -> Result<Vec<u8>, PkiError> {
    use rustls_pki_types::pem::PemObject;
    match label {
        "CERTIFICATE" => CertificateDer::from_pem_slice(pem.as_bytes())
            .map(|c| c.to_vec())
            .map_err(|e| PkiError::Pem(e.to_string())),
        _ => PrivateKeyDer::from_pem_slice(pem.as_bytes())
            .map(|k| k.secret_der().to_vec())
            .map_err(|e| PkiError::Pem(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-05-02 06:30:00 UTC)
    }

    #[test]
    fn dn_round_trips_through_a_certificate() {
        let dn: DnSpec = "CN=mail.contoso.com, O=\"Contoso, Ltd\", L=Redmond, ST=Washington, C=US"
            .parse()
            .unwrap();
        assert_eq!(
            dn.to_string(),
            "CN=mail.contoso.com, O=\"Contoso, Ltd\", L=Redmond, S=Washington, C=US"
        );
        let root = CertAuthority::root(&CertSpec::authority(
            "CN=Lab Root CA, O=hybridlab, C=US".parse().unwrap(),
            now(),
        ))
        .unwrap();
        let mut spec = CertSpec::leaf("mail.contoso.com", now());
        spec.subject = dn;
        spec.dns_names.push("autodiscover.contoso.com".into());
        let leaf = root.issue(&spec).unwrap();
        assert_eq!(
            leaf.facts.subject,
            "CN=mail.contoso.com, O=\"Contoso, Ltd\", L=Redmond, S=Washington, C=US"
        );
        assert_eq!(leaf.facts.issuer, "CN=Lab Root CA, O=hybridlab, C=US");
        assert_eq!(leaf.facts.thumbprint.len(), 40);
        assert!(
            leaf.facts
                .thumbprint
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        );
        assert_eq!(
            leaf.facts.names(),
            vec!["mail.contoso.com", "autodiscover.contoso.com"]
        );
        assert!(!leaf.facts.is_self_signed);
        assert!(root.cert.facts.is_self_signed);
        assert_eq!(leaf.facts.not_after, now() + time::Duration::days(365));
        assert_eq!(
            leaf.facts.x509_identifier(),
            "<I>CN=Lab Root CA, O=hybridlab, C=US<S>CN=mail.contoso.com, O=\"Contoso, Ltd\", L=Redmond, S=Washington, C=US"
        );
    }

    #[test]
    fn pem_round_trip_and_bad_dns() {
        let c = IssuedCert::self_signed(&CertSpec::leaf("EXCH01", now())).unwrap();
        assert_eq!(
            pem_decode_first("CERTIFICATE", &c.cert_pem()).unwrap(),
            c.der.to_vec()
        );
        assert_eq!(
            pem_decode_first("PRIVATE KEY", &c.key_pem()).unwrap(),
            c.key_pkcs8
        );
        assert!("".parse::<DnSpec>().is_err());
        assert!("CN=a,".parse::<DnSpec>().is_err());
        assert!("CN=\"a".parse::<DnSpec>().is_err());
        assert!("noequals".parse::<DnSpec>().is_err());
        // parses, but cannot be generated faithfully: refused rather than silently shortened
        let twice: DnSpec = "CN=Contoso Root, DC=contoso, DC=com".parse().unwrap();
        let err = IssuedCert::self_signed(&CertSpec {
            subject: twice,
            ..CertSpec::leaf("x", now())
        })
        .unwrap_err();
        assert!(err.to_string().contains("DC= appears twice"), "{err}");
    }

    #[test]
    fn leaves_are_rsa_2048_authorities_ecdsa_with_keys_of_their_own() {
        let root = CertAuthority::root(&CertSpec::authority(DnSpec::cn("Root"), now())).unwrap();
        let twin = CertAuthority::root(&CertSpec::authority(DnSpec::cn("Root"), now())).unwrap();
        assert_eq!(root.cert.facts.key_algorithm, "ECC");
        assert_ne!(root.cert.key_pkcs8, twin.cert.key_pkcs8);
        let a = root.issue(&CertSpec::leaf("a.contoso.com", now())).unwrap();
        let b = IssuedCert::self_signed(&CertSpec::leaf("b.contoso.com", now())).unwrap();
        assert_eq!(a.facts.key_algorithm, "RSA");
        assert_eq!(a.facts.public_key_bits, 2048);
        assert_eq!(b.facts.public_key_bits, 2048);
        // one RSA key per process, shared by the leaves
        assert_eq!(a.key_pkcs8, b.key_pkcs8);
        let mut ec = CertSpec::leaf("c.contoso.com", now());
        ec.key = KeyKind::EcdsaP256;
        let c = root.issue(&ec).unwrap();
        assert_eq!(c.facts.public_key_bits, 256);
        // an RSA authority gets a key of its own
        let mut spec = CertSpec::authority(DnSpec::cn("RSA Root"), now());
        spec.key = KeyKind::Rsa2048;
        let rsa_root = CertAuthority::root(&spec).unwrap();
        assert_eq!(rsa_root.cert.facts.public_key_bits, 2048);
        assert_ne!(rsa_root.cert.key_pkcs8, a.key_pkcs8);
    }
}
