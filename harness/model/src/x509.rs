//! Certificate facts the way Windows and Exchange show them.
//!
//! - [`thumbprint`]: SHA-1 of the DER, 40 uppercase hex digits (`78E1BE82F683EE6D8CB9B9266FC1185AE0890C41`).
//! - [`dotnet_dn`]: a distinguished name rendered like .NET's `X500DistinguishedName.Name`: most specific
//!   RDN first, `, ` between RDNs, `S=` for the state, quoted values where .NET quotes them
//!   (`CN=mail.contoso.com, O=Contoso Ltd, L=Redmond, S=Washington, C=US`).
//! - [`CertFacts`]: what the mock records about a client certificate and what the sender logs about
//!   the certificate it sends (subject, issuer, serial, thumbprint, validity, SANs).
//! - [`name_matches`] / [`names_match`]: RFC 6125 wildcard rules for `TlsDomain`,
//!   `TlsSenderCertificateName` and the FQDN certificate search.

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate, X509Name};

/// Errors reading a certificate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum X509Error {
    /// The bytes are not a DER X.509 certificate.
    #[error("not a DER X.509 certificate: {0}")]
    Parse(String),
}

/// SHA-1 of `der`, as 40 uppercase hex digits without separators (the Windows thumbprint).
pub fn thumbprint(der: &[u8]) -> String {
    hex_upper(&Sha1::digest(der))
}

/// Bytes as uppercase hex without separators.
pub fn hex_upper(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

/// The short name .NET (CryptoAPI `CertNameToStr`, X500 format) uses for an attribute OID.
fn dotnet_attr_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "S",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "T",
        "2.5.4.4" => "SN",
        "2.5.4.42" => "G",
        "2.5.4.43" => "I",
        "2.5.4.5" => "SERIALNUMBER",
        "2.5.4.17" => "PostalCode",
        "1.2.840.113549.1.9.1" => "E",
        "0.9.2342.19200300.100.1.25" => "DC",
        _ => return None,
    })
}

/// Quotes an RDN value the way .NET does: values with `, + = " < > # ;`, a line break, or leading or
/// trailing space are wrapped in double quotes, inner quotes doubled.
pub fn dotnet_quote(value: &str) -> String {
    let needs = value.is_empty()
        || value.starts_with(' ')
        || value.ends_with(' ')
        || value.chars().any(|c| {
            matches!(
                c,
                ',' | '+' | '=' | '"' | '<' | '>' | '#' | ';' | '\n' | '\r'
            )
        });
    if needs {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

/// Renders a parsed X.509 name like .NET's `X500DistinguishedName.Name` (reverse of the ASN.1 order).
pub fn dotnet_dn(name: &X509Name<'_>) -> String {
    let mut rdns: Vec<String> = Vec::new();
    for rdn in name.iter() {
        let parts: Vec<String> = rdn
            .iter()
            .map(|atv| {
                let oid = atv.attr_type().to_id_string();
                let key = dotnet_attr_name(&oid)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("OID.{oid}"));
                let value = atv
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|_| hex_upper(atv.as_slice()));
                format!("{key}={}", dotnet_quote(&value))
            })
            .collect();
        rdns.push(parts.join(" + "));
    }
    rdns.reverse();
    rdns.join(", ")
}

/// Normalises a .NET-style DN string for comparison the way Exchange compares `TlsCertificateName`
/// parts: case-insensitive, but RDN order and content matter. Only the spacing around the `, `
/// separators outside quotes is normalised.
pub fn dn_eq(a: &str, b: &str) -> bool {
    normalise_dn(a) == normalise_dn(b)
}

fn normalise_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    let mut in_quotes = false;
    let mut chars = dn.trim().chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' {
            in_quotes = !in_quotes;
        }
        if c == ',' && !in_quotes {
            out.push(',');
            while chars.peek() == Some(&' ') {
                chars.next();
            }
            continue;
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// RFC 6125 style match of one DNS name against a pattern, case-insensitive. A leading `*.` in the
/// pattern matches exactly one left-most label: `*.contoso.com` matches `mail.contoso.com` but not
/// `contoso.com` nor `a.b.contoso.com`. Without a wildcard the names must be equal.
pub fn name_matches(pattern: &str, name: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if pattern.is_empty() || name.is_empty() {
        return false;
    }
    if pattern == name {
        return true;
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) => match name.split_once('.') {
            Some((label, rest)) => {
                !label.is_empty() && label != "*" && rest == suffix && !suffix.is_empty()
            }
            None => false,
        },
        None => false,
    }
}

/// Whether a configured name (`TlsDomain`, `TlsSenderCertificateName`, a connector FQDN) matches any of
/// a certificate's names (CN and DNS SANs). Either side may hold a wildcard: a configured
/// `*.contoso.com` covers a certificate for `mail.contoso.com`, a wildcard certificate `*.contoso.com`
/// covers a configured `mail.contoso.com`, and equal strings match.
pub fn names_match<'a>(configured: &str, cert_names: impl IntoIterator<Item = &'a str>) -> bool {
    cert_names
        .into_iter()
        .any(|n| name_matches(configured, n) || name_matches(n, configured))
}

