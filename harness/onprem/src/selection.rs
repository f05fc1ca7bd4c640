//! Outbound STARTTLS certificate selection, as docs/domain.md reconstructs Exchange's
//! `SmtpOutSession.LoadTlsCertificate`:
//!
//! 1. `TlsCertificateName` set: `Find(FindBySubjectDistinguishedName, subject, validOnly: true)` over
//!    `LocalMachine\My` in enumeration order, then the first result whose issuer equals the
//!    configured issuer (case-insensitive). **No private-key check and no SMTP-service check.** Among
//!    several matches [`DuplicatePolicy`] decides (default: the first in the store, which reproduces
//!    the key-less twin case). Nothing found: event 12014 and
//!    `454 4.7.5 The certificate specified in TlsCertificateName of the SendConnector could not be found.`
//! 2. `TlsCertificateName` empty: search by FQDN (the connector's `Fqdn`, else the server's): exact
//!    name matches first, wildcard matches only if there is no exact one; candidates need a private key
//!    and an EKU that allows server authentication; PKI-trusted before self-signed, newest NotBefore
//!    first; an expired PKI certificate only if nothing better exists; a non-self-signed certificate
//!    whose chain does not build to a trusted root is rejected.
//!
//! The result is rich ([`Selection`]): the path taken, every certificate considered with the reason
//! it was kept or skipped, and the event the transport would log, so `explain` can narrate it.

use std::fmt;

use hybridlab_model::reply::Reply;
use hybridlab_model::x509::name_matches;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::certstore::{CertStore, StoreEntry};
use crate::connector::{ConnectorError, SendConnector};
use hybridlab_model::exchange::{TlsAuthLevel, synthetic};
use hybridlab_model::identifier::X509Identifier;

/// Which certificate wins when several in the store have the connector's issuer and subject \[U\].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicatePolicy {
    /// The first in store enumeration order (the reconstructed outbound code path; default).
    #[default]
    FirstInStore,
    /// The one with the latest NotAfter (the 2025 blog's description of inbound selection).
    LatestNotafter,
    /// The one with the newest NotBefore.
    NewestNotbefore,
}

/// What happens on the FQDN path when no certificate qualifies \[U\].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FqdnNotFound {
    /// Log 12014 and negotiate TLS without a client certificate (default).
    #[default]
    ContinueWithoutCertificate,
    /// Fail the session like a stale `TlsCertificateName` (454 4.7.5 ... could not be found).
    Fail,
}

/// How the outbound certificate search behaves where Exchange's behaviour is uncertain \[U\]:
/// the scenario picks a reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectionSettings {
    /// Which of several certificates with the connector's issuer and subject wins.
    #[serde(default)]
    pub duplicate_policy: DuplicatePolicy,
    /// What the FQDN path does when no certificate qualifies.
    #[serde(default)]
    pub fqdn_not_found: FqdnNotFound,
    /// Apply Exchange's "RSA or DSA key of at least 1024 bits" filter on the FQDN path. Off by
    /// default because the lab generates ECDSA keys (ring cannot generate RSA).
    #[serde(default)]
    pub require_rsa_key: bool,
}

/// Severity of a Windows event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventLevel {
    /// The event reports a failure (12014: no certificate could be loaded).
    Error,
    /// The event reports a problem that did not stop the session (12016: expired certificate).
    Warning,
    /// The event is informational.
    Information,
}

/// An Application-log event from `MSExchangeTransport` about certificate selection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportEvent {
    /// `MSExchangeTransport` or `MSExchangeFrontEndTransport`.
    pub source: String,
    /// Event id (12014, 12016...).
    pub id: u32,
    /// The event's severity.
    pub level: EventLevel,
    /// Symbolic name (`CannotLoadSTARTTLSCertificateFromStore`).
    pub name: String,
    /// The event's message text, as Event Viewer shows it.
    pub text: String,
}

