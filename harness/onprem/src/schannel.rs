//! The operating system's SChannel client settings: which TLS versions and cipher suites the
//! sender may negotiate.

use serde::{Deserialize, Serialize};

/// A cipher suite name rustls does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown cipher suite {0:?}")]
pub struct UnknownCipherSuite(pub String);

fn default_true() -> bool {
    true
}

fn default_suites() -> Option<Vec<String>> {
    None
}

/// The operating system's SChannel client settings (registry `SCHANNEL\Protocols`, cipher suite
/// order). Exchange does not support TLS 1.3, so it is off by default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchannelSettings {
    /// `TLS 1.2\Client Enabled`: whether the sender may negotiate TLS 1.2.
    #[serde(default = "default_true")]
    pub tls12: bool,
    /// `TLS 1.3\Client Enabled`: whether it may negotiate TLS 1.3 (off: Exchange does not support
    /// TLS 1.3).
    #[serde(default)]
    pub tls13: bool,
    /// The cipher suites left enabled, by IANA name (`TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384`);
    /// `None` keeps every suite rustls offers.
    #[serde(default = "default_suites")]
    pub cipher_suites: Option<Vec<String>>,
}

impl Default for SchannelSettings {
    fn default() -> Self {
        Self {
            tls12: true,
            tls13: false,
            cipher_suites: None,
        }
    }
}

impl SchannelSettings {
    /// The rustls provider with only the enabled suites, and the enabled versions.
    ///
    /// # Errors
    /// A suite name rustls does not know.
    pub fn provider_and_versions(
        &self,
    ) -> Result<
        (
            rustls::crypto::CryptoProvider,
            Vec<&'static rustls::SupportedProtocolVersion>,
        ),
        UnknownCipherSuite,
    > {
        let mut provider = rustls::crypto::ring::default_provider();
        if let Some(names) = &self.cipher_suites {
            let all = provider.cipher_suites.clone();
            let mut keep = Vec::new();
            for n in names {
                let found = all
                    .iter()
                    .find(|s| format!("{:?}", s.suite()).eq_ignore_ascii_case(n.trim()))
                    .ok_or_else(|| UnknownCipherSuite(n.clone()))?;
                keep.push(*found);
            }
            provider.cipher_suites = keep;
        }
        let mut versions = Vec::new();
        if self.tls13 {
            versions.push(&rustls::version::TLS13);
        }
        if self.tls12 {
            versions.push(&rustls::version::TLS12);
        }
        Ok((provider, versions))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_forms() {
        let s: SchannelSettings =
            toml::from_str("cipher_suites = [\"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\"]")
                .unwrap();
        let (p, v) = s.provider_and_versions().unwrap();
        assert_eq!(p.cipher_suites.len(), 1);
        assert_eq!(v.len(), 1);
        let s: SchannelSettings = toml::from_str("cipher_suites = [\"TLS_NOPE\"]").unwrap();
        assert!(s.provider_and_versions().is_err());
    }
}
