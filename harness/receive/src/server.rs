//! One receiving Exchange server: its certificate store, its receive connectors and the settings
//! that are per server rather than per connector (build, log layout, SChannel versions, back
//! pressure, accepted domains). [`ReceiveServer::start`] is the transport service starting: it
//! selects each connector's STARTTLS certificate once (Exchange caches it until a restart),
//! builds the TLS configuration and logs the start-up events; the [`RunningServer`] then opens
//! one [`ReceiveSession`] per connection.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hybridlab_artefacts::connectors::ReceiveConnectorRow;
use hybridlab_artefacts::protocol_log::CertBlockStyle;
use hybridlab_model::event::WindowsEvent;
use hybridlab_model::exchange::ExchangeVersion;
use hybridlab_model::x509::CertFacts;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::certificate::{InboundSelection, InboundSelectionSettings, select_inbound};
use super::connector::ReceiveConnector;
use super::events::{self, EventOrigin};
use super::session::ReceiveSession;
use super::tls::{ReceiveTlsError, ServerTlsVersions, server_config};
use hybridlab_onprem::certstore::CertStore;

/// How the RECV log writes the EHLO reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EhloLogLayout {
    /// One `>` line per keyword (`250-mail.contoso.com Hello [...]`, `250-SIZE 37748736`, ...,
    /// `250 XRDST`): Exchange 2013/2016 builds before about 2017.
    PerKeyword,
    /// One `>` line, the keywords joined after `250` and two spaces (`250  mail.contoso.com
    /// Hello [...] SIZE 37748736 ...`): newer builds (default).
    #[default]
    Joined,
}

/// Which resource is under pressure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum PressureResource {
    /// The disk of the queue database (`UsedDiskSpace[<path>]`).
    #[default]
    UsedDiskSpace,
}

/// Back pressure on the server: MAIL FROM is refused with `452 4.3.1 Insufficient system
/// resources (UsedDiskSpace[<path>])`, and events 15004 and 15006 are logged at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackPressure {
    /// The resource.
    #[serde(default)]
    pub resource: PressureResource,
    /// The queue database folder.
    #[serde(default = "default_queue_path")]
    pub path: String,
}

fn default_queue_path() -> String {
    "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\TransportRoles\\data\\Queue".into()
}

impl Default for BackPressure {
    fn default() -> Self {
        Self {
            resource: PressureResource::UsedDiskSpace,
            path: default_queue_path(),
        }
    }
}

impl BackPressure {
    /// `UsedDiskSpace[<path>]`, as the 452 reply names the resource.
    pub fn resource_text(&self) -> String {
        match self.resource {
            PressureResource::UsedDiskSpace => format!("UsedDiskSpace[{}]", self.path),
        }
    }
}

/// Per-server settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// The build: 2019 and later advertise `SMTPUTF8`.
    pub version: ExchangeVersion,
    /// EHLO reply layout in the RECV log.
    pub ehlo_log_layout: EhloLogLayout,
    /// Certificate block of the RECV log (`one_line` on current builds, default).
    pub cert_block: CertBlockStyle,
    /// SChannel's server protocol versions.
    pub tls: ServerTlsVersions,
    /// Back pressure, if any.
    pub back_pressure: Option<BackPressure>,
    /// Accepted domains; a recipient elsewhere gets `550 5.7.54` (empty: every domain).
    pub accepted_domains: Vec<String>,
    /// Inbound certificate selection knobs.
    pub selection: InboundSelectionSettings,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            version: ExchangeVersion::Exchange2019,
            ehlo_log_layout: EhloLogLayout::default(),
            cert_block: CertBlockStyle::OneLine,
            tls: ServerTlsVersions::default(),
            back_pressure: None,
            accepted_domains: Vec::new(),
            selection: InboundSelectionSettings::default(),
        }
    }
}

/// A receiving server before it starts.
#[derive(Debug, Clone)]
pub struct ReceiveServer {
    /// NetBIOS name (`EXCH01`).
    pub name: String,
    /// FQDN (`EXCH01.contoso.com`).
    pub fqdn: String,
    /// `LocalMachine\My` and the trust stores.
    pub store: Arc<CertStore>,
    /// Its receive connectors.
    pub connectors: Vec<ReceiveConnector>,
    /// Server-wide settings.
    pub settings: ServerSettings,
}

/// What a session needs to know about its server.
#[derive(Debug)]
pub struct ServerContext {
    /// NetBIOS name.
    pub name: String,
    /// FQDN.
    pub fqdn: String,
    /// Settings.
    pub settings: ServerSettings,
    /// The store (roots judge client certificates).
    pub store: Arc<CertStore>,
}

/// A connector once the service has started: its certificate and TLS configuration.
#[derive(Debug)]
pub struct ConnectorRuntime {
    /// The connector's settings.
    pub connector: ReceiveConnector,
    /// How its STARTTLS certificate was chosen.
    pub selection: InboundSelection,
    /// The certificate presented in STARTTLS (`None`: STARTTLS is not advertised).
    pub certificate: Option<CertFacts>,
    /// The rustls configuration (`None` with a certificate: the handshake is refused, no common
    /// version).
    pub tls_config: Option<Arc<rustls::ServerConfig>>,
}

impl ConnectorRuntime {
    /// Whether the EHLO reply advertises STARTTLS: `Tls` in AuthMechanism and a certificate.
    pub fn offers_starttls(&self) -> bool {
        self.certificate.is_some()
            && self
                .connector
                .has_auth(super::connector::AuthMechanism::Tls)
    }
}

