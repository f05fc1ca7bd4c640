//! The certificate block: how a protocol log records the certificate a side presented, in the
//! classic multi-line style (`*,,Sending certificate` then one line per field) or the one-line style
//! of newer builds; written from [`CertFacts`] and read back into them.

use std::collections::HashMap;

use hybridlab_model::x509::CertFacts;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::CertRole;
use super::write::log_time;

/// How the certificate block is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CertBlockStyle {
    /// Exchange 2013-2019 classic: `*,,Sending certificate` then one line each for subject,
    /// issuer name, serial number, thumbprint and alternate names.
    #[default]
    MultiLine,
    /// Newer builds: one info line whose data holds subject, issuer, serial, thumbprint, not before,
    /// not after and the alternate names separated by spaces, and whose context names them
    /// (`Sending certificate Subject Issuer name Serial number Thumbprint Not before Not after
    /// Subject alternate names`).
    OneLine,
}

/// The context column of a one-line certificate block after the role text.
pub const ONE_LINE_CERT_FIELDS: &str =
    "Subject Issuer name Serial number Thumbprint Not before Not after Subject alternate names";

/// The `(data, context)` columns of the `*` lines that log `cert` in `style`: six lines (the role,
/// then subject, issuer, serial, thumbprint and alternate names) or one.
pub(super) fn block_lines(
    role: CertRole,
    cert: &CertFacts,
    style: CertBlockStyle,
) -> Vec<(String, String)> {
    match style {
        CertBlockStyle::MultiLine => vec![
            (String::new(), role.log_text().into()),
            (cert.subject.clone(), "Certificate subject".into()),
            (cert.issuer.clone(), "Certificate issuer name".into()),
            (cert.serial.clone(), "Certificate serial number".into()),
            (cert.thumbprint.clone(), "Certificate thumbprint".into()),
            (
                cert.dns_names.join(";"),
                "Certificate alternate names".into(),
            ),
        ],
        CertBlockStyle::OneLine => {
            let data = format!(
                "{} {} {} {} {} {} {}",
                cert.subject,
                cert.issuer,
                cert.serial,
                cert.thumbprint,
                log_time(cert.not_before),
                log_time(cert.not_after),
                cert.dns_names.join(";")
            );
            vec![(data, format!("{} {ONE_LINE_CERT_FIELDS}", role.log_text()))]
        }
    }
}

/// What a protocol log keeps of a certificate, for comparing a written and a read session: the
/// subject, issuer, serial, thumbprint and alternate names; the validity only in the one-line
/// style (the classic block reads back with [`UNKNOWN_TIME`]); CN derived from the subject;
/// `is_self_signed` from subject = issuer; nothing about the key or the extensions.
pub fn logged_view(cert: &CertFacts, style: CertBlockStyle) -> CertFacts {
    let (not_before, not_after) = match style {
        CertBlockStyle::MultiLine => (UNKNOWN_TIME, UNKNOWN_TIME),
        CertBlockStyle::OneLine => (truncate_ms(cert.not_before), truncate_ms(cert.not_after)),
    };
    CertFacts {
        subject: cert.subject.clone(),
        issuer: cert.issuer.clone(),
        serial: cert.serial.clone(),
        thumbprint: cert.thumbprint.clone(),
        not_before,
        not_after,
        common_names: common_names_of(&cert.subject),
        dns_names: cert
            .dns_names
            .iter()
            .filter(|n| !n.is_empty())
            .cloned()
            .collect(),
        is_self_signed: hybridlab_model::x509::dn_eq(&cert.subject, &cert.issuer),
        is_ca: false,
        public_key_bits: 0,
        key_algorithm: String::new(),
        extended_key_usages: Vec::new(),
    }
}

/// The validity a classic (multi-line) certificate block reads back with: the log does not carry
/// it. Check [`super::EventSource::cert_validity_logged`] before using a logged certificate's dates.
pub const UNKNOWN_TIME: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

fn truncate_ms(t: OffsetDateTime) -> OffsetDateTime {
    let ns = t.unix_timestamp_nanos();
    OffsetDateTime::from_unix_timestamp_nanos(ns - ns.rem_euclid(1_000_000)).unwrap_or(t)
}