/// What Exchange and the mock need to know about one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertFacts {
    /// Subject DN, .NET rendering.
    pub subject: String,
    /// Issuer DN, .NET rendering.
    pub issuer: String,
    /// Serial number, uppercase hex as Exchange logs it.
    pub serial: String,
    /// SHA-1 thumbprint, 40 uppercase hex.
    pub thumbprint: String,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Subject common name(s), in order.
    pub common_names: Vec<String>,
    /// DNS names from the subjectAltName extension, in order.
    pub dns_names: Vec<String>,
    /// Subject equals issuer (Exchange's `IsSelfSigned`).
    pub is_self_signed: bool,
    /// basicConstraints CA flag.
    pub is_ca: bool,
    /// Public key size in bits (256 for P-256, 2048 for RSA-2048).
    pub public_key_bits: u32,
    /// Public key algorithm: `RSA`, `ECC` or `Ed25519`.
    pub key_algorithm: String,
    /// Extended key usages present (`ServerAuth`, `ClientAuth`, ...); empty when the extension is absent.
    pub extended_key_usages: Vec<String>,
}

impl CertFacts {
    /// Parses a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, X509Error> {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| X509Error::Parse(e.to_string()))?;
        let subject = dotnet_dn(cert.subject());
        let issuer = dotnet_dn(cert.issuer());
        let common_names = cert
            .subject()
            .iter_common_name()
            .filter_map(|a| a.as_str().ok().map(str::to_string))
            .collect();
        let mut dns_names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for gn in &san.value.general_names {
                if let GeneralName::DNSName(d) = gn {
                    dns_names.push((*d).to_string());
                }
            }
        }
        let mut ekus = Vec::new();
        if let Ok(Some(eku)) = cert.extended_key_usage() {
            let e = eku.value;
            if e.server_auth {
                ekus.push("ServerAuth".to_string());
            }
            if e.client_auth {
                ekus.push("ClientAuth".to_string());
            }
            if e.any {
                ekus.push("Any".to_string());
            }
        }
        let spki = cert.public_key();
        let (key_algorithm, public_key_bits) =
            match spki.algorithm.algorithm.to_id_string().as_str() {
                "1.2.840.113549.1.1.1" => (
                    "RSA".to_string(),
                    spki.parsed().map(|k| k.key_size() as u32).unwrap_or(0),
                ),
                "1.2.840.10045.2.1" => (
                    "ECC".to_string(),
                    spki.parsed().map(|k| k.key_size() as u32).unwrap_or(0),
                ),
                "1.3.101.112" => ("Ed25519".to_string(), 256),
                other => (other.to_string(), 0),
            };
        Ok(Self {
            is_self_signed: dn_eq(&subject, &issuer),
            subject,
            issuer,
            serial: hex_upper(cert.raw_serial()),
            thumbprint: thumbprint(der),
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            common_names,
            dns_names,
            is_ca: cert.is_ca(),
            public_key_bits,
            key_algorithm,
            extended_key_usages: ekus,
        })
    }

    /// CN then DNS SANs, without duplicates (Exchange's `CertificateDomains`).
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = Vec::new();
        for n in self.common_names.iter().chain(self.dns_names.iter()) {
            if !v.iter().any(|x| x.eq_ignore_ascii_case(n)) {
                v.push(n);
            }
        }
        v
    }

    /// The `<I>issuer<S>subject` identifier an Exchange connector's `TlsCertificateName` holds.
    pub fn x509_identifier(&self) -> String {
        format!("<I>{}<S>{}", self.issuer, self.subject)
    }

    /// Valid at `now` (between NotBefore and NotAfter, inclusive).
    pub fn is_time_valid(&self, now: OffsetDateTime) -> bool {
        self.not_before <= now && now <= self.not_after
    }
}

/// PEM-encodes `der` with the given label.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len() * 4 / 3 + 4);
    for chunk in der.chunks(3) {
        let n = match chunk.len() {
            3 => (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]),
            2 => (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8),
            _ => u32::from(chunk[0]) << 16,
        };
        b64.push(B64[(n >> 18) as usize & 63] as char);
        b64.push(B64[(n >> 12) as usize & 63] as char);
        b64.push(if chunk.len() > 1 {
            B64[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        b64.push(if chunk.len() > 2 {
            B64[n as usize & 63] as char
        } else {
            '='
        });
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_follow_rfc6125() {
        assert!(name_matches("*.contoso.com", "mail.contoso.com"));
        assert!(name_matches("*.Contoso.com", "MAIL.contoso.COM"));
        assert!(!name_matches("*.contoso.com", "contoso.com"));
        assert!(!name_matches("*.contoso.com", "a.b.contoso.com"));
        assert!(name_matches("mail.contoso.com", "mail.contoso.com."));
        assert!(!name_matches("mail.contoso.com", "smtp.contoso.com"));
        assert!(!name_matches("", ""));
        assert!(names_match("mail.contoso.com", ["*.contoso.com"]));
        assert!(names_match("*.contoso.com", ["mail.contoso.com"]));
        assert!(names_match("*.contoso.com", ["*.contoso.com"]));
        assert!(!names_match(
            "*.contoso.com",
            ["smtp.contoso.net", "contoso.com"]
        ));
    }

    #[test]
    fn dn_compare_is_case_insensitive_and_order_sensitive() {
        assert!(dn_eq(
            "CN=mail.contoso.com, O=Contoso Ltd, C=US",
            "cn=MAIL.contoso.com,O=contoso ltd, c=us"
        ));
        assert!(!dn_eq(
            "CN=mail.contoso.com, O=Contoso Ltd, C=US",
            "O=Contoso Ltd, CN=mail.contoso.com, C=US"
        ));
    }

    #[test]
    fn quoting_matches_dotnet() {
        assert_eq!(dotnet_quote("Contoso Ltd"), "Contoso Ltd");
        assert_eq!(dotnet_quote("Contoso, Ltd"), "\"Contoso, Ltd\"");
        assert_eq!(dotnet_quote("a\"b"), "\"a\"\"b\"");
        assert_eq!(hex_upper(&[0x0c, 0xab]), "0CAB");
    }
}
