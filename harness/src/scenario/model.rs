//! The scenario file's data model (serde). Every table denies unknown keys; every key has a
//! default except where a scenario would make no sense without it. scenarios/README.md documents
//! the same shape with a full example.
//!
//! The on-premises tables reuse the lab's own types: [`CertDescription`] for
//! `[[onprem.certificates]]`, [`AuthorityDescription`] for `[onprem.authorities.<name>]`,
//! [`SendConnector`] for `[onprem.send_connector]`, [`TransportSettings`] for
//! `[onprem.transport]`, [`SchannelSettings`] and [`SelectionSettings`]; `[eop]` is exactly
//! [`EopConfig`] and `[[faults]]` exactly [`Fault`].

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use mock_eop::attribution::VerdictKind;
use mock_eop::config::{EopConfig, TimeSpan};
use mock_eop::fault::Fault;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::certstore::{AuthorityDescription, CertDescription};
use crate::connector::{
    ByteQuantity, SchannelSettings, SendConnector, ServerIdentity, TransportSettings,
};
use crate::exchange::{ExchangeVersion, QueueStatus};
use crate::resolver::ConnectFailure;
use crate::selection::SelectionSettings;

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
    /// `[eop]`: the mock Exchange Online Protection endpoint and tenants.
    pub eop: EopConfig,
    /// `[[faults]]`: scripted faults of the mock.
    pub faults: Vec<Fault>,
    /// `[[messages]]`: what to send.
    pub messages: Vec<MessageSpec>,
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
    /// The scenario file.
    pub path: PathBuf,
    /// The files merged into it, base first, the scenario file last.
    pub chain: Vec<PathBuf>,
    /// `tls_certificate_name = { cert = "name" }`, resolved when the store is built.
    pub tls_certificate_ref: Option<String>,
}

/// `[scenario]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Meta {
    /// Stable id (default: the file name without `.toml`).
    pub id: String,
    /// One line.
    pub title: String,
    /// Topic and failure-mode tags (`certificates`, `FM-01`).
    pub tags: Vec<String>,
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
            description: String::new(),
            seed: 1,
            exchange_version: ExchangeVersion::Exchange2019,
        }
    }
}

/// `[onprem]`.
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
        }
    }
}

/// What a host name resolves to in the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DnsEntry {
    /// The embedded mock EOP.
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
    /// Envelope sender.
    pub from: String,
    /// Envelope recipients.
    pub to: Vec<String>,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub body: Option<String>,
    /// Pad the body so the MIME text is at least this big (`"40 MB"`, `"2000000"`).
    pub size: Option<ByteQuantity>,
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

impl std::str::FromStr for TransportKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "memory" => Ok(Self::Memory),
            "tcp" => Ok(Self::Tcp),
            other => Err(format!(
                "unknown transport {other:?}; expected memory or tcp"
            )),
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

/// `[run]`.
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
    /// The address the send log shows for the mock in memory runs (EOP's range 104.47.0.0/17).
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
            eop_address: IpAddr::V4(Ipv4Addr::new(104, 47, 10, 36)),
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
    /// The strings.
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
    /// certificate.
    pub thumbprint_logged: Option<String>,
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
}
