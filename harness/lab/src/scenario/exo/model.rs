//! The scenario tables of the Exchange Online -> on-premises direction (`[scenario] direction =
//! "exo-to-onprem"`): `[receive]` (the on-premises receive side: PKI, servers, receive
//! connectors, perimeter) and `[exo]` (where Exchange Online's sessions come from). The tenant's
//! outbound connector and the retry settings stay in `[eop]` (`[[eop.tenants.outbound_connectors]]`,
//! `[eop.delivery]`), the messages in `[[messages]]`.
//!
//! The tables reuse the receive side's own types: [`ReceiveConnector`] for
//! `[[receive.connectors]]`, [`ServerSettings`] for `[receive.servers.settings]`,
//! [`CertDescription`] and [`AuthorityDescription`] for the PKI, [`Refusal`] and [`IpRange`] for
//! the perimeter. `tls_certificate_name = { cert = "name" }` in a receive connector (and in
//! `set_receive_connector`) is taken out by the loader before serde reads the tree.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use hybridlab_model::timespan::TimeSpan;
use hybridlab_onprem::certstore::{AuthorityDescription, CertDescription};
use hybridlab_receive::connector::{IpRange, ReceiveConnector};
use hybridlab_receive::perimeter::Refusal;
use hybridlab_receive::server::ServerSettings;
use hybridlab_receive::site::Balancing;
use serde::{Deserialize, Serialize};

/// Which way the scenario's mail flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// On-premises Exchange sends to Exchange Online Protection (`[onprem]` and the mock EOP).
    #[default]
    OnpremToExo,
    /// Exchange Online delivers to the on-premises receive side (`[receive]`, `[exo]`).
    ExoToOnprem,
}

impl Direction {
    /// `onprem-to-exo` or `exo-to-onprem`, as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OnpremToExo => "onprem-to-exo",
            Self::ExoToOnprem => "exo-to-onprem",
        }
    }
}

/// `[receive]`: the on-premises receive side Exchange Online delivers to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiveSpec {
    /// `[receive.authorities.<name>]`: the on-premises PKI (roots before intermediates is not
    /// required). A root with `public = true` is one Exchange Online trusts.
    pub authorities: BTreeMap<String, AuthorityDescription>,
    /// `[[receive.certificates]]`: every certificate of the side, generated once; each server's
    /// `LocalMachine\My` holds the ones it lists (the same certificate on two servers has one
    /// thumbprint, as an exported PFX has).
    pub certificates: Vec<CertDescription>,
    /// `[[receive.servers]]`: the servers behind the smart host's name.
    pub servers: Vec<ReceiveServerSpec>,
    /// `[[receive.connectors]]`: receive connectors (each names its `server`); a server without
    /// one gets `Default Frontend <SERVER>` as setup creates it.
    pub connectors: Vec<ReceiveConnector>,
    /// `[receive.perimeter]`: firewall, NAT, SMTP inspection, TLS device.
    pub perimeter: PerimeterSpec,
    /// Which server a session lands on (`{ kind = "round_robin" }` default, or `{ kind =
    /// "seeded", seed = 7 }`).
    pub balancing: Balancing,
    /// The public address the smart host's name resolves to (what EXO's LED shows as
    /// `LastAttemptedIP` in memory runs; over tcp the listener's loopback address).
    pub address: IpAddr,
    /// `tls_certificate_name = { cert = "name" }` of `[[receive.connectors]]`, by connector index
    /// (taken out by the loader, resolved when the stores are built).
    #[serde(skip)]
    pub connector_certificates: BTreeMap<usize, String>,
}

impl Default for ReceiveSpec {
    fn default() -> Self {
        Self {
            authorities: BTreeMap::new(),
            certificates: Vec::new(),
            servers: Vec::new(),
            connectors: Vec::new(),
            perimeter: PerimeterSpec::default(),
            balancing: Balancing::RoundRobin,
            address: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 25)),
            connector_certificates: BTreeMap::new(),
        }
    }
}

/// One `[[receive.servers]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiveServerSpec {
    /// NetBIOS name (`EXCH01`).
    pub name: String,
    /// FQDN (`EXCH01.contoso.com`); default `<name>.contoso.com` lower-cased.
    #[serde(default)]
    pub fqdn: Option<String>,
    /// Names of `[[receive.certificates]]` in this server's `LocalMachine\My`, in enumeration
    /// order; default: every certificate.
    #[serde(default)]
    pub certificates: Option<Vec<String>>,
    /// Whether the server trusts the root of Exchange Online's client certificate (default
    /// true: a public root in `LocalMachine\Root`).
    #[serde(default = "yes")]
    pub trusts_exo_root: bool,
    /// `[receive.servers.settings]`: build, RECV-log layout, TLS versions, back pressure,
    /// accepted domains, selection knobs.
    #[serde(default)]
    pub settings: ServerSettings,
}

fn yes() -> bool {
    true
}

impl ReceiveServerSpec {
    /// The FQDN, or `<name>.contoso.com` when the file gives none.
    pub fn fqdn(&self) -> String {
        self.fqdn
            .clone()
            .unwrap_or_else(|| format!("{}.contoso.com", self.name.to_ascii_lowercase()))
    }
}

