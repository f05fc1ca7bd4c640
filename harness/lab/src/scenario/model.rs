//! The scenario file's data model (serde). Every table denies unknown keys; every key has a
//! default except where a scenario would make no sense without it. scenarios/README.md documents
//! the same shape with a full example.
//!
//! The on-premises tables reuse the lab's own types: [`CertDescription`] for
//! `[[onprem.certificates]]`, [`AuthorityDescription`] for `[onprem.authorities.<name>]`,
//! [`SendConnector`] for `[onprem.send_connector]`, [`TransportSettings`] for
//! `[onprem.transport]`, [`SchannelSettings`] and [`SelectionSettings`]; `[eop]` is exactly
//! [`EopConfig`] and `[[faults]]` exactly [`Fault`].
//!
//! Three keys the reused types do not know are taken out by the loader before serde reads the
//! tree: `installed` in `[[onprem.certificates]]` ([`OnPrem::not_installed`]),
//! `certificate_cache` in `[onprem.transport]` ([`OnPrem::certificate_cache`]) and
//! `tls_certificate_name = { cert = "name" }` (in the connector and in `set_send_connector`).
//! `[[changes]]` is the admin's timeline ([`ChangeSpec`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use hybridlab_model::attribution::VerdictKind;
use hybridlab_model::timespan::TimeSpan;
use mock_eop::config::EopConfig;
use mock_eop::fault::Fault;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use hybridlab_model::exchange::{ExchangeVersion, QueueStatus};
use hybridlab_model::size::ByteSize;
use hybridlab_onprem::certstore::{AuthorityDescription, CertDescription};
use hybridlab_onprem::connector::SendConnector;
use hybridlab_onprem::resolver::ConnectFailure;
use hybridlab_onprem::schannel::SchannelSettings;
use hybridlab_onprem::selection::SelectionSettings;
use hybridlab_onprem::server::ServerIdentity;
use hybridlab_onprem::transport::CertificateCache;
use hybridlab_onprem::transport::TransportSettings;

/// The default run start: a fixed epoch so artefacts are the same from run to run (except key
/// material).
pub const DEFAULT_START: OffsetDateTime = time::macros::datetime!(2026-05-02 06:30:00 UTC);

/// One scenario: what the on-premises side holds, what EOP holds, the faults, the messages, how
/// long to run, and what must come out.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scenario {
    /// `extend = "base.toml"` (consumed by the loader; kept for reference).
    pub extend: Option<String>,
    /// `[scenario]`: identity and description.
    pub scenario: Meta,
    /// `[onprem]`: the sending Exchange server.
    pub onprem: OnPrem,
    /// `[eop]`: the mock Exchange Online Protection endpoint and tenants (in the
    /// `exo-to-onprem` direction: the tenant's outbound connector and `[eop.delivery]`).
    pub eop: EopConfig,
    /// `[receive]`: the on-premises receive side (`exo-to-onprem` scenarios only).
    pub receive: Option<super::exo::model::ReceiveSpec>,
    /// `[exo]`: where Exchange Online's sessions come from (`exo-to-onprem` scenarios only).
    pub exo: super::exo::model::ExoSpec,
    /// `[[faults]]`: scripted faults of the mock.
    pub faults: Vec<Fault>,
    /// `[[messages]]`: what to send.
    pub messages: Vec<MessageSpec>,
    /// `[[changes]]`: what the admin runs while the queue runs, at times relative to the start.
    pub changes: Vec<ChangeSpec>,
    /// `[run]`: how long and how.
    pub run: RunSettings,
    /// `[expect]`: what must come out.
    pub expect: Expectations,
    /// Where the scenario came from (filled by the loader).
    #[serde(skip)]
    pub source: Source,
}

/// Where a loaded scenario came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    /// The scenario file that was loaded (the last file of the chain).
    pub path: PathBuf,
    /// The files merged into it, base first, the scenario file last.
    pub chain: Vec<PathBuf>,
    /// `tls_certificate_name = { cert = "name" }`, resolved when the store is built.
    pub tls_certificate_ref: Option<String>,
}

