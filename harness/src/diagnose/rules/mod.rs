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

pub(crate) mod cache;
pub(crate) mod certs;
pub(crate) mod eop;
pub(crate) mod eop_record;
pub(crate) mod lint;
pub(crate) mod network;
pub(crate) mod tls;

use time::OffsetDateTime;

use super::FindingId;
use super::model::{Ev, Model};

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

/// Runs every rule.
pub(crate) fn run_all(m: &Model<'_>, opts: &super::Options) -> Vec<Draft> {
    let mut out = Vec::new();
    out.extend(cache::rules(m));
    out.extend(certs::rules(m, opts));
    out.extend(tls::rules(m));
    out.extend(eop::rules(m));
    out.extend(eop_record::rules(m));
    out.extend(network::rules(m));
    out.extend(lint::rules(m));
    out
}