impl TransportEvent {
    /// Event 12014: no certificate for the identifier or FQDN.
    pub fn cannot_load_starttls_certificate(what: &str, connector: &str, fqdn: &str) -> Self {
        Self {
            source: "MSExchangeTransport".into(),
            id: 12014,
            level: EventLevel::Error,
            name: "CannotLoadSTARTTLSCertificateFromStore".into(),
            text: format!(
                "Microsoft Exchange could not find a certificate that contains the domain name {what} in the personal store on the local computer. Therefore, it is unable to support the STARTTLS SMTP verb for the connector {connector} with a FQDN parameter of {fqdn}. If the connector's FQDN is not specified, the computer's FQDN is used. Verify the connector configuration and the installed certificates to make sure that there is a certificate with a domain name for that FQDN. If this certificate exists, run Enable-ExchangeCertificate -Services SMTP to make sure that the Microsoft Exchange Transport service has access to the certificate key."
            ),
        }
    }

    /// Event 12016: the chosen STARTTLS certificate is expired.
    pub fn starttls_certificate_expired(fqdn: &str, thumbprint: &str, not_after: &str) -> Self {
        Self {
            source: "MSExchangeTransport".into(),
            id: 12016,
            level: EventLevel::Error,
            name: "STARTTLSCertificateExpired".into(),
            text: format!(
                "The STARTTLS certificate for the FQDN {fqdn} (thumbprint {thumbprint}) expired on {not_after}. Replace the certificate and run Enable-ExchangeCertificate -Services SMTP."
            ),
        }
    }
}

/// Which search ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "path")]
pub enum SelectionPath {
    /// By `TlsCertificateName`.
    TlsCertificateName {
        /// The parsed identifier.
        issuer: String,
        /// Subject part.
        subject: String,
    },
    /// By FQDN.
    Fqdn {
        /// The name searched.
        fqdn: String,
    },
}

/// Why a certificate was kept or skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum CandidateVerdict {
    /// The certificate the search chose.
    Chosen,
    /// Matched but lost to an earlier or better match.
    Outranked {
        /// Why the chosen one won.
        reason: String,
    },
    /// Subject DN differs.
    SubjectMismatch,
    /// Subject matches, issuer DN differs (e.g. issuer drift after a renewal).
    IssuerMismatch,
    /// Filtered by `validOnly` (expired, not yet valid, or untrusted chain).
    NotValid {
        /// What made it invalid: `expired`, `not yet valid`, or the chain.
        reason: String,
    },
    /// No name matches the FQDN.
    NameMismatch,
    /// FQDN path: no private key.
    NoPrivateKey,
    /// FQDN path: EKU does not allow server authentication, or the key type is not allowed.
    Unsuitable {
        /// What disqualified it: the EKU, or the key type and size.
        reason: String,
    },
    /// FQDN path: not self-signed and the chain does not build to a trusted root.
    UntrustedChain,
}

/// One certificate the search looked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// Scenario-local name.
    pub name: String,
    /// The certificate's thumbprint (40 uppercase hex digits).
    pub thumbprint: String,
    /// Its 0-based position in store enumeration order.
    pub enumeration_index: usize,
    /// `HasPrivateKey`: whether a private key is associated.
    pub has_private_key: bool,
    /// Why the search kept or skipped it.
    pub verdict: CandidateVerdict,
}

/// The result of a selection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum SelectionOutcome {
    /// A certificate was chosen.
    Selected {
        /// Its thumbprint.
        thumbprint: String,
        /// Its scenario-local name.
        name: String,
        /// Why it won, in one sentence (for the narration).
        why: String,
    },
    /// `TlsCertificateName` matched nothing: the session fails with this ack.
    NotFound {
        /// `454 4.7.5 The certificate specified in TlsCertificateName of the SendConnector could not be found.`
        ack: Reply,
    },
    /// FQDN path found nothing: TLS goes on without a client certificate.
    NoCertificate,
}

/// Everything `explain` needs about one selection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// Which search ran.
    pub path: SelectionPath,
    /// What came out.
    pub outcome: SelectionOutcome,
    /// Every certificate in `LocalMachine\My`, in enumeration order, with its verdict.
    pub candidates: Vec<Candidate>,
    /// Events logged (12014, 12016).
    pub events: Vec<TransportEvent>,
}