/// `[scenario]`: what the case is called, how it is described, and the settings that shape every
/// run of it (seed, Exchange version).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Meta {
    /// Stable id (default: the file name without `.toml`).
    pub id: String,
    /// The case in one line, as the verdict table and `hybridlab explain` head it.
    pub title: String,
    /// Topic and failure-mode tags (`certificates`, `FM-01`).
    pub tags: Vec<String>,
    /// Which way the mail flows: `onprem-to-exo` (default) or `exo-to-onprem`.
    pub direction: super::exo::model::Direction,
    /// What the admin sees and why.
    pub description: String,
    /// Seed for every random choice (probabilistic faults, ids).
    pub seed: u64,
    /// Exchange version of the sending server (LastError wording): 2010, 2013, 2016, 2019, SE.
    pub exchange_version: ExchangeVersion,
}

impl Default for Meta {
    fn default() -> Self {
        Self {
            id: String::new(),
            title: String::new(),
            tags: Vec::new(),
            direction: super::exo::model::Direction::OnpremToExo,
            description: String::new(),
            seed: 1,
            exchange_version: ExchangeVersion::Exchange2019,
        }
    }
}

/// `[onprem]`: the sending Exchange server, its certificates and authorities, its send connector,
/// transport and SChannel settings, and what its DNS answers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OnPrem {
    /// `[onprem.server]`: NetBIOS name, FQDN, role (the version comes from
    /// `[scenario] exchange_version`).
    pub server: ServerIdentity,
    /// The address the server sends from (what EOP sees; within 127.0.0.0/8 in the lab).
    pub source_address: IpAddr,
    /// `[onprem.authorities.<name>]`: lab certificate authorities (roots and intermediates).
    pub authorities: BTreeMap<String, AuthorityDescription>,
    /// `[[onprem.certificates]]`: `Cert:\LocalMachine\My`, by scenario-local name.
    pub certificates: Vec<CertDescription>,
    /// Whether `LocalMachine\Root` holds the root of EOP's chain (`false`: FM-11).
    pub trust_eop_root: bool,
    /// `[onprem.send_connector]`. `tls_certificate_name` may be `{ cert = "name" }`.
    pub send_connector: Option<SendConnector>,
    /// `[onprem.transport]`: `Set-TransportService` retry settings (`role` picks the defaults).
    pub transport: Option<TransportSettings>,
    /// `[onprem.schannel]`: the operating system's TLS client settings.
    pub schannel: SchannelSettings,
    /// `[onprem.selection]`: certificate selection knobs (duplicate policy...).
    pub selection: SelectionSettings,
    /// `[onprem.dns]`: what host names resolve to (default: every smart host and MX host to the
    /// mock).
    pub dns: BTreeMap<String, DnsEntry>,
    /// `[onprem.transport] certificate_cache` (taken out by the loader): how long the transport
    /// keeps a certificate selected by `TlsCertificateName` \[U\].
    #[serde(skip)]
    pub certificate_cache: CertificateCache,
    /// Certificates declared with `installed = false` (taken out by the loader): generated, but
    /// absent from the store until a `[[changes]]` entry installs them.
    #[serde(skip)]
    pub not_installed: Vec<String>,
}

impl Default for OnPrem {
    fn default() -> Self {
        Self {
            server: ServerIdentity::default(),
            source_address: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 5)),
            authorities: BTreeMap::new(),
            certificates: Vec::new(),
            trust_eop_root: true,
            send_connector: None,
            transport: None,
            schannel: SchannelSettings::default(),
            selection: SelectionSettings::default(),
            dns: BTreeMap::new(),
            certificate_cache: CertificateCache::default(),
            not_installed: Vec::new(),
        }
    }
}

/// What a host name resolves to in the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DnsEntry {
    /// The name resolves to the embedded mock EOP.
    Mock,
    /// No such name (`SMTPSEND.DNS.NonExistentDomain`).
    Nxdomain,
    /// The DNS server fails (`ErrorRetry`).
    ServerFailure,
    /// The name resolves, TCP connect times out (Winsock 10060).
    Unreachable,
    /// The name resolves, TCP connect is refused (Winsock 10061).
    Refused,
}

impl DnsEntry {
    /// The connect failure, for the two unreachable kinds.
    pub fn connect_failure(self) -> Option<ConnectFailure> {
        match self {
            Self::Unreachable => Some(ConnectFailure::TimedOut),
            Self::Refused => Some(ConnectFailure::Refused),
            _ => None,
        }
    }
}