/// A started server: connectors with their certificates, start-up events, a session counter.
#[derive(Debug)]
pub struct RunningServer {
    /// The server.
    pub context: Arc<ServerContext>,
    /// Enabled connectors.
    pub connectors: Vec<Arc<ConnectorRuntime>>,
    /// Events logged when the service started (12014, 12016, 12018, 15004, 15006).
    pub start_events: Vec<WindowsEvent>,
    seed: u64,
    sessions: AtomicU64,
}

/// Errors starting a server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A connector's TLS configuration could not be built.
    #[error("{connector}: {source}")]
    Tls {
        /// The connector.
        connector: String,
        /// What went wrong.
        #[source]
        source: ReceiveTlsError,
    },
    /// A connector's settings are invalid.
    #[error(transparent)]
    Connector(#[from] super::connector::ReceiveConnectorError),
}

impl ReceiveServer {
    /// A server with one `Default Frontend <name>` connector and default settings.
    pub fn new(name: &str, fqdn: &str, store: Arc<CertStore>) -> Self {
        Self {
            name: name.into(),
            fqdn: fqdn.into(),
            store,
            connectors: vec![ReceiveConnector::default_frontend(name)],
            settings: ServerSettings::default(),
        }
    }

    /// `Get-ReceiveConnector | Format-List` rows of this server.
    pub fn listing_rows(&self) -> Vec<ReceiveConnectorRow> {
        self.connectors
            .iter()
            .map(ReceiveConnector::listing_row)
            .collect()
    }

    /// Starts the transport service at `now`: validates the connectors, selects their
    /// certificates, builds their TLS configurations and logs the start-up events. `seed` makes
    /// session ids reproducible.
    ///
    /// # Errors
    /// An invalid connector, or a certificate rustls refuses.
    pub fn start(&self, now: OffsetDateTime, seed: u64) -> Result<RunningServer, StartError> {
        let mut start_events = Vec::new();
        let mut connectors = Vec::new();
        for c in self.connectors.iter().filter(|c| c.enabled) {
            c.validate()?;
            let selection =
                select_inbound(&self.store, c, &self.fqdn, &self.settings.selection, now);
            start_events.extend(selection.events.iter().cloned());
            let entry = selection.chosen(&self.store);
            let tls_config = match entry {
                Some(e) => server_config(&self.store, e, self.settings.tls).map_err(|source| {
                    StartError::Tls {
                        connector: c.name.clone(),
                        source,
                    }
                })?,
                None => None,
            };
            connectors.push(Arc::new(ConnectorRuntime {
                connector: c.clone(),
                certificate: entry.map(|e| e.facts.clone()),
                selection,
                tls_config,
            }));
        }
        if let Some(bp) = &self.settings.back_pressure {
            let role = self
                .connectors
                .first()
                .map(|c| c.transport_role)
                .unwrap_or(super::connector::TransportRole::FrontendTransport);
            let origin = EventOrigin::for_role(role, &self.fqdn, now);
            let line = format!(
                "Used disk space[{}] = 99% [High] [Normal=95% MediumHigh=97% High=99%]",
                bp.path
            );
            start_events.push(events::resource_pressure_increased(
                &origin, "Medium", "High", &line,
            ));
            start_events.push(events::disk_space_back_pressure(&origin, &bp.path));
        }
        Ok(RunningServer {
            context: Arc::new(ServerContext {
                name: self.name.clone(),
                fqdn: self.fqdn.clone(),
                settings: self.settings.clone(),
                store: Arc::clone(&self.store),
            }),
            connectors,
            start_events,
            seed,
            sessions: AtomicU64::new(0),
        })
    }
}

impl RunningServer {
    /// The connector that serves `peer`: among enabled connectors, the one whose
    /// `RemoteIPRanges` holds the most specific range containing it (bindings are not compared:
    /// the lab's listener stands in for every binding). `None`: no connector serves it.
    pub fn connector_for(&self, peer: IpAddr) -> Option<Arc<ConnectorRuntime>> {
        self.connectors
            .iter()
            .filter_map(|c| c.connector.best_range_for(peer).map(|size| (size, c)))
            .min_by_key(|(size, _)| *size)
            .map(|(_, c)| Arc::clone(c))
    }

    /// The next session id: 16 uppercase hex digits, `08DD` then a counter mixed with the seed.
    pub fn next_session_id(&self) -> String {
        let n = self.sessions.fetch_add(1, Ordering::Relaxed);
        let mixed = mix(self.seed ^ mix(n.wrapping_add(0x5E55_10AD)));
        format!("08DD{:012X}", mixed & 0xFFFF_FFFF_FFFF)
    }

    /// Opens a session for a connection from `peer` to `local` at `now` (the banner is its
    /// first action). `None`: no connector serves `peer` (the driver closes the connection).
    pub fn open_session(
        &self,
        local: SocketAddr,
        peer: SocketAddr,
        now: OffsetDateTime,
    ) -> Option<ReceiveSession> {
        let connector = self.connector_for(peer.ip())?;
        Some(ReceiveSession::new(
            Arc::clone(&self.context),
            connector,
            self.next_session_id(),
            local,
            peer,
            now,
        ))
    }
}

/// SplitMix64's finaliser: a cheap, well-spread mix for ids.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