/// The CN values of a .NET-rendered DN, in order.
pub fn common_names_of(dn: &str) -> Vec<String> {
    match dn.parse::<hybridlab_model::dn::DnSpec>() {
        Ok(spec) => spec
            .0
            .into_iter()
            .filter(|a| a.key.eq_ignore_ascii_case("CN"))
            .map(|a| a.value)
            .collect(),
        Err(_) => dn
            .split(", ")
            .filter_map(|p| {
                p.strip_prefix("CN=")
                    .or_else(|| p.strip_prefix("cn="))
                    .map(str::to_string)
            })
            .collect(),
    }
}

pub(super) fn cert_role(context: &str) -> Option<CertRole> {
    [CertRole::Sending, CertRole::Remote, CertRole::Received]
        .into_iter()
        .find(|r| context.trim().eq_ignore_ascii_case(r.log_text()))
}

pub(super) fn one_line_cert_role(context: &str) -> Option<CertRole> {
    let c = context.trim();
    [CertRole::Sending, CertRole::Remote, CertRole::Received]
        .into_iter()
        .find(|r| {
            c.len() > r.log_text().len()
                && c[..r.log_text().len()].eq_ignore_ascii_case(r.log_text())
                && c[r.log_text().len()..].trim_start().starts_with("Subject")
        })
}

#[derive(Default)]
pub(super) struct CertParts {
    subject: Option<String>,
    issuer: Option<String>,
    serial: Option<String>,
    thumbprint: Option<String>,
    sans: Option<String>,
}

impl CertParts {
    /// Takes one classic-block line; false if it is not one or its field is already set.
    pub(super) fn take(&mut self, context: &str, data: &str) -> bool {
        let c = context.trim();
        let is = |name: &str| c.eq_ignore_ascii_case(name);
        let slot = if is("certificate subject") {
            &mut self.subject
        } else if is("certificate issuer name") || is("certificate issuer") {
            &mut self.issuer
        } else if is("certificate serial number") {
            &mut self.serial
        } else if is("certificate thumbprint") {
            &mut self.thumbprint
        } else if is("certificate alternate names") || is("certificate subject alternate names") {
            &mut self.sans
        } else {
            return false;
        };
        if slot.is_some() {
            return false;
        }
        *slot = Some(data.to_string());
        true
    }

    pub(super) fn into_facts(self, dn: &mut DnCache) -> CertFacts {
        facts_from_parts(
            self.subject.unwrap_or_default(),
            self.issuer.unwrap_or_default(),
            self.serial.unwrap_or_default(),
            self.thumbprint.unwrap_or_default(),
            UNKNOWN_TIME,
            UNKNOWN_TIME,
            self.sans.as_deref().unwrap_or(""),
            dn,
        )
    }
}

/// What a certificate's subject and issuer give ([`common_names_of`], self-signed), per distinct
/// pair: a big log repeats the same few certificates in every session.
#[derive(Debug, Default)]
pub(super) struct DnCache(HashMap<String, HashMap<String, (Vec<String>, bool)>>);

impl DnCache {
    fn facts(&mut self, subject: &str, issuer: &str) -> (Vec<String>, bool) {
        if let Some(hit) = self.0.get(subject).and_then(|m| m.get(issuer)) {
            return hit.clone();
        }
        let facts = (
            common_names_of(subject),
            !subject.is_empty() && hybridlab_model::x509::dn_eq(subject, issuer),
        );
        self.0
            .entry(subject.to_string())
            .or_default()
            .insert(issuer.to_string(), facts.clone());
        facts
    }
}

#[allow(clippy::too_many_arguments)]
fn facts_from_parts(
    subject: String,
    issuer: String,
    serial: String,
    thumbprint: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    sans: &str,
    dn: &mut DnCache,
) -> CertFacts {
    let (common_names, is_self_signed) = dn.facts(&subject, &issuer);
    CertFacts {
        common_names,
        is_self_signed,
        subject,
        issuer,
        serial: serial.trim().to_string(),
        thumbprint: thumbprint.trim().to_string(),
        not_before,
        not_after,
        dns_names: sans
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        is_ca: false,
        public_key_bits: 0,
        key_algorithm: String::new(),
        extended_key_usages: Vec::new(),
    }
}

/// Parses the data column of a one-line certificate block:
/// `<subject> <issuer> <serial> <thumbprint> <not before> <not after> <alternate names>`.
/// Read from the right (names, dates, thumbprint, serial), then the subject/issuer boundary is
/// the first space not preceded by a comma and followed by an attribute (`CN=`).
pub fn parse_one_line_cert(data: &str) -> Option<CertFacts> {
    parse_one_line_cert_with(data, &mut DnCache::default())
}