impl Selection {
    /// The chosen entry, looked up in `store`.
    pub fn chosen<'a>(&self, store: &'a CertStore) -> Option<&'a StoreEntry> {
        match &self.outcome {
            SelectionOutcome::Selected { thumbprint, .. } => store.by_thumbprint(thumbprint),
            _ => None,
        }
    }

    /// A short narration, one line per step.
    pub fn narrate(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.path {
            SelectionPath::TlsCertificateName { issuer, subject } => out.push(format!(
                "TlsCertificateName is set: search LocalMachine\\My for subject {subject:?} issued by {issuer:?} (valid certificates only, no private-key check)"
            )),
            SelectionPath::Fqdn { fqdn } => out.push(format!(
                "TlsCertificateName is empty: search LocalMachine\\My for a certificate for {fqdn:?} with a private key"
            )),
        }
        for c in &self.candidates {
            out.push(format!(
                "  #{} {} ({}, {}): {}",
                c.enumeration_index,
                c.thumbprint,
                c.name,
                if c.has_private_key {
                    "has private key"
                } else {
                    "NO private key"
                },
                c.verdict
            ));
        }
        match &self.outcome {
            SelectionOutcome::Selected { why, .. } => out.push(format!("chosen: {why}")),
            SelectionOutcome::NotFound { ack } => out.push(format!("nothing found: {ack}")),
            SelectionOutcome::NoCertificate => {
                out.push("nothing found: TLS without a client certificate".into())
            }
        }
        for e in &self.events {
            out.push(format!("event {} {}", e.id, e.name));
        }
        out
    }
}

impl fmt::Display for CandidateVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Chosen => f.write_str("chosen"),
            Self::Outranked { reason } => write!(f, "matches, not chosen ({reason})"),
            Self::SubjectMismatch => f.write_str("subject differs"),
            Self::IssuerMismatch => f.write_str("subject matches, issuer differs"),
            Self::NotValid { reason } => write!(f, "filtered by validOnly ({reason})"),
            Self::NameMismatch => f.write_str("no name matches"),
            Self::NoPrivateKey => f.write_str("skipped: no private key"),
            Self::Unsuitable { reason } => write!(f, "skipped: {reason}"),
            Self::UntrustedChain => f.write_str("skipped: chain does not build to a trusted root"),
        }
    }
}

fn candidate(e: &StoreEntry, verdict: CandidateVerdict) -> Candidate {
    Candidate {
        name: e.name.clone(),
        thumbprint: e.facts.thumbprint.clone(),
        enumeration_index: e.enumeration_index,
        has_private_key: e.has_private_key,
        verdict,
    }
}

fn validity_reason(store: &CertStore, e: &StoreEntry, now: OffsetDateTime) -> Option<String> {
    if now > e.facts.not_after {
        Some("expired".into())
    } else if now < e.facts.not_before {
        Some("not yet valid".into())
    } else if !store.chains_to_trusted_root(e, now) {
        Some("chain does not build to a trusted root".into())
    } else {
        None
    }
}

/// Runs Exchange's outbound selection for `connector` on `store` at `now`.
///
/// # Errors
/// `TlsCertificateName` does not parse (Exchange refuses such a value at configuration time).
pub fn select(
    store: &CertStore,
    connector: &SendConnector,
    server_fqdn: &str,
    settings: &SelectionSettings,
    now: OffsetDateTime,
) -> Result<Selection, ConnectorError> {
    match connector.tls_certificate_identifier()? {
        Some(id) => Ok(select_by_identifier(
            store,
            connector,
            server_fqdn,
            &id,
            settings,
            now,
        )),
        None => Ok(select_by_fqdn(
            store,
            connector,
            connector.effective_fqdn(server_fqdn),
            settings,
            now,
        )),
    }
}