/// One `[[messages]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MessageSpec {
    /// The envelope sender (MAIL FROM).
    pub from: String,
    /// The envelope recipients (RCPT TO); the first one's domain picks the next hop.
    pub to: Vec<String>,
    /// The Subject header.
    pub subject: String,
    /// The plain-text body (line ends become CRLF); default: a short lab text.
    pub body: Option<String>,
    /// Pad the body so the MIME text is at least this big (`"40 MB"`, `"2000000"`).
    pub size: Option<ByteSize>,
    /// Extra header fields, in order (`[["X-Custom", "1"]]`).
    pub headers: Vec<(String, String)>,
    /// Add the organization headers (`X-MS-Exchange-Organization-AuthAs: Internal`...) that a
    /// hybrid connector turns into CrossPremises headers.
    pub org_headers: bool,
    /// How many copies to submit.
    pub count: u32,
}

impl Default for MessageSpec {
    fn default() -> Self {
        Self {
            from: "alice@contoso.com".into(),
            to: vec!["bob@contoso.mail.onmicrosoft.com".into()],
            subject: "hybridlab test message".into(),
            body: None,
            size: None,
            headers: Vec::new(),
            org_headers: true,
            count: 1,
        }
    }
}

/// One `[[changes]]` entry: at `at` (from the run start) the admin runs exactly one command.
/// Entries run in time order (as listed when two have the same `at`), each before any delivery
/// attempt at or after its time.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeSpec {
    /// When, from the run start (`"30m"`, `"00:30:00"`); at most `[run] duration`.
    pub at: TimeSpan,
    /// `Remove-Item Cert:\LocalMachine\My\<thumbprint>` of this certificate (scenario-local name).
    #[serde(default)]
    pub remove_certificate: Option<String>,
    /// Import this certificate (declared with `installed = false`); it is enumerated last unless
    /// it has an `order`.
    #[serde(default)]
    pub install_certificate: Option<String>,
    /// `Set-SendConnector` with any subset of `[onprem.send_connector]`'s keys.
    #[serde(default)]
    pub set_send_connector: Option<ConnectorChange>,
    /// `Restart-Service MSExchangeTransport` (`true`).
    #[serde(default)]
    pub restart_transport: Option<bool>,
    /// `Retry-Queue` (`true`).
    #[serde(default)]
    pub retry_queue: Option<bool>,
    /// `Set-ReceiveConnector` on a receive server (`exo-to-onprem`): `server`, optionally
    /// `name`, and any receive connector key.
    #[serde(default)]
    pub set_receive_connector: Option<super::exo::model::ReceiveConnectorChange>,
    /// The receive server a certificate change or restart applies to (`exo-to-onprem`; default:
    /// every server).
    #[serde(default)]
    pub server: Option<String>,
}

/// What a `[[changes]]` entry does, by name.
#[derive(Debug, Clone, Copy)]
pub enum ChangeAction<'a> {
    /// `remove_certificate = "name"`: the certificate with this scenario-local name leaves the
    /// store.
    RemoveCertificate(&'a str),
    /// `install_certificate = "name"`: the certificate with this name (declared with
    /// `installed = false`) enters the store.
    InstallCertificate(&'a str),
    /// `set_send_connector = { ... }`: the keys as written and the connector they give.
    SetSendConnector(&'a ConnectorChange),
    /// `restart_transport = true`: the transport restarts (its certificate cache is cleared).
    RestartTransport,
    /// `retry_queue = true`: the queue retries now instead of at its next retry time.
    RetryQueue,
    /// `set_receive_connector = { server = .., ... }`: a receive connector changes.
    SetReceiveConnector(&'a super::exo::model::ReceiveConnectorChange),
}

impl ChangeSpec {
    /// The action keys present in the entry, in schema order.
    pub fn action_keys(&self) -> Vec<&'static str> {
        [
            ("remove_certificate", self.remove_certificate.is_some()),
            ("install_certificate", self.install_certificate.is_some()),
            ("set_send_connector", self.set_send_connector.is_some()),
            ("restart_transport", self.restart_transport.is_some()),
            ("retry_queue", self.retry_queue.is_some()),
            (
                "set_receive_connector",
                self.set_receive_connector.is_some(),
            ),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(k, _)| k)
        .collect()
    }

    /// The action (the loader guarantees exactly one; `None` only for an unvalidated entry).
    pub fn action(&self) -> Option<ChangeAction<'_>> {
        if let Some(n) = &self.remove_certificate {
            Some(ChangeAction::RemoveCertificate(n))
        } else if let Some(n) = &self.install_certificate {
            Some(ChangeAction::InstallCertificate(n))
        } else if let Some(c) = &self.set_send_connector {
            Some(ChangeAction::SetSendConnector(c))
        } else if self.restart_transport == Some(true) {
            Some(ChangeAction::RestartTransport)
        } else if self.retry_queue == Some(true) {
            Some(ChangeAction::RetryQueue)
        } else {
            self.set_receive_connector
                .as_ref()
                .map(ChangeAction::SetReceiveConnector)
        }
    }
}

/// `set_send_connector = { ... }`: the keys as written, and the connector they give (filled by the
/// loader, which applies every earlier change in time order and validates the result).
#[derive(Debug, Clone, Default)]
pub struct ConnectorChange {
    /// The keys as written, `tls_certificate_name = { cert = "name" }` left out (see
    /// [`Self::certificate`]).
    pub keys: toml::Table,
    /// `tls_certificate_name = { cert = "name" }`: the certificate whose `<I>issuer<S>subject` the
    /// connector gets.
    pub certificate: Option<String>,
    /// The whole connector after this change; its `tls_certificate_name` is resolved at run time
    /// from [`Self::connector_certificate`] when that is set.
    pub connector: Option<Box<SendConnector>>,
    /// The certificate (scenario-local name) the connector's `TlsCertificateName` refers to after
    /// this change, when it is a reference rather than a literal.
    pub connector_certificate: Option<String>,
}

impl<'de> Deserialize<'de> for ConnectorChange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self {
            keys: toml::Table::deserialize(d)?,
            ..Self::default()
        })
    }
}

