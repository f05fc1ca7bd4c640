//! The correlated model: what the rules look at.
//!
//! The readers hand over sessions, rows and lines; this module joins them the way an expert would
//! on paper: each send session with its connector, the certificate it presented, its TLS outcome,
//! the replies and the idle time before the disconnect; each certificate thumbprint with every
//! listing that shows it (is it visible to `Get-ExchangeCertificate`? does it have a key? is there
//! a keyed twin with the same `<I>issuer<S>subject`?); each connector with the certificates its
//! `TlsCertificateName` resolves to at the reference time; each queue with its connector.
//!
//! Nothing here decides anything: the rules do (see `rules`).
//!
//! - `store`: the certificate store merged over every listing ([`Store`], [`StoreCert`]).
//! - `connectors`: send connectors ([`ConnectorView`]) and which one a domain or queue belongs to.
//! - `session`: one send session with the indices of its telling events ([`SessionView`]).
//! - `queues`: queues and messages with a `LastError`, failed NDR recipients.
//! - `eop`: the mock EOP's session records joined with the send sessions ([`EopView`]).
//! - `receive`: one receive session (the other direction) with the indices of its telling events
//!   ([`ReceiveSessionView`]: EHLO reply and STARTTLS offered, certificates, TLS outcome,
//!   TlsDomainCapabilities, errors sent).
//! - `servers`: which server each artefact belongs to and the per-server views
//!   ([`ServerView`]: store, sessions, queues, connectors, events), with the merged view kept
//!   for single-server collections. The rules ask through [`Model::servers`],
//!   [`Model::store_of`], [`Model::session_server`], [`Model::on_server`] and friends.

mod connectors;
mod eop;
mod queues;
mod receive;
mod servers;
mod session;
mod store;

use hybridlab_artefacts::Artefacts;
use hybridlab_artefacts::connectivity::ConnectivityNote;
use hybridlab_artefacts::connectors::InboundConnectorRow;
use hybridlab_artefacts::protocol_log::LogKind;
use hybridlab_artefacts::ps::{Parsed, RowEvidence};
use hybridlab_artefacts::text::Evidence;
use time::{Duration, OffsetDateTime};

pub(crate) use self::connectors::{ConnectorView, is_eop_host, is_eop_ip};
pub(crate) use self::eop::EopView;
pub(crate) use self::queues::{NdrView, QueueView};
pub(crate) use self::receive::ReceiveSessionView;
pub(crate) use self::servers::ServerView;
pub(crate) use self::session::{ChainProblem, SessionView};
pub(crate) use self::store::{Store, StoreCert};

/// The connector inactivity timeout when a listing does not show one (Exchange's default).
pub(crate) const DEFAULT_INACTIVITY: Duration = Duration::minutes(10);

/// One line to quote, with the time it happened when known (for "most recent first").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ev {
    pub file: String,
    pub line: usize,
    pub text: String,
    pub at: Option<OffsetDateTime>,
}

impl Ev {
    pub(crate) fn of(e: &Evidence, at: Option<OffsetDateTime>) -> Self {
        Self {
            file: base_name(&e.file).to_string(),
            line: e.line,
            text: e.text.clone(),
            at,
        }
    }

    pub(crate) fn to_evidence(&self) -> Evidence {
        Evidence {
            file: self.file.as_str().into(),
            line: self.line,
            text: self.text.clone(),
        }
    }
}

/// The file name without its folders (either separator).
pub(crate) fn base_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// A property line of a listed row.
pub(crate) fn prop_ev(ev: &RowEvidence, name: &str) -> Option<Ev> {
    ev.prop(name).map(|e| Ev::of(e, None))
}

/// The first line of a listed row.
pub(crate) fn row_ev(ev: &RowEvidence) -> Option<Ev> {
    ev.first.as_ref().map(|e| Ev::of(e, None))
}