fn select_by_identifier(
    store: &CertStore,
    connector: &SendConnector,
    server_fqdn: &str,
    id: &X509Identifier,
    settings: &SelectionSettings,
    now: OffsetDateTime,
) -> Selection {
    let mut candidates = Vec::new();
    let mut matches: Vec<&StoreEntry> = Vec::new();
    for e in store.my() {
        let verdict = if !hybridlab_model::x509::dn_eq(&e.facts.subject, &id.subject) {
            Some(CandidateVerdict::SubjectMismatch)
        } else if let Some(reason) = validity_reason(store, e, now) {
            Some(CandidateVerdict::NotValid { reason })
        } else if !hybridlab_model::x509::dn_eq(&e.facts.issuer, &id.issuer) {
            Some(CandidateVerdict::IssuerMismatch)
        } else {
            matches.push(e);
            None
        };
        candidates.push(candidate(
            e,
            verdict.unwrap_or(CandidateVerdict::Outranked {
                reason: String::new(),
            }),
        ));
    }
    let path = SelectionPath::TlsCertificateName {
        issuer: id.issuer.clone(),
        subject: id.subject.clone(),
    };
    let chosen = match settings.duplicate_policy {
        DuplicatePolicy::FirstInStore => matches.first().copied(),
        DuplicatePolicy::LatestNotafter => matches
            .iter()
            .copied()
            .rev()
            .max_by_key(|e| e.facts.not_after),
        DuplicatePolicy::NewestNotbefore => matches
            .iter()
            .copied()
            .rev()
            .max_by_key(|e| e.facts.not_before),
    };
    let Some(chosen) = chosen else {
        return Selection {
            path,
            outcome: SelectionOutcome::NotFound {
                ack: synthetic::tls_certificate_name_not_found(),
            },
            candidates,
            events: vec![TransportEvent::cannot_load_starttls_certificate(
                &id.to_string(),
                &connector.name,
                connector.effective_fqdn(server_fqdn),
            )],
        };
    };
    let policy_reason = match settings.duplicate_policy {
        DuplicatePolicy::FirstInStore => "first match in store enumeration order",
        DuplicatePolicy::LatestNotafter => "latest NotAfter among the matches",
        DuplicatePolicy::NewestNotbefore => "newest NotBefore among the matches",
    };
    mark_chosen(
        &mut candidates,
        &chosen.facts.thumbprint,
        &format!("wins: {policy_reason}"),
    );
    let mut events = Vec::new();
    if connector.tls_auth_level != Some(TlsAuthLevel::EncryptionOnly)
        && now > chosen.facts.not_after
    {
        events.push(expired_event(connector, server_fqdn, chosen));
    }
    let why = format!(
        "{} matches issuer and subject ({policy_reason}{}; {} of {} matches){}",
        chosen.facts.thumbprint,
        if matches.len() > 1 {
            ", duplicates present"
        } else {
            ""
        },
        matches
            .iter()
            .position(|e| e.facts.thumbprint == chosen.facts.thumbprint)
            .unwrap_or(0)
            + 1,
        matches.len(),
        if chosen.has_private_key {
            ""
        } else {
            "; it has NO private key"
        }
    );
    Selection {
        path,
        outcome: SelectionOutcome::Selected {
            thumbprint: chosen.facts.thumbprint.clone(),
            name: chosen.name.clone(),
            why,
        },
        candidates,
        events,
    }
}

fn expired_event(connector: &SendConnector, server_fqdn: &str, e: &StoreEntry) -> TransportEvent {
    TransportEvent::starttls_certificate_expired(
        connector.effective_fqdn(server_fqdn),
        &e.facts.thumbprint,
        &hybridlab_artefacts::queue::en_us_datetime(e.facts.not_after),
    )
}

