//! The oracle: replay a generated case (memory transport, the runner's own path), diagnose the
//! artefacts (the closed loop) and judge the findings against the case's ground truth.

use std::path::Path;

use super::case::Case;
use crate::scenario::{DiagnosisSummary, TransportKind, load, replay};

/// How two causes interact in [`INTERACTIONS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// The first cause, when injected, hides the second: the second is still injected (an error
    /// finding naming it is no false positive) but it need not be the top finding.
    Hides,
    /// The first cause, when injected, also makes the second true of the artefacts: the second
    /// counts as injected (it may be an error finding) but never as the top finding.
    Implies,
}

/// How injected causes interact: `(a, relation, b, why)`. The expected top finding of a case is
/// the first injected cause that no other injected cause hides or implies. This is the one place
/// the interactions are written down.
pub const INTERACTIONS: &[(&str, Relation, &str, &str)] = &[
    (
        "cert-expired",
        Relation::Implies,
        "tls-cert-name-not-found",
        "the TlsCertificateName lookup returns valid certificates only, so an expired pinned \
         certificate is 'not found' (454 4.7.5, event 12014): the diagnosis names the symptom \
         too and ranks the expiry first (fm06-expired-certificate)",
    ),
    (
        "tls-cert-name-not-found",
        Relation::Hides,
        "cert-expired",
        "TlsCertificateName names the old issuer, so it matches no certificate whether or not the \
         renewed one has expired: the identifier, not the expiry, is what to fix first",
    ),
    (
        "tls-cert-name-not-found",
        Relation::Hides,
        "cert-keyless-duplicate",
        "TlsCertificateName names the old issuer: no certificate is selected at all, so the \
         key-less twin is never tried",
    ),
    (
        "tls-cert-name-not-found",
        Relation::Hides,
        "inbound-connector-cert-mismatch",
        "no certificate, no TLS: EOP never sees a certificate to attribute",
    ),
    (
        "cert-expired",
        Relation::Hides,
        "cert-keyless-duplicate",
        "the twins expire together; the validOnly lookup filters both, so the key-less copy is \
         never selected",
    ),
    (
        "cert-expired",
        Relation::Hides,
        "inbound-connector-cert-mismatch",
        "no valid certificate, no TLS: EOP never sees a certificate to attribute",
    ),
    (
        "cert-keyless-duplicate",
        Relation::Hides,
        "inbound-connector-cert-mismatch",
        "the handshake fails on the client side (NoCredentials) before EOP can attribute",
    ),
];

/// The injected causes with what they imply added ([`Relation::Implies`]).
pub fn with_implied(injected: &[&'static str]) -> Vec<&'static str> {
    let mut out = injected.to_vec();
    for (a, rel, b, _) in INTERACTIONS {
        if *rel == Relation::Implies && injected.contains(a) && !out.contains(b) {
            out.push(b);
        }
    }
    out
}

/// The causes the generator injected (without the implied ones) that may be the top finding:
/// those no other injected cause hides.
pub fn allowed_tops(injected: &[&'static str]) -> Vec<&'static str> {
    injected
        .iter()
        .copied()
        .filter(|c| {
            !INTERACTIONS.iter().any(|(a, rel, b, _)| {
                *rel == Relation::Hides && b == c && a != c && injected.contains(a)
            })
        })
        .collect()
}

/// A finding-id mapping applied to the diagnosis before it is judged: the identity in real runs;
/// tests pass one that breaks a rule on purpose to check that the oracle catches it.
pub type Remap<'a> = &'a (dyn Fn(&str) -> String + Sync);

/// Why [`judge`] did not agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judged {
    /// The diagnosis disagrees with the ground truth (what disagrees).
    Disagrees(String),
    /// The lab could not run the case (a file could not be written, the generated scenario did
    /// not load, the replay failed): not a finding about the rules, so it is never shrunk.
    LabError(String),
}

/// Replays `case` (its TOML written under `work`, loaded through the loader like any catalogue
/// file), diagnoses it and judges the findings.
///
/// # Errors
/// [`Judged::Disagrees`] with what disagrees, or [`Judged::LabError`].
pub fn judge(case: &Case, work: &Path, name: &str, remap: Remap<'_>) -> Result<(), Judged> {
    let tops = allowed_tops(&case.injected());
    let injected = with_implied(&case.injected());
    let path = work.join(format!("{name}.toml"));
    std::fs::write(&path, case.to_toml(name, tops.first().copied()))
        .map_err(|e| Judged::LabError(format!("cannot write {}: {e}", path.display())))?;
    let scenario =
        load(&path).map_err(|e| Judged::LabError(format!("generated scenario does not load: {e}")));
    let _ = std::fs::remove_file(&path);
    let scenario = scenario?;
    let r = replay(&scenario, TransportKind::Memory)
        .map_err(|e| Judged::LabError(format!("replay failed: {e}")))?;
    let mut d = DiagnosisSummary::of(&r.diagnosis);
    d.top_finding = d.top_finding.map(|t| remap(&t));
    d.errors = d.errors.iter().map(|t| remap(t)).collect();
    verdict(&injected, &tops, &d).map_err(Judged::Disagrees)
}

/// The three rules of the oracle on a diagnosis summary.
pub fn verdict(
    injected: &[&'static str],
    tops: &[&'static str],
    d: &DiagnosisSummary,
) -> Result<(), String> {
    if let Some(e) = d.errors.iter().find(|e| !injected.contains(&e.as_str())) {
        return Err(format!(
            "error finding {e} names a cause that was not injected (injected: {injected:?})"
        ));
    }
    if injected.is_empty() {
        return Ok(());
    }
    let top = d.top_finding.as_deref().unwrap_or("-");
    if !d.errors.iter().any(|e| e == top) || !tops.contains(&top) {
        return Err(format!(
            "top finding {top} is not one of the injected causes {tops:?} as an error (errors: {:?})",
            d.errors
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(top: Option<&str>, errors: &[&str]) -> DiagnosisSummary {
        DiagnosisSummary {
            top_finding: top.map(str::to_string),
            errors: errors.iter().map(|e| e.to_string()).collect(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn the_table_decides_the_top() {
        let both = ["tls-cert-name-not-found", "cert-expired"];
        assert_eq!(allowed_tops(&both), vec!["tls-cert-name-not-found"]);
        assert_eq!(allowed_tops(&["cert-expired"]), vec!["cert-expired"]);
        assert_eq!(
            with_implied(&["cert-expired"]),
            vec!["cert-expired", "tls-cert-name-not-found"]
        );
        let twin = ["cert-keyless-duplicate", "inbound-connector-cert-mismatch"];
        assert_eq!(allowed_tops(&twin), vec!["cert-keyless-duplicate"]);
    }

    #[test]
    fn the_three_rules() {
        let inj = ["cert-keyless-duplicate"];
        let ok = summary(Some("cert-keyless-duplicate"), &["cert-keyless-duplicate"]);
        assert!(verdict(&inj, &inj, &ok).is_ok());
        let extra = summary(
            Some("cert-keyless-duplicate"),
            &["cert-keyless-duplicate", "starttls-stripped"],
        );
        assert!(
            verdict(&inj, &inj, &extra)
                .unwrap_err()
                .contains("starttls-stripped")
        );
        let silent = summary(None, &[]);
        assert!(verdict(&inj, &inj, &silent).is_err());
        assert!(verdict(&[], &[], &silent).is_ok());
        let warned = summary(Some("eop-throttled"), &[]);
        assert!(verdict(&[], &[], &warned).is_ok());
    }
}
