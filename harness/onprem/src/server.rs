//! The sending server: its name, FQDN, transport role and Exchange version.

use serde::{Deserialize, Serialize};

use hybridlab_model::exchange::ExchangeVersion;

/// The transport role: decides the retry defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerRole {
    /// Edge Transport (the background case).
    #[default]
    Edge,
    /// Mailbox (Hub/Front End transport).
    Mailbox,
}

fn default_server_name() -> String {
    "EDGE01".into()
}
fn default_server_fqdn() -> String {
    "edge01.contoso.com".into()
}

/// Who is sending: the server's name, FQDN, role and Exchange version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerIdentity {
    /// NetBIOS name (`EDGE01`): queue identities are `EDGE01\<n>`.
    #[serde(default = "default_server_name")]
    pub name: String,
    /// FQDN: EHLO name when the connector has no `Fqdn`.
    #[serde(default = "default_server_fqdn")]
    pub fqdn: String,
    /// The transport role; it decides the retry defaults.
    #[serde(default)]
    pub role: ServerRole,
    /// The Exchange version: it decides how LastError wraps a failure.
    #[serde(default = "default_version")]
    pub version: ExchangeVersion,
}

fn default_version() -> ExchangeVersion {
    ExchangeVersion::Exchange2019
}

impl Default for ServerIdentity {
    fn default() -> Self {
        Self {
            name: default_server_name(),
            fqdn: default_server_fqdn(),
            role: ServerRole::Edge,
            version: default_version(),
        }
    }
}
