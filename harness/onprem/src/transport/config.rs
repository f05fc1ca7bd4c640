//! What the transport is configured with: the server, the connector, the retry settings, the
//! certificate selection and SChannel knobs, and how long a selected certificate is cached.

use serde::{Deserialize, Serialize};

use super::TransportSettings;
use crate::connector::SendConnector;
use crate::schannel::SchannelSettings;
use crate::selection::SelectionSettings;
use crate::server::ServerIdentity;

/// What one transport (one delivery queue) runs with.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// The sending server: name (queue identities), FQDN, role, Exchange version.
    pub server: ServerIdentity,
    /// The connector every message in the queue uses.
    pub connector: SendConnector,
    /// `Set-TransportService` retry, expiry and delay-DSN timing.
    pub settings: TransportSettings,
    /// How the STARTTLS certificate search resolves the uncertain cases.
    pub selection: SelectionSettings,
    /// The TLS versions and cipher suites the sender may negotiate.
    pub schannel: SchannelSettings,
    /// The queue's number in its identity (`3` in `EDGE01\3`).
    pub queue_number: u32,
    /// First session id (incremented per session), 64 bits shown as 16 hex digits.
    pub first_session_id: u64,
    /// How long a certificate selected by `TlsCertificateName` is kept \[U\].
    pub certificate_cache: CertificateCache,
}

/// How long the transport keeps the certificate it selected by `TlsCertificateName`
/// (FM-34). The exact refresh timing is uncertain \[U\]: the
/// reference reconstructs a cache keyed by the identifier that a store change or a restart
/// invalidates, while the community guidance is to restart the transport after any certificate
/// change, which is what the default models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateCache {
    /// The first successful selection for an identifier is kept until `Restart-Service
    /// MSExchangeTransport`; store changes do not reach it, a new identifier is a new key
    /// (default).
    #[default]
    UntilRestart,
    /// Every session selects again from the store as it is (equivalent, in the lab, to a cache
    /// the store-change bookmark invalidates).
    #[serde(rename = "none")]
    Disabled,
}

impl CertificateCache {
    /// `until_restart` / `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UntilRestart => "until_restart",
            Self::Disabled => "none",
        }
    }
}

impl TransportConfig {
    /// Defaults for `connector` on an Edge server named EDGE01.
    pub fn new(connector: SendConnector) -> Self {
        let server = ServerIdentity::default();
        Self {
            settings: TransportSettings::for_role(server.role),
            server,
            connector,
            selection: SelectionSettings::default(),
            schannel: SchannelSettings::default(),
            queue_number: 3,
            first_session_id: 0x08D6_CEB1_A2F3_C4D5,
            certificate_cache: CertificateCache::default(),
        }
    }
}