fn select_by_fqdn(
    store: &CertStore,
    connector: &SendConnector,
    fqdn: &str,
    settings: &SelectionSettings,
    now: OffsetDateTime,
) -> Selection {
    let path = SelectionPath::Fqdn {
        fqdn: fqdn.to_string(),
    };
    let exact = |e: &StoreEntry| e.facts.names().iter().any(|n| n.eq_ignore_ascii_case(fqdn));
    let wildcard = |e: &StoreEntry| {
        e.facts
            .names()
            .iter()
            .any(|n| n.starts_with("*.") && name_matches(n, fqdn))
    };
    let any_exact = store.my().iter().any(|e| exact(e) && e.has_private_key);
    let mut candidates = Vec::new();
    // (rank, -not_before, index) -> lower is better
    let mut ranked: Vec<((u8, i128, usize), &StoreEntry)> = Vec::new();
    for e in store.my() {
        let name_ok = exact(e) || (!any_exact && wildcard(e));
        let verdict = if name_ok {
            fqdn_rank(store, e, settings, now)
        } else {
            Err(CandidateVerdict::NameMismatch)
        };
        let verdict = match verdict {
            Ok(rank) => {
                let key = (
                    rank,
                    -e.facts.not_before.unix_timestamp_nanos(),
                    e.enumeration_index,
                );
                ranked.push((key, e));
                CandidateVerdict::Outranked {
                    reason: String::new(),
                }
            }
            Err(v) => v,
        };
        candidates.push(candidate(e, verdict));
    }
    ranked.sort_by_key(|(k, _)| *k);
    let Some(((rank, _, _), chosen)) = ranked.first().copied() else {
        let event = TransportEvent::cannot_load_starttls_certificate(fqdn, &connector.name, fqdn);
        return Selection {
            path,
            outcome: match settings.fqdn_not_found {
                FqdnNotFound::ContinueWithoutCertificate => SelectionOutcome::NoCertificate,
                FqdnNotFound::Fail => SelectionOutcome::NotFound {
                    ack: synthetic::tls_certificate_name_not_found(),
                },
            },
            candidates,
            events: vec![event],
        };
    };
    let why_rank = match rank {
        0 => "PKI-trusted and in date",
        1 => "self-signed (no PKI certificate qualifies)",
        2 => "expired PKI certificate (nothing better exists)",
        _ => "expired self-signed certificate (nothing better exists)",
    };
    mark_chosen(
        &mut candidates,
        &chosen.facts.thumbprint,
        "ranks higher (PKI before self-signed, newest NotBefore first)",
    );
    let mut events = Vec::new();
    if connector.tls_auth_level != Some(TlsAuthLevel::EncryptionOnly)
        && now > chosen.facts.not_after
    {
        events.push(TransportEvent::starttls_certificate_expired(
            fqdn,
            &chosen.facts.thumbprint,
            &hybridlab_artefacts::queue::en_us_datetime(chosen.facts.not_after),
        ));
    }
    Selection {
        path,
        outcome: SelectionOutcome::Selected {
            thumbprint: chosen.facts.thumbprint.clone(),
            name: chosen.name.clone(),
            why: format!(
                "{} carries {} ({}match; {why_rank})",
                chosen.facts.thumbprint,
                fqdn,
                if any_exact { "exact " } else { "wildcard " }
            ),
        },
        candidates,
        events,
    }
}

/// The FQDN path's judgement of a certificate whose names match: its rank when it qualifies
/// (lower is better: 0 PKI-trusted and in date, 1 self-signed in date, 2 expired PKI, 3 expired
/// self-signed), else why it is skipped.
fn fqdn_rank(
    store: &CertStore,
    e: &StoreEntry,
    settings: &SelectionSettings,
    now: OffsetDateTime,
) -> Result<u8, CandidateVerdict> {
    if !e.has_private_key {
        return Err(CandidateVerdict::NoPrivateKey);
    }
    let ekus = &e.facts.extended_key_usages;
    if !ekus.is_empty() && !ekus.iter().any(|u| u == "ServerAuth" || u == "Any") {
        return Err(CandidateVerdict::Unsuitable {
            reason: "EKU lacks Server Authentication".into(),
        });
    }
    if settings.require_rsa_key
        && !(e.facts.key_algorithm == "RSA" && e.facts.public_key_bits >= 1024)
    {
        return Err(CandidateVerdict::Unsuitable {
            reason: format!(
                "{} {}-bit key is not RSA >= 1024",
                e.facts.key_algorithm, e.facts.public_key_bits
            ),
        });
    }
    // PKI trust judged at a time within the certificate's validity, so that an expired PKI
    // certificate is still recognised as PKI (and ranked after valid ones).
    let at = if now > e.facts.not_after {
        e.facts.not_after
    } else if now < e.facts.not_before {
        e.facts.not_before
    } else {
        now
    };
    let stale = if e.facts.is_time_valid(now) { 0 } else { 2 };
    if e.facts.is_self_signed {
        Ok(1 + stale)
    } else if store.chains_to_trusted_root(e, at) {
        Ok(stale)
    } else {
        Err(CandidateVerdict::UntrustedChain)
    }
}