/// `[receive.perimeter]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PerimeterSpec {
    /// Source ranges the firewall lets in (`["40.92.0.0/15", "52.100.0.0/14"]`); empty: all.
    pub allow: Vec<IpRange>,
    /// What happens to the others: `reset` (4.4.316 at EXO) or `drop` (4.4.315).
    pub refusal: Refusal,
    /// How long a dropped connection is held silent.
    pub drop_hold: TimeSpan,
    /// Source NAT: the address the servers see.
    pub nat: Option<IpAddr>,
    /// SMTP inspection masking STARTTLS (`250-XXXXXXXA`).
    pub smtp_inspection: bool,
    /// `[receive.perimeter.tls_device]`: a device terminating TLS with its own certificate.
    pub tls_device: Option<TlsDeviceSpec>,
}

impl Default for PerimeterSpec {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            refusal: Refusal::Reset,
            drop_hold: TimeSpan::secs(60),
            nat: None,
            smtp_inspection: false,
            tls_device: None,
        }
    }
}

/// `[receive.perimeter.tls_device]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsDeviceSpec {
    /// The `[[receive.certificates]]` entry the device presents (in no server's store).
    pub certificate: String,
    /// The name in its banner and EHLO reply.
    #[serde(default = "device_host")]
    pub hostname: String,
    /// The address Exchange sees relayed sessions come from.
    #[serde(default = "device_inside")]
    pub inside_address: IpAddr,
}

fn device_host() -> String {
    "mail.contoso.com".into()
}

fn device_inside() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))
}

/// `[exo]`: Exchange Online as the sender.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExoSpec {
    /// The addresses Exchange Online's sessions come from, used in turn (part of EOP's outbound
    /// pool; over tcp they are mapped onto loopback connections and the receive side sees
    /// these).
    pub sources: Vec<IpAddr>,
    /// The tenant whose outbound connector routes the messages (default: the first with one).
    pub tenant: Option<String>,
}

impl Default for ExoSpec {
    fn default() -> Self {
        Self {
            sources: vec![IpAddr::V4(Ipv4Addr::new(40, 107, 22, 55))],
            tenant: None,
        }
    }
}

/// `set_receive_connector = { server = "EXCH02", ... }` in `[[changes]]`: `Set-ReceiveConnector`
/// on one connector (by `name`, default the server's first) with any of the connector's keys.
#[derive(Debug, Clone, Default)]
pub struct ReceiveConnectorChange {
    /// The keys as written (`server` and `name` included; `tls_certificate_name = { cert = .. }`
    /// taken out into [`Self::certificate`]).
    pub keys: toml::Table,
    /// `tls_certificate_name = { cert = "name" }`: the certificate it pins.
    pub certificate: Option<String>,
}

impl<'de> Deserialize<'de> for ReceiveConnectorChange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self {
            keys: toml::Table::deserialize(d)?,
            certificate: None,
        })
    }
}

impl ReceiveConnectorChange {
    /// The server the change is for.
    pub fn server(&self) -> Option<&str> {
        self.keys.get("server").and_then(toml::Value::as_str)
    }

    /// The connector's name, when given.
    pub fn name(&self) -> Option<&str> {
        self.keys.get("name").and_then(toml::Value::as_str)
    }

    /// `connector` with the change's keys applied (the keys other than `server` and `name`
    /// replace the connector's values).
    ///
    /// # Errors
    /// A key the connector does not know, a value of the wrong shape, or a connector
    /// `Set-ReceiveConnector` would refuse.
    pub fn apply(&self, connector: &ReceiveConnector) -> Result<ReceiveConnector, String> {
        let mut table = toml::Table::try_from(connector).map_err(|e| e.to_string())?;
        for (k, v) in &self.keys {
            if k == "server" || k == "name" {
                continue;
            }
            table.insert(k.clone(), v.clone());
        }
        table.remove("role");
        table.remove("transport_role");
        let mut config: toml::Table = toml::Table::new();
        config.insert("role".into(), toml::Value::String(role_word(connector)));
        for (k, v) in table {
            config.insert(k, v);
        }
        config
            .try_into::<ReceiveConnector>()
            .map_err(|e| e.message().to_string())
    }
}

fn role_word(c: &ReceiveConnector) -> String {
    match c.role {
        hybridlab_receive::connector::ConnectorRole::Frontend => "frontend".into(),
        hybridlab_receive::connector::ConnectorRole::Edge => "edge".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(text: &str) -> ReceiveConnectorChange {
        toml::from_str::<toml::Table>(text)
            .map(|keys| ReceiveConnectorChange {
                keys,
                certificate: None,
            })
            .unwrap()
    }

    #[test]
    fn set_receive_connector_keeps_what_it_does_not_name() {
        let mut c = ReceiveConnector::default_edge("EDGE01");
        c.fqdn = Some("mail.contoso.com".into());
        let after = change("server = \"EDGE01\"\nrequire_tls = true\nmax_message_size = 1024")
            .apply(&c)
            .unwrap();
        assert!(after.require_tls);
        assert_eq!(after.max_message_size, 1024);
        assert_eq!(after.fqdn.as_deref(), Some("mail.contoso.com"));
        assert_eq!(after.role, c.role);
        assert_eq!(after.name, c.name);
        assert_eq!(after.connection_timeout, c.connection_timeout);
        let err = change("server = \"EDGE01\"\nrequire_tsl = true")
            .apply(&c)
            .unwrap_err();
        assert!(err.contains("require_tsl"), "{err}");
    }

    #[test]
    fn directions_read_as_written() {
        #[derive(Deserialize)]
        struct D {
            d: Direction,
        }
        let d: D = toml::from_str("d = \"exo-to-onprem\"").unwrap();
        assert_eq!(d.d, Direction::ExoToOnprem);
        assert_eq!(d.d.as_str(), "exo-to-onprem");
        assert!(toml::from_str::<D>("d = \"sideways\"").is_err());
    }
}
