//! The rules: one function per finding id (or a few closely related ids), each reading the
//! correlated [`Model`] and proposing [`Draft`] findings with their evidence, explanation and fix.
//! Ranking and the "symptoms never outrank causes" suppressions happen afterwards
//! (`super::rank`).
//!
//! - [`cache`]: what changed while the transport ran (a certificate still used from the
//!   transport's cache after a change, FM-34; a certificate failure the latest sessions no longer
//!   show).
//! - [`certs`]: the local certificate (NoCredentials, UnknownCredentials, TlsCertificateName,
//!   expiry, visibility to `Get-ExchangeCertificate`, ambiguity, syntax).
//! - [`tls`]: the handshake and STARTTLS (protocol mismatch, remote validation, stripping,
//!   cleartext, the certificate EOP attributes by).
//! - [`eop`]: EOP's verdicts after the handshake (5.7.51, 5.7.64, 4.4.62, throttling, size,
//!   recipients), from the send log, the queue and the NDRs.
//! - [`eop_record`]: what only the Exchange Online side shows (the mock's session record): an
//!   untrusted client certificate chain, attribution to another tenant.
//! - [`network`]: DNS, TCP connect and real timeouts.
//! - [`lint`]: configuration warnings that need no failure.
//! - [`eop_chain`]: EOP's `454 4.7.0 ... UntrustedRoot` verdict on this server's chain, from the
//!   send log, queues, messages and NDRs.
//! - [`unexplained`]: failing mail no other rule explains, with what to collect next.
//! - [`receive`]: the other direction, Exchange Online -> on-premises (RECV logs, receive
//!   connectors, Exchange Online's verdicts).

pub(crate) mod cache;
pub(crate) mod certs;
pub(crate) mod eop;
pub(crate) mod eop_chain;
pub(crate) mod eop_record;
pub(crate) mod lint;
pub(crate) mod network;
pub(crate) mod receive;
pub(crate) mod tls;
pub(crate) mod unexplained;

use time::OffsetDateTime;

use super::model::{Ev, Model, SessionView};
use super::{FindingId, Severity};

/// How many repeated occurrences of a failure a finding quotes (most recent first).
pub(crate) const MAX_OCCURRENCES: usize = 5;

/// A finding before ranking.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    pub id: FindingId,
    /// What the finding is about (a connector, a thumbprint...), to keep one finding per subject.
    pub key: String,
    /// The connector it concerns, by index in `Model::connectors`.
    pub connector: Option<usize>,
    /// The session ids it explains.
    pub sessions: Vec<String>,
    pub evidence: Evidences,
    pub explanation: String,
    pub fix: Vec<String>,
    /// Set when the failure is history: the connector delivered in a later session and no queue
    /// holds a LastError for it. The finding is then reported as a warning.
    pub recovered: bool,
    /// Set when the failure is not on the hybrid path (a third party's server on the Internet
    /// connector): the finding is reported as a warning at most.
    pub off_hybrid: bool,
}

impl Draft {
    pub(crate) fn new(id: FindingId, key: impl Into<String>) -> Self {
        Self {
            id,
            key: key.into(),
            connector: None,
            sessions: Vec::new(),
            evidence: Evidences::default(),
            explanation: String::new(),
            fix: Vec::new(),
            recovered: false,
            off_hybrid: false,
        }
    }

    /// The severity reported: the id's, or a warning for a failure that is history.
    pub(crate) fn severity(&self) -> Severity {
        match self.id.severity() {
            Severity::Error if self.recovered || self.off_hybrid => Severity::Warning,
            s => s,
        }
    }

    /// The time of the newest evidence.
    pub(crate) fn newest(&self) -> Option<OffsetDateTime> {
        self.evidence.all().filter_map(|e| e.at).max()
    }

    /// Quotes occurrence `k` of a repeated failure (0 = the most recent): the most recent one
    /// leads the evidence, older ones follow every supporting line.
    pub(crate) fn occurrence(&mut self, k: usize, e: Ev) {
        if k == 0 {
            self.evidence.push(e);
        } else {
            self.evidence.push_later(e);
        }
    }
}

/// Evidence lines without duplicates: the main lines in the order pushed, then the "later" ones
/// (older occurrences of the same failure).
#[derive(Debug, Clone, Default)]
pub(crate) struct Evidences(pub Vec<Ev>, pub Vec<Ev>);

impl Evidences {
    fn contains(&self, e: &Ev) -> bool {
        self.all()
            .any(|x| x.file == e.file && x.line == e.line && x.text == e.text)
    }

    pub(crate) fn push(&mut self, e: Ev) {
        if !self.contains(&e) {
            self.0.push(e);
        }
    }

    pub(crate) fn push_later(&mut self, e: Ev) {
        if !self.contains(&e) {
            self.1.push(e);
        }
    }