/// Marks the chosen certificate among the qualifying candidates (those still `Outranked` with no
/// reason) and tells the others why they lost: `<chosen thumbprint> <why>`.
fn mark_chosen(candidates: &mut [Candidate], chosen: &str, why: &str) {
    for c in candidates {
        if matches!(c.verdict, CandidateVerdict::Outranked { .. }) {
            c.verdict = if c.thumbprint == chosen {
                CandidateVerdict::Chosen
            } else {
                CandidateVerdict::Outranked {
                    reason: format!("{chosen} {why}"),
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certstore::fixtures::{self, CONTOSO_SUBJECT, ISSUING_CA};
    use crate::certstore::{CertDescription, StoreDescription, TimeSpec};

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-05-02 06:30:00 UTC)
    }

    fn pinned() -> SendConnector {
        SendConnector::hybrid(
            "contoso",
            Some(format!("<I>{ISSUING_CA}<S>{CONTOSO_SUBJECT}")),
        )
    }

    fn run(
        desc: &StoreDescription,
        c: &SendConnector,
        policy: DuplicatePolicy,
    ) -> (CertStore, Selection) {
        let store = CertStore::build(desc, now()).unwrap();
        let s = select(
            &store,
            c,
            "edge01.contoso.com",
            &SelectionSettings {
                duplicate_policy: policy,
                ..Default::default()
            },
            now(),
        )
        .unwrap();
        (store, s)
    }

    fn chosen_name(s: &Selection) -> &str {
        match &s.outcome {
            SelectionOutcome::Selected { name, .. } => name,
            other => panic!("not selected: {other:?}"),
        }
    }

    #[test]
    fn keyless_twin_first_is_chosen_first_in_store() {
        let (store, s) = run(
            &fixtures::classic_twins(true),
            &pinned(),
            DuplicatePolicy::FirstInStore,
        );
        assert_eq!(chosen_name(&s), "twin-nokey");
        assert!(!s.chosen(&store).unwrap().has_private_key);
        assert!(matches!(
            s.candidates[1].verdict,
            CandidateVerdict::Outranked { .. }
        ));
        assert!(s.events.is_empty());
        assert!(s.narrate().iter().any(|l| l.contains("NO private key")));
    }

    #[test]
    fn keyless_twin_last_loses() {
        let (_, s) = run(
            &fixtures::classic_twins(false),
            &pinned(),
            DuplicatePolicy::FirstInStore,
        );
        assert_eq!(chosen_name(&s), "keyed");
    }

    #[test]
    fn duplicate_policies() {
        let mut desc = fixtures::classic_twins(true);
        // the key-less twin is the renewal: it expires later and started later
        desc.certificates[0].not_before = Some(TimeSpec::Days(-1));
        desc.certificates[0].not_after = Some(TimeSpec::Days(700));
        let (_, s) = run(&desc, &pinned(), DuplicatePolicy::LatestNotafter);
        assert_eq!(chosen_name(&s), "twin-nokey");
        let (_, s) = run(&desc, &pinned(), DuplicatePolicy::NewestNotbefore);
        assert_eq!(chosen_name(&s), "twin-nokey");
        desc.certificates[0].not_after = Some(TimeSpec::Days(100));
        desc.certificates[0].not_before = Some(TimeSpec::Days(-100));
        let (_, s) = run(&desc, &pinned(), DuplicatePolicy::LatestNotafter);
        assert_eq!(chosen_name(&s), "keyed");
        let (_, s) = run(&desc, &pinned(), DuplicatePolicy::NewestNotbefore);
        assert_eq!(chosen_name(&s), "keyed");
        let (_, s) = run(&desc, &pinned(), DuplicatePolicy::FirstInStore);
        assert_eq!(chosen_name(&s), "twin-nokey");
    }

    #[test]
    fn expired_twin_is_filtered_by_valid_only() {
        let mut desc = fixtures::classic_twins(true);
        desc.certificates[0].has_private_key = true;
        desc.certificates[0].not_before = Some(TimeSpec::Days(-400));
        desc.certificates[0].not_after = Some(TimeSpec::Days(-1));
        let (_, s) = run(&desc, &pinned(), DuplicatePolicy::FirstInStore);
        assert_eq!(chosen_name(&s), "keyed");
        assert!(
            matches!(&s.candidates[0].verdict, CandidateVerdict::NotValid { reason } if reason == "expired")
        );
        // only the expired one: not found
        desc.certificates.remove(1);
        let (_, s) = run(&desc, &pinned(), DuplicatePolicy::FirstInStore);
        assert!(matches!(s.outcome, SelectionOutcome::NotFound { .. }));
    }

    #[test]
    fn issuer_drift_after_renewal_is_not_found() {
        let mut desc = fixtures::classic_twins(false);
        desc.authorities
            .push(crate::certstore::AuthorityDescription {
                name: "issuing-g3".into(),
                subject: "CN=Lab Global G3 TLS ECC SHA384 2020 CA1, O=Lab CA Inc, C=US"
                    .parse()
                    .unwrap(),
                issuer: Some("root".into()),
                installed: true,
                aia_fetchable: false,
                public: true,
                not_before: None,
                not_after: None,
                key: hybridlab_labkit::pki::KeyKind::AUTHORITY_DEFAULT,
            });
        desc.certificates.clear();
        let mut renewed = fixtures::contoso("renewed");
        renewed.issuer = Some("issuing-g3".into());
        desc.certificates.push(renewed);
        let (_, s) = run(&desc, &pinned(), DuplicatePolicy::FirstInStore);
        let SelectionOutcome::NotFound { ack } = &s.outcome else {
            panic!("{:?}", s.outcome)
        };
        assert_eq!(
            ack.one_line(),
            "454 4.7.5 The certificate specified in TlsCertificateName of the SendConnector could not be found."
        );
        assert_eq!(s.candidates[0].verdict, CandidateVerdict::IssuerMismatch);
        assert_eq!(s.events[0].id, 12014);
        assert!(s.events[0].text.contains(&format!("<I>{ISSUING_CA}<S>")));
    }

    #[test]
    fn untrusted_root_is_filtered() {
        let mut desc = fixtures::classic_twins(false);
        desc.authorities[0].installed = false;
        let (_, s) = run(&desc, &pinned(), DuplicatePolicy::FirstInStore);
        assert!(matches!(s.outcome, SelectionOutcome::NotFound { .. }));
        assert!(
            matches!(&s.candidates[0].verdict, CandidateVerdict::NotValid { reason } if reason.contains("trusted root"))
        );
    }

    #[test]
    fn subject_compare_is_case_insensitive() {
        let c = SendConnector::hybrid(
            "contoso",
            Some(format!(
                "<I>{}<S>{}",
                ISSUING_CA.to_uppercase(),
                CONTOSO_SUBJECT.to_lowercase()
            )),
        );
        let (_, s) = run(
            &fixtures::classic_twins(false),
            &c,
            DuplicatePolicy::FirstInStore,
        );
        assert_eq!(chosen_name(&s), "keyed");
    }

    fn fqdn_connector(fqdn: &str) -> SendConnector {
        let mut c = pinned();
        c.tls_certificate_name = None;
        c.fqdn = Some(fqdn.to_string());
        c
    }

    #[test]
    fn fqdn_path_requires_key_and_prefers_pki() {
        let mut desc = fixtures::classic_twins(true);
        desc.certificates
            .push(fixtures::exchange_self_signed("EDGE01", "mail.contoso.com"));
        let (_, s) = run(
            &desc,
            &fqdn_connector("mail.contoso.com"),
            DuplicatePolicy::FirstInStore,
        );
        assert_eq!(chosen_name(&s), "keyed");
        assert_eq!(s.candidates[0].verdict, CandidateVerdict::NoPrivateKey);
        assert!(matches!(
            s.candidates[2].verdict,
            CandidateVerdict::Outranked { .. }
        ));
        // the self-signed default when the public certificate does not carry the FQDN (FM-08)
        let (_, s) = run(
            &desc,
            &fqdn_connector("EDGE01"),
            DuplicatePolicy::FirstInStore,
        );
        assert_eq!(chosen_name(&s), "self-signed");
        // server FQDN when the connector has none
        let mut c = fqdn_connector("x");
        c.fqdn = None;
        let (_, s) = run(&desc, &c, DuplicatePolicy::FirstInStore);
        assert!(matches!(&s.path, SelectionPath::Fqdn { fqdn } if fqdn == "edge01.contoso.com"));
        assert_eq!(s.outcome, SelectionOutcome::NoCertificate);
        assert_eq!(s.events[0].id, 12014);
    }

    #[test]
    fn fqdn_path_newest_first_wildcard_and_expired() {
        let mut desc = StoreDescription {
            authorities: fixtures::authorities(),
            certificates: Vec::new(),
        };
        let mut old = fixtures::contoso("old");
        old.not_before = Some(TimeSpec::Days(-300));
        let mut new = fixtures::contoso("new");
        new.not_before = Some(TimeSpec::Days(-10));
        let mut wild = CertDescription::new("wild", "CN=*.contoso.com", Some("issuing")).unwrap();
        wild.not_before = Some(TimeSpec::Days(-1));
        desc.certificates = vec![old, new, wild];
        let (_, s) = run(
            &desc,
            &fqdn_connector("mail.contoso.com"),
            DuplicatePolicy::FirstInStore,
        );
        assert_eq!(chosen_name(&s), "new");
        assert_eq!(s.candidates[2].verdict, CandidateVerdict::NameMismatch);
        let (_, s) = run(
            &desc,
            &fqdn_connector("smtp.contoso.com"),
            DuplicatePolicy::FirstInStore,
        );
        assert_eq!(chosen_name(&s), "wild");
        // only an expired PKI certificate: still chosen, with event 12016
        let mut exp = fixtures::contoso("expired");
        exp.not_before = Some(TimeSpec::Days(-400));
        exp.not_after = Some(TimeSpec::Days(-2));
        let mut eku = fixtures::contoso("client-only");
        eku.ekus = vec![hybridlab_labkit::pki::Eku::ClientAuth];
        desc.certificates = vec![eku, exp];
        let (_, s) = run(
            &desc,
            &fqdn_connector("mail.contoso.com"),
            DuplicatePolicy::FirstInStore,
        );
        assert_eq!(chosen_name(&s), "expired");
        assert!(matches!(
            s.candidates[0].verdict,
            CandidateVerdict::Unsuitable { .. }
        ));
        assert_eq!(s.events[0].id, 12016);
    }

    #[test]
    fn fqdn_untrusted_chain_rejected_and_fail_knob() {
        let mut desc = fixtures::classic_twins(false);
        desc.authorities[0].installed = false;
        let store = CertStore::build(&desc, now()).unwrap();
        let s = select(
            &store,
            &fqdn_connector("mail.contoso.com"),
            "edge01",
            &SelectionSettings {
                fqdn_not_found: FqdnNotFound::Fail,
                ..Default::default()
            },
            now(),
        )
        .unwrap();
        assert_eq!(s.candidates[0].verdict, CandidateVerdict::UntrustedChain);
        assert!(matches!(s.outcome, SelectionOutcome::NotFound { .. }));
    }

    #[test]
    fn bad_identifier_is_an_error() {
        let mut c = pinned();
        c.tls_certificate_name = Some("mail.contoso.com".into());
        let store = CertStore::new();
        assert!(select(&store, &c, "x", &SelectionSettings::default(), now()).is_err());
    }
}
