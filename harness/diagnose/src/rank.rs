//! Root cause first: merging, suppressing symptoms and ordering (docs/findings.md, "Precedence").

use std::collections::BTreeSet;

use super::rules::Draft;
use super::{Finding, FindingId, Severity};

/// Merges drafts with the same id and subject, drops symptoms a cause explains, and sorts by
/// severity, rank and the time of the newest evidence (newest first).
pub(crate) fn rank(drafts: Vec<Draft>) -> Vec<Finding> {
    let mut merged: Vec<Draft> = Vec::new();
    for d in drafts {
        match merged.iter_mut().find(|x| x.id == d.id && x.key == d.key) {
            Some(x) => {
                x.evidence.merge(d.evidence);
                x.sessions.extend(d.sessions);
            }
            None => merged.push(d),
        }
    }
    let merged: Vec<Draft> = merged
        .into_iter()
        .filter(|d| !d.evidence.is_empty())
        .collect();

    let keep: Vec<bool> = merged.iter().map(|d| !suppressed(d, &merged)).collect();
    let mut out: Vec<(Draft, Option<time::OffsetDateTime>)> = merged
        .into_iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(d, _)| {
            let n = d.newest();
            (d, n)
        })
        .collect();
    out.sort_by(|(a, ta), (b, tb)| {
        a.severity()
            .cmp(&b.severity())
            .then(a.id.rank().cmp(&b.id.rank()))
            .then(tb.cmp(ta))
            .then(a.key.cmp(&b.key))
    });
    out.into_iter()
        .map(|(d, newest)| Finding {
            id: d.id,
            severity: d.severity(),
            title: d.id.title().to_string(),
            evidence: d.evidence.all().map(|e| e.to_evidence()).collect(),
            explanation: d.explanation,
            fix: d.fix,
            newest,
        })
        .collect()
}

/// The rules of docs/findings.md that keep symptoms from outranking causes.
fn suppressed(d: &Draft, all: &[Draft]) -> bool {
    match d.id {
        // Only when nothing above explains the session: every session it names is explained by
        // a higher-ranked error.
        FindingId::ConnectionTimeout | FindingId::ConnectFailed => {
            let explained: BTreeSet<&str> = all
                .iter()
                .filter(|o| {
                    o.id.severity() == Severity::Error && o.id.rank() < d.id.rank() && o.id != d.id
                })
                .flat_map(|o| o.sessions.iter().map(String::as_str))
                .collect();
            !d.sessions.is_empty() && d.sessions.iter().all(|s| explained.contains(s.as_str()))
        }
        // The certificate these sessions presented is gone or no longer used: the cache finding
        // (restart) or the recovery (nothing to do) says so; "remove it" or "repair its key" would
        // be stale advice.
        FindingId::CertKeylessDuplicate
        | FindingId::CertMissingPrivateKey
        | FindingId::CertKeyInaccessible
        | FindingId::CertInvisibleToEms => {
            let covered: BTreeSet<&str> = all
                .iter()
                .filter(|o| {
                    matches!(
                        o.id,
                        FindingId::CertCachedAfterChange | FindingId::CertFailureRecovered
                    )
                })
                .flat_map(|o| o.sessions.iter().map(String::as_str))
                .collect();
            !d.sessions.is_empty() && d.sessions.iter().all(|s| covered.contains(s.as_str()))
        }
        // The key-less twin already says the identifier matches two certificates.
        FindingId::LintTlsCertificateNameAmbiguous => all.iter().any(|o| {
            o.id == FindingId::CertKeylessDuplicate
                && o.connector.is_some()
                && o.connector == d.connector
        }),
        _ => false,
    }
}