    /// Main lines, then later ones.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Ev> {
        self.0.iter().chain(self.1.iter())
    }

    pub(crate) fn merge(&mut self, other: Self) {
        for e in other.0 {
            self.push(e);
        }
        for e in other.1 {
            self.push_later(e);
        }
    }

    pub(crate) fn push_opt(&mut self, e: Option<Ev>) {
        if let Some(e) = e {
            self.push(e);
        }
    }

    pub(crate) fn extend(&mut self, it: impl IntoIterator<Item = Ev>) {
        for e in it {
            self.push(e);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty() && self.1.is_empty()
    }
}

/// Fills `<NAME>` placeholders of a fix template (only the names given; `<I>`, `<S>` and
/// unknown placeholders stay for the admin), one command per line.
pub(crate) fn fill(template: &str, vars: &[(&str, &str)]) -> Vec<String> {
    template
        .lines()
        .map(|l| {
            let mut s = l.to_string();
            for (k, v) in vars {
                s = s.replace(&format!("<{k}>"), v);
            }
            s
        })
        .collect()
}

/// `2019-05-02 06:32:14 UTC`.
pub(crate) fn when(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `2019-05-02`.
pub(crate) fn day(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// `1 session` / `4 sessions`, `1 reply` / `2 replies`.
pub(crate) fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else if let Some(stem) = what
        .strip_suffix('y')
        .filter(|s| !s.ends_with(['a', 'e', 'o', 'u']))
    {
        format!("{n} {stem}ies")
    } else {
        format!("{n} {what}s")
    }
}

/// The Windows events with one of these ids whose message contains `needle` (any, when empty),
/// newest first: quoted as supporting evidence (12014, 15004/15006, 2004).
pub(crate) fn event_evs(m: &Model<'_>, ids: &[u32], needle: &str) -> Vec<Ev> {
    let needle = needle.to_ascii_lowercase();
    let mut v: Vec<Ev> =
        m.a.events
            .iter()
            .filter(|e| ids.contains(&e.row.id))
            .filter(|e| needle.is_empty() || e.row.message.to_ascii_lowercase().contains(&needle))
            .filter_map(|e| {
                crate::model::row_ev(&e.evidence).map(|mut ev| {
                    ev.at = Some(e.row.time);
                    ev
                })
            })
            .collect();
    v.sort_by_key(|e| std::cmp::Reverse(e.at));
    v.truncate(2);
    v
}

/// Runs every rule.
pub(crate) fn run_all(m: &Model<'_>, opts: &super::Options) -> Vec<Draft> {
    let mut out = Vec::new();
    out.extend(cache::rules(m));
    out.extend(certs::rules(m, opts));
    out.extend(tls::rules(m));
    out.extend(eop::rules(m));
    out.extend(eop_record::rules(m));
    out.extend(eop_chain::rules(m));
    out.extend(network::rules(m));
    out.extend(lint::rules(m));
    out.extend(receive::rules(m));
    mark_recovered(m, &mut out);
    if let Some(d) = unexplained::rules(m, &out) {
        out.push(d);
    }
    out
}

/// Failures that mail flow has since left behind: an error finding about a connector whose
/// newest session delivered, later than every session the finding explains, while no queue
/// shows a LastError for that connector (an intermittent throttle, a 421 that the next retry got
/// past, a fixed certificate). The finding stays, as a warning that says so, so that a bundle
/// from a server that works again does not read like an outage.
fn mark_recovered(m: &Model<'_>, drafts: &mut [Draft]) {
    for d in drafts.iter_mut() {
        let session_level = d.id.can_recover();
        if !session_level || d.id.severity() != Severity::Error || d.sessions.is_empty() {
            continue;
        }
        let Some(ci) = d.connector else { continue };
        // The same connector on another server proves nothing about this one.
        let server_of = |s: &SessionView<'_>| m.session_index(s).and_then(|i| m.session_server(i));
        let finding_server = d
            .sessions
            .first()
            .and_then(|id| m.sessions.iter().find(|s| s.id() == id))
            .and_then(server_of);
        let Some(last) = m
            .sessions_of(ci)
            .filter(|s| finding_server.is_none() || server_of(s) == finding_server)
            .max_by_key(|s| s.start)
        else {
            continue;
        };
        let Some(ok) = cache::delivered(last) else {
            continue;
        };
        let explained_before = d.sessions.iter().all(|id| {
            m.sessions
                .iter()
                .find(|s| s.id() == id)
                .is_some_and(|s| s.id() != last.id() && s.start < last.start)
        });
        let queue_clear = m
            .queues
            .iter()
            .all(|q| q.connector.is_some_and(|c| c != ci));
        if explained_before && queue_clear {
            d.recovered = true;
            d.evidence.push(last.ev(ok));
            d.explanation.push_str(&format!(
                " Since then mail has flowed again: the connector's latest session ({}) delivered, and no \
                 queue shows a LastError for it. This is history unless it recurs; the fix is for next time.",
                when(last.at(ok)),
            ));
        }
    }
}