/// Thumbprints compare case-insensitively, without blanks.
pub(crate) fn norm_thumb(t: &str) -> String {
    t.chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Whether a thumbprint is already in the normal form (the logs' and listings' usual form).
fn is_norm_thumb(t: &str) -> bool {
    t.bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

/// Every input joined: sessions with their connector and certificates, the merged store, queues,
/// NDRs and the EOP side's records.
#[derive(Debug)]
pub(crate) struct Model<'a> {
    pub a: &'a Artefacts,
    /// The reference time (conventions: newest log time, else `--now`, else queue times).
    pub as_of: Option<OffsetDateTime>,
    pub store: Store,
    pub connectors: Vec<ConnectorView<'a>>,
    /// Send sessions, in the reader's order (by first line time).
    pub sessions: Vec<SessionView<'a>>,
    /// Queues and messages with a LastError.
    pub queues: Vec<QueueView<'a>>,
    /// Failed recipients of the non-delivery reports.
    pub ndrs: Vec<NdrView<'a>>,
    /// The mock EOP's session records (the Exchange Online side), joined with the send sessions.
    pub eop: Vec<EopView<'a>>,
    /// The server name, when a listing or the logs tell it (the only server, else the first
    /// named).
    pub server: Option<String>,
    /// Every server the artefacts name, with what belongs to each (empty when none is named).
    pub servers: Vec<ServerView>,
    /// For each of `sessions`, the server it was logged on, when known.
    pub session_servers: Vec<Option<String>>,
    /// Receive sessions (the other direction), in the reader's order.
    pub receive_sessions: Vec<ReceiveSessionView<'a>>,
}

/// The newest time in the protocol and connectivity logs.
pub(crate) fn newest_log_time(a: &Artefacts) -> Option<OffsetDateTime> {
    let p = a
        .protocol
        .sessions
        .iter()
        .filter_map(|s| s.session.events.iter().map(|e| e.at).max())
        .max();
    let c = a.connectivity.iter().map(|(e, _)| e.at).max();
    p.max(c)
}

/// The reference time: `--now`, else the newest log time, else the newest queue retry, message
/// arrival or NDR date.
fn reference_time(a: &Artefacts, now: Option<OffsetDateTime>) -> Option<OffsetDateTime> {
    now.or_else(|| newest_log_time(a)).or_else(|| {
        a.queues
            .iter()
            .filter_map(|q| q.row.last_retry_time)
            .chain(a.messages.iter().filter_map(|m| m.row.date_received))
            .chain(a.ndrs.iter().filter_map(|n| n.date))
            .max()
    })
}

/// The server name: the only server the artefacts name, else the `SERVER\` prefix of a queue
/// identity, else a send connector's first source transport server.
fn server_of(a: &Artefacts, names: &[String]) -> Option<String> {
    if let [only] = names {
        return Some(only.clone());
    }
    a.queues
        .iter()
        .filter_map(|q| q.row.identity.split_once('\\').map(|(s, _)| s.to_string()))
        .find(|s| !s.is_empty())
        .or_else(|| {
            a.send_connectors
                .iter()
                .flat_map(|c| c.row.source_transport_servers.iter())
                .next()
                .cloned()
        })
}

impl<'a> Model<'a> {
    pub(crate) fn build(a: &'a Artefacts, now: Option<OffsetDateTime>) -> Self {
        let mut connectors = connectors::from_listings(a);
        let mut sessions: Vec<SessionView<'a>> = a
            .protocol
            .sessions
            .iter()
            .filter(|s| s.kind != Some(LogKind::Receive))
            .map(SessionView::build)
            .collect();
        connectors::attach_sessions(&mut connectors, &mut sessions);
        let queues = queues::queue_views(a, &connectors, &sessions);
        let ndrs = queues::ndr_views(a, &connectors);
        let eop = eop::eop_views(a, &sessions);
        let session_servers: Vec<Option<String>> = sessions
            .iter()
            .map(|s| servers::session_server(a, s.ps))
            .collect();
        let queue_servers: Vec<Option<&str>> = queues.iter().map(|q| q.server).collect();
        let receive_sessions: Vec<ReceiveSessionView<'a>> = a
            .protocol
            .sessions
            .iter()
            .filter(|s| s.kind == Some(LogKind::Receive))
            .map(|s| ReceiveSessionView::build(s, servers::session_server(a, s)))
            .collect();
        let receive_servers: Vec<Option<&str>> = receive_sessions
            .iter()
            .map(|r| r.server.as_deref())
            .collect();
        let servers = servers::build(a, &session_servers, &queue_servers, &receive_servers);
        let names: Vec<String> = servers.iter().map(|s| s.name.clone()).collect();
        Self {
            a,
            as_of: reference_time(a, now),
            store: Store::build(a),
            connectors,
            sessions,
            queues,
            ndrs,
            eop,
            server: server_of(a, &names),
            servers,
            session_servers,
            receive_sessions,
        }
    }

    /// The mock EOP's record of a send session (by index into `sessions`).
    pub(crate) fn eop_of(&self, si: usize) -> Option<&EopView<'a>> {
        self.eop.iter().find(|e| e.session == Some(si))
    }

    /// The index of a send session.
    pub(crate) fn session_index(&self, s: &SessionView<'_>) -> Option<usize> {
        self.sessions.iter().position(|x| std::ptr::eq(x.ps, s.ps))
    }

    pub(crate) fn connector_of(&self, s: &SessionView<'_>) -> Option<&ConnectorView<'a>> {
        s.connector.map(|i| &self.connectors[i])
    }

    /// Sessions of a connector.
    pub(crate) fn sessions_of<'m>(
        &'m self,
        ci: usize,
    ) -> impl Iterator<Item = &'m SessionView<'a>> + 'm {
        self.connectors[ci]
            .sessions
            .iter()
            .map(move |&i| &self.sessions[i])
    }

    /// Queues attributed to a connector.
    pub(crate) fn queues_of<'m>(
        &'m self,
        ci: usize,
    ) -> impl Iterator<Item = &'m QueueView<'a>> + 'm {
        self.queues.iter().filter(move |q| q.connector == Some(ci))
    }

    /// The `Get-Queue` row of connector `ci`: the one whose NextHopConnector is its GUID (or
    /// name), else one whose NextHopDomain is the next hop of a queue attributed to it, one of
    /// its address-space domains or one of its smart hosts.
    pub(crate) fn connector_queue(
        &self,
        ci: usize,
    ) -> Option<&'a Parsed<hybridlab_artefacts::queue::QueueRow>> {
        let c = self.connectors.get(ci)?;
        let hops: Vec<&str> = self.queues_of(ci).map(|q| q.next_hop).collect();
        self.a
            .queues
            .iter()
            .find(|q| {
                q.row
                    .next_hop_connector
                    .as_deref()
                    .is_some_and(|id| c.is_next_hop_connector(id))
            })
            .or_else(|| {
                self.a.queues.iter().find(|q| {
                    let hop = q.row.next_hop_domain.trim();
                    !hop.is_empty()
                        && (hops.iter().any(|h| hop.eq_ignore_ascii_case(h))
                            || c.address_domains()
                                .iter()
                                .any(|d| hop.eq_ignore_ascii_case(d))
                            || c.smart_hosts().iter().any(|h| hop.eq_ignore_ascii_case(h)))
                })
            })
    }

    /// The queue LastError lines of a connector whose LED contains any of `needles`.
    pub(crate) fn queue_evs(&self, ci: Option<usize>, needles: &[&str]) -> Vec<Ev> {
        self.queues
            .iter()
            .filter(|q| ci.is_none() || q.connector == ci || q.connector.is_none())
            .filter(|q| {
                let l = q.led().to_ascii_lowercase();
                needles.is_empty() || needles.iter().any(|n| l.contains(&n.to_ascii_lowercase()))
            })
            .filter_map(|q| q.ev.clone())
            .collect()
    }

    /// The server name for fixes (the `<SERVER>` placeholder when no listing tells it).
    pub(crate) fn server_name(&self) -> String {
        self.server
            .clone()
            .unwrap_or_else(|| "<SERVER>".to_string())
    }

    /// The connectivity events of a session, with their lines.
    pub(crate) fn connectivity_notes(
        &self,
    ) -> impl Iterator<Item = (ConnectivityNote, Ev, &'a str, &'a str)> + '_ {
        self.a.connectivity.iter().map(|(e, ev)| {
            (
                e.note(),
                Ev::of(ev, Some(e.at)),
                e.session.as_str(),
                e.destination.as_str(),
            )
        })
    }

    /// The tenant's coexistence domain (`contoso.mail.onmicrosoft.com`), when anything names it.
    pub(crate) fn tenant_domain(&self) -> Option<String> {
        self.connectors
            .iter()
            .flat_map(|c| c.address_domains())
            .find(|d| d.ends_with(".mail.onmicrosoft.com"))
            .or_else(|| {
                self.queues
                    .iter()
                    .map(|q| q.next_hop.to_ascii_lowercase())
                    .find(|d| d.ends_with(".mail.onmicrosoft.com"))
            })
            .or_else(|| {
                self.a
                    .queues
                    .iter()
                    .map(|q| q.row.next_hop_domain.to_ascii_lowercase())
                    .find(|d| d.ends_with(".mail.onmicrosoft.com"))
            })
    }

    /// Enabled Exchange Online inbound connectors of type OnPremises.
    pub(crate) fn onprem_inbound(&self) -> impl Iterator<Item = &'a Parsed<InboundConnectorRow>> {
        self.a.inbound_connectors.iter().filter(|c| {
            c.row.enabled != Some(false)
                && c.row
                    .connector_type
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case("OnPremises"))
        })
    }
}