pub(super) fn parse_one_line_cert_with(data: &str, dn: &mut DnCache) -> Option<CertFacts> {
    let mut rest = data.trim();
    // Alternate names: the last token, unless it is the not-after date.
    let (head, last) = rest.rsplit_once(' ')?;
    let sans;
    if looks_like_time_token(last) {
        sans = "";
    } else {
        sans = last;
        rest = head.trim_end();
    }
    let (rest2, not_after) = take_time_from_right(rest)?;
    let (rest3, not_before) = take_time_from_right(rest2)?;
    let (rest4, thumb) = rest3.rsplit_once(' ')?;
    if thumb.len() < 16 || !thumb.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let (names, serial) = rest4.trim_end().rsplit_once(' ')?;
    if serial.is_empty() || !serial.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let (subject, issuer) = split_subject_issuer(names.trim())?;
    Some(facts_from_parts(
        subject.to_string(),
        issuer.to_string(),
        serial.to_string(),
        thumb.to_string(),
        not_before,
        not_after,
        sans,
        dn,
    ))
}

fn looks_like_time_token(t: &str) -> bool {
    crate::ps::parse_iso(t).is_some()
        || t.eq_ignore_ascii_case("AM")
        || t.eq_ignore_ascii_case("PM")
}

/// Takes an ISO timestamp, or an en-US `M/d/yyyy h:mm:ss AM` one, off the right end.
fn take_time_from_right(s: &str) -> Option<(&str, OffsetDateTime)> {
    let s = s.trim_end();
    let (head, last) = s.rsplit_once(' ')?;
    if let Some(t) = crate::ps::parse_iso(last) {
        return Some((head, t));
    }
    // Up to three tokens: date, time, AM/PM.
    let mut cut = s.len();
    let mut tokens = 0;
    let mut best = None;
    while tokens < 3 {
        let Some(sp) = s[..cut].rfind(' ') else { break };
        cut = sp;
        tokens += 1;
        if let Some(t) = crate::ps::parse_ps_datetime(&s[cut + 1..]) {
            best = Some((&s[..cut], t));
        }
    }
    best
}

fn split_subject_issuer(names: &str) -> Option<(&str, &str)> {
    let b = names.as_bytes();
    let mut in_quotes = false;
    for i in 0..b.len() {
        match b[i] {
            b'"' => in_quotes = !in_quotes,
            b' ' if !in_quotes && i > 0 && b[i - 1] != b',' => {
                let rest = &names[i + 1..];
                let key_end = rest.find('=')?;
                let key = &rest[..key_end];
                if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
                    return Some((&names[..i], rest));
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn one_line_certificate_data_splits_from_the_right() {
        let data = "CN=mail.contoso.com, O=Contoso Ltd, L=Redmond, S=Washington, C=US CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1, O=DigiCert Inc, C=US 0C5A1F0E8B7D6C5B4A39281706F5E4D3 78E1BE82F683EE6D8CB9B9266FC1185AE0890C41 2024-01-01T00:00:00.000Z 2025-01-31T23:59:59.000Z mail.contoso.com;autodiscover.contoso.com";
        let c = parse_one_line_cert(data).unwrap();
        assert_eq!(
            c.subject,
            "CN=mail.contoso.com, O=Contoso Ltd, L=Redmond, S=Washington, C=US"
        );
        assert_eq!(
            c.issuer,
            "CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1, O=DigiCert Inc, C=US"
        );
        assert_eq!(c.serial, "0C5A1F0E8B7D6C5B4A39281706F5E4D3");
        assert_eq!(c.thumbprint, "78E1BE82F683EE6D8CB9B9266FC1185AE0890C41");
        assert_eq!(c.not_after, datetime!(2025-01-31 23:59:59 UTC));
        assert_eq!(
            c.dns_names,
            ["mail.contoso.com", "autodiscover.contoso.com"]
        );
        assert_eq!(c.common_names, ["mail.contoso.com"]);
        // No alternate names, en-US dates.
        let c = parse_one_line_cert("CN=EXCH01 CN=EXCH01 1A2B 78E1BE82F683EE6D8CB9B9266FC1185AE0890C41 1/1/2024 12:00:00 AM 1/1/2029 12:00:00 AM").unwrap();
        assert!(c.is_self_signed);
        assert!(c.dns_names.is_empty());
        assert_eq!(c.not_after, datetime!(2029-01-01 00:00:00 UTC));
        assert!(parse_one_line_cert("nonsense").is_none());
        assert!(parse_one_line_cert("").is_none());
    }
}
