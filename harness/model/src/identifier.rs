//! `<I>issuer<S>subject`: the SmtpX509Identifier of a connector's `TlsCertificateName`
//! (docs/domain.md section 2.2), the one parser of that form for the lab and the diagnosis.

use std::fmt;
use std::str::FromStr;

/// A `TlsCertificateName` value that is not `<I>issuer<S>subject`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "TlsCertificateName {value:?} is not a valid X509 identifier (<I>issuer<S>subject): {reason}"
)]
pub struct BadX509Identifier {
    /// The value as written.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// `TlsCertificateName`: `<I>issuer DN<S>subject DN` (an SmtpX509Identifier).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct X509Identifier {
    /// Issuer DN, .NET rendering.
    pub issuer: String,
    /// Subject DN, .NET rendering.
    pub subject: String,
}

impl X509Identifier {
    /// Whether a certificate's issuer and subject match (case-insensitive DN compare).
    pub fn matches(&self, issuer: &str, subject: &str) -> bool {
        crate::x509::dn_eq(&self.issuer, issuer) && crate::x509::dn_eq(&self.subject, subject)
    }
}

impl fmt::Display for X509Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<I>{}<S>{}", self.issuer, self.subject)
    }
}

impl FromStr for X509Identifier {
    type Err = BadX509Identifier;
    /// Splits at `<I>` and `<S>` (tags case-insensitive, as HealthChecker's regex does).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason| BadX509Identifier {
            value: s.to_string(),
            reason,
        };
        let t = s.trim();
        let lower = t.to_ascii_lowercase();
        if !lower.starts_with("<i>") {
            return Err(bad("it must start with <I>"));
        }
        let s_pos = lower.find("<s>").ok_or_else(|| bad("<S> is missing"))?;
        let issuer = t[3..s_pos].trim();
        let subject = t[s_pos + 3..].trim();
        if issuer.is_empty() {
            return Err(bad("the issuer is empty"));
        }
        if subject.is_empty() {
            return Err(bad("the subject is empty"));
        }
        if !issuer.contains('=') || !subject.contains('=') {
            return Err(bad(
                "issuer and subject must be distinguished names (CN=...)",
            ));
        }
        Ok(Self {
            issuer: issuer.to_string(),
            subject: subject.to_string(),
        })
    }
}

serde_via_str!(X509Identifier, ToString::to_string);