/// Which transport carries the sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportKind {
    /// In-memory streams under paused virtual time (default: two days replay in milliseconds).
    #[default]
    Memory,
    /// Real loopback sockets with the source address bound; real time inside sessions, virtual
    /// time jumps between attempts.
    Tcp,
}

/// A `--transport` value that names no [`TransportKind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown transport {0:?}; expected memory or tcp")]
pub struct UnknownTransport(
    /// The value as given (`"udp"`).
    pub String,
);

impl std::str::FromStr for TransportKind {
    type Err = UnknownTransport;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "memory" => Ok(Self::Memory),
            "tcp" => Ok(Self::Tcp),
            other => Err(UnknownTransport(other.to_string())),
        }
    }
}

impl std::fmt::Display for TransportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Memory => "memory",
            Self::Tcp => "tcp",
        })
    }
}

/// `[run]`: how long the queue runs, on which transport, from which start time, and its bounds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSettings {
    /// Virtual time to run (`"30m"`, `"2d"`, `"2.01:00:00"`); the run also stops when the queue is
    /// empty.
    pub duration: TimeSpan,
    /// Memory (default) or TCP; `hybridlab run --transport` overrides.
    pub transport: TransportKind,
    /// The lab clock's start (RFC 3339; default 2026-05-02T06:30:00Z).
    #[serde(with = "time::serde::rfc3339")]
    pub start: OffsetDateTime,
    /// The address the send log shows for the mock in memory runs (in 52.101.0.0/16, where
    /// current EOP MX addresses are: the domain reference, section 11.6).
    pub eop_address: IpAddr,
    /// The scenario needs virtual time inside a session (long stalls, timeouts): over TCP it is
    /// skipped rather than waited out in real time.
    pub memory_only: bool,
    /// Upper bound on queue wake-ups (every loop is bounded).
    pub max_steps: usize,
}

impl Default for RunSettings {
    fn default() -> Self {
        Self {
            duration: TimeSpan::from_secs(30 * 60),
            transport: TransportKind::Memory,
            start: DEFAULT_START,
            eop_address: IpAddr::V4(Ipv4Addr::new(52, 101, 68, 13)),
            memory_only: false,
            max_steps: 2_000,
        }
    }
}

/// A string or a list of strings (`log = "x"` or `log = ["x", "y"]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct OneOrMany(pub Vec<String>);

impl OneOrMany {
    /// The strings as written: one for `key = "x"`, none when the key is absent.
    pub fn items(&self) -> &[String] {
        &self.0
    }
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged, expecting = "a string or a list of strings")]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        Ok(Self(match Raw::deserialize(d)? {
            Raw::One(s) => vec![s],
            Raw::Many(v) => v,
        }))
    }
}

/// `[expect]`: every key is optional; each one given is checked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Expectations {
    /// Messages the mock accepted (answered 250).
    pub delivered: Option<u32>,
    /// Messages that left the queue with an NDR (a 5xx, OverAdvertisedSize, or expiry).
    pub rejected: Option<u32>,
    /// Text each of which must appear in some NDR's reason.
    pub ndr: OneOrMany,
    /// Whether a delay DSN went out.
    pub delay_dsn: Option<bool>,
    /// `Get-Queue` Status at the end of the run.
    pub queue_status: Option<QueueStatus>,
    /// Text the queue's LastError must contain (the last one set during the run).
    pub last_error: OneOrMany,
    /// Delivery attempts (sessions, including failed connects).
    pub attempts: Option<u32>,
    /// Send-protocol-log lines (`event,data,context`, substring match) that must appear.
    pub log: OneOrMany,
    /// Send-protocol-log text that must not appear anywhere.
    pub log_absent: OneOrMany,
    /// The certificate (scenario-local name) whose thumbprint the send log shows as the sending
    /// certificate in every session; a list gives the certificates in the order the sessions
    /// show them (`["twin-nokey", "good"]`: first the twin, then, after a fix, the keyed one).
    pub thumbprint_logged: OneOrMany,
    /// Transport events logged during selection (12014, 12016).
    pub events: Vec<u32>,
    /// The mock's attribution verdict (the last session that reached one).
    pub attribution: Option<VerdictKind>,
    /// The inbound connector EOP attributed the mail to.
    pub connector: Option<String>,
    /// Whether EOP honoured the CrossPremises headers of the accepted message(s).
    pub cross_premises_honoured: Option<bool>,
    /// The diagnosis' top finding id (docs/findings.md), from the artefacts the lab wrote.
    pub top_finding: Option<String>,
    /// No finding of severity error besides the top one.
    pub no_other_error_finding: bool,
    /// No finding of severity error at all (healthy runs).
    pub no_error_finding: bool,
    /// `exo-to-onprem`: `Get-MessageTrace` Status of every message at the end (`Pending`,
    /// `Delivered`, `Failed`).
    pub trace_status: Option<String>,
    /// `exo-to-onprem`: text each of which must appear in some `Defer`/`Fail` event of
    /// `Get-MessageTraceDetail` (the LED).
    pub trace_detail: OneOrMany,
    /// `exo-to-onprem`: RECV-log lines (`event,data,context`, substring match) that must appear.
    pub recv_log: OneOrMany,
    /// `exo-to-onprem`: RECV-log text that must not appear anywhere.
    pub recv_log_absent: OneOrMany,
    /// `exo-to-onprem`: connections the perimeter or a server turned away.
    pub refused_connections: Option<u32>,
    /// `exo-to-onprem`: what the receiving session decided for EOP's client certificate
    /// (`AcceptCloudServicesMail`, `None` or `NoRemoteCertificate`, as the RECV log's
    /// `TlsDomainCapabilities='..'` or `Status='..'`), in every session that got that far.
    pub tls_domain_capabilities: Option<String>,
}

impl Expectations {
    /// Whether no key states an expectation (every key absent, empty or `false`): such a
    /// scenario could never fail, and the loader refuses it. The pattern names every key, so a
    /// new key does not compile until it is added here (and to the checkers in `expect.rs`).
    pub fn is_empty(&self) -> bool {
        let Self {
            delivered,
            rejected,
            ndr,
            delay_dsn,
            queue_status,
            last_error,
            attempts,
            log,
            log_absent,
            thumbprint_logged,
            events,
            attribution,
            connector,
            cross_premises_honoured,
            top_finding,
            no_other_error_finding,
            no_error_finding,
            trace_status,
            trace_detail,
            recv_log,
            recv_log_absent,
            refused_connections,
            tls_domain_capabilities,
        } = self;
        delivered.is_none()
            && rejected.is_none()
            && ndr.items().is_empty()
            && delay_dsn.is_none()
            && queue_status.is_none()
            && last_error.items().is_empty()
            && attempts.is_none()
            && log.items().is_empty()
            && log_absent.items().is_empty()
            && thumbprint_logged.items().is_empty()
            && events.is_empty()
            && attribution.is_none()
            && connector.is_none()
            && cross_premises_honoured.is_none()
            && top_finding.is_none()
            && !no_other_error_finding
            && !no_error_finding
            && trace_status.is_none()
            && trace_detail.items().is_empty()
            && recv_log.items().is_empty()
            && recv_log_absent.items().is_empty()
            && refused_connections.is_none()
            && tls_domain_capabilities.is_none()
    }
}
