//! Inbound STARTTLS certificate selection of a receive connector ("Inbound STARTTLS
//! certificates selection", docs/domain.md sections 2.3 and 11.2):
//!
//! 1. `TlsCertificateName` set: the certificate of `LocalMachine\My` whose issuer and subject
//!    match (case-insensitive DN compare). One that is missing, has no private key the transport
//!    can open, or whose chain does not build locally is *not usable*: event 12014 and **no
//!    STARTTLS in the EHLO reply** (no silent fallback). An expired one is still presented (event
//!    12016), so the sender sees `CertificateExpired`.
//! 2. `TlsCertificateName` empty: by the connector's `Fqdn` (else the server's FQDN), exact names
//!    before wildcard ones, among certificates with a usable private key, enabled for SMTP, in
//!    date and trusted locally (or self-signed); several candidates: [`TieBreak`] decides (the
//!    reference says "latest expiry", marked uncertain, so it is a setting).
//! 3. Nothing: the server's self-signed `CN=<SERVER>` certificate (Exchange's default one), if it
//!    has a usable key; failing that, 12014 and no STARTTLS.
//!
//! Every certificate of the store gets a verdict ([`InboundCandidate`]) so the lab can narrate
//! why the one presented was presented.

use std::fmt;

use hybridlab_model::event::WindowsEvent;
use hybridlab_model::identifier::X509Identifier;
use hybridlab_model::x509::{dn_eq, name_matches};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::connector::ReceiveConnector;
use super::events::{self, EventOrigin};
use hybridlab_onprem::certstore::{CertStore, StoreEntry};

/// Which candidate wins on the FQDN path when several qualify \[U\].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TieBreak {
    /// The latest NotAfter (the 2025 Exchange blog's description; default).
    #[default]
    LatestNotAfter,
    /// The newest NotBefore.
    NewestNotBefore,
    /// The first in store enumeration order.
    FirstInStore,
}

/// Knobs of the inbound selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboundSelectionSettings {
    /// FQDN path: who wins among several candidates.
    pub tie_break: TieBreak,
    /// Event 12018 when the chosen certificate expires within this many days \[U\].
    pub expiry_warning_days: u32,
}

impl Default for InboundSelectionSettings {
    fn default() -> Self {
        Self {
            tie_break: TieBreak::default(),
            expiry_warning_days: 30,
        }
    }
}

/// Which search produced the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "path")]
pub enum InboundPath {
    /// By `TlsCertificateName`.
    TlsCertificateName {
        /// The identifier, `<I>issuer<S>subject`.
        identifier: String,
    },
    /// By the connector's FQDN.
    Fqdn {
        /// The name searched.
        fqdn: String,
    },
    /// The FQDN search found nothing: the server's self-signed certificate.
    SelfSigned {
        /// The name the FQDN search looked for first.
        fqdn: String,
        /// The server name (`CN=<SERVER>`).
        server: String,
    },
}

/// Why a certificate was chosen or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum InboundVerdict {
    /// Presented in STARTTLS.
    Chosen,
    /// Qualified but lost.
    Outranked {
        /// Why the chosen one won.
        reason: String,
    },
    /// `TlsCertificateName` path: subject differs.
    SubjectMismatch,
    /// `TlsCertificateName` path: subject matches, issuer differs.
    IssuerMismatch,
    /// FQDN path: no name matches.
    NameMismatch,
    /// FQDN path: only a wildcard name matches and an exact match exists.
    WildcardBehindExact,
    /// No private key at all.
    NoPrivateKey,
    /// A private key the transport cannot open (`Enable-ExchangeCertificate -Services SMTP`
    /// fixes the permission).
    KeyNotReadable,
    /// FQDN path: not enabled for SMTP.
    NotEnabledForSmtp,
    /// Out of date or not trusted locally.
    NotValid {
        /// Which.
        reason: String,
    },
    /// Not looked at (the self-signed fallback only looks at `CN=<SERVER>`).
    NotConsidered,
}

impl fmt::Display for InboundVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Chosen => f.write_str("chosen"),
            Self::Outranked { reason } => write!(f, "qualifies, not chosen ({reason})"),
            Self::SubjectMismatch => f.write_str("subject differs"),
            Self::IssuerMismatch => f.write_str("subject matches, issuer differs"),
            Self::NameMismatch => f.write_str("no name matches"),
            Self::WildcardBehindExact => f.write_str("wildcard match, an exact match exists"),
            Self::NoPrivateKey => f.write_str("no private key"),
            Self::KeyNotReadable => f.write_str("private key not readable by the transport"),
            Self::NotEnabledForSmtp => f.write_str("not enabled for SMTP"),
            Self::NotValid { reason } => write!(f, "not valid ({reason})"),
            Self::NotConsidered => f.write_str("not considered"),
        }
    }
}

/// One certificate of `LocalMachine\My` and what the search made of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundCandidate {
    /// Scenario-local name.
    pub name: String,
    /// Subject DN.
    pub subject: String,
    /// Thumbprint.
    pub thumbprint: String,
    /// Position in enumeration order.
    pub enumeration_index: usize,
    /// The verdict.
    pub verdict: InboundVerdict,
}

/// What the selection produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum InboundOutcome {
    /// This certificate is presented in STARTTLS.
    Selected {
        /// Its thumbprint.
        thumbprint: String,
        /// Its scenario-local name.
        name: String,
        /// One sentence why.
        why: String,
    },
    /// Nothing usable: event 12014, STARTTLS is not advertised.
    NoCertificate {
        /// One sentence why.
        why: String,
    },
}

/// The full result, for the session (which certificate) and for narration (why).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundSelection {
    /// Which search decided.
    pub path: InboundPath,
    /// The result.
    pub outcome: InboundOutcome,
    /// Every certificate of the store, in enumeration order, with its verdict.
    pub candidates: Vec<InboundCandidate>,
    /// Events the transport logs for it (12014, 12016, 12018).
    pub events: Vec<WindowsEvent>,
}

impl InboundSelection {
    /// The chosen store entry.
    pub fn chosen<'a>(&self, store: &'a CertStore) -> Option<&'a StoreEntry> {
        match &self.outcome {
            InboundOutcome::Selected { thumbprint, .. } => store.by_thumbprint(thumbprint),
            InboundOutcome::NoCertificate { .. } => None,
        }
    }

    /// A narration, one line per step.
    pub fn narrate(&self) -> Vec<String> {
        let mut out = vec![match &self.path {
            InboundPath::TlsCertificateName { identifier } => format!(
                "TlsCertificateName is set: look for {identifier} (no fallback if it is unusable)"
            ),
            InboundPath::Fqdn { fqdn } => format!(
                "TlsCertificateName is empty: look for a certificate for {fqdn:?} with a usable key"
            ),
            InboundPath::SelfSigned { fqdn, server } => {
                format!("no certificate for {fqdn:?}: fall back to the self-signed CN={server}")
            }
        }];
        for c in &self.candidates {
            out.push(format!(
                "  #{} {} ({}, {}): {}",
                c.enumeration_index, c.thumbprint, c.name, c.subject, c.verdict
            ));
        }
        out.push(match &self.outcome {
            InboundOutcome::Selected { why, .. } => format!("presented: {why}"),
            InboundOutcome::NoCertificate { why } => {
                format!("no certificate: {why}; STARTTLS is not advertised")
            }
        });
        for e in &self.events {
            out.push(format!("event {} {}", e.id, e.symbolic_name));
        }
        out
    }
}

fn candidate(e: &StoreEntry, verdict: InboundVerdict) -> InboundCandidate {
    InboundCandidate {
        name: e.name.clone(),
        subject: e.facts.subject.clone(),
        thumbprint: e.facts.thumbprint.clone(),
        enumeration_index: e.enumeration_index,
        verdict,
    }
}

fn key_verdict(e: &StoreEntry) -> Option<InboundVerdict> {
    if !e.has_private_key {
        Some(InboundVerdict::NoPrivateKey)
    } else if !e.key_readable {
        Some(InboundVerdict::KeyNotReadable)
    } else {
        None
    }
}

/// Whether the chain builds locally, judged inside the certificate's validity (an expired
/// certificate is reported as expired, not as untrusted).
fn trust_reason(store: &CertStore, e: &StoreEntry, now: OffsetDateTime) -> Option<String> {
    let at = if now > e.facts.not_after {
        e.facts.not_after - time::Duration::seconds(1)
    } else if now < e.facts.not_before {
        e.facts.not_before
    } else {
        now
    };
    if e.facts.is_self_signed || store.chains_to_trusted_root(e, at) {
        None
    } else {
        Some("chain does not build to a trusted root".into())
    }
}

/// Runs the inbound selection for `connector` on `store` at `now` (what the service does when it
/// starts or reloads its configuration). `server` is the server's NetBIOS name, `server_fqdn` its
/// FQDN; `machine` names the computer in the events.
pub fn select_inbound(
    store: &CertStore,
    connector: &ReceiveConnector,
    server_fqdn: &str,
    settings: &InboundSelectionSettings,
    now: OffsetDateTime,
) -> InboundSelection {
    let origin = EventOrigin::for_role(connector.transport_role, server_fqdn, now);
    let fqdn = connector.effective_fqdn(server_fqdn).to_string();
    let mut sel = match &connector.tls_certificate_name {
        Some(id) => by_identifier(store, connector, id, &fqdn, &origin, now),
        None => by_fqdn(store, connector, &fqdn, settings, &origin, now),
    };
    if let Some(entry) = sel.chosen(store) {
        let f = &entry.facts;
        if now > f.not_after {
            sel.events.push(events::starttls_certificate_expired(
                &origin,
                &fqdn,
                &events::us_datetime(f.not_after),
            ));
        } else if f.not_after - now < time::Duration::days(i64::from(settings.expiry_warning_days))
        {
            sel.events.push(events::starttls_certificate_expires_soon(
                &origin,
                &f.subject,
                &f.thumbprint,
                (f.not_after - now).whole_hours(),
            ));
        }
    }
    sel
}

fn by_identifier(
    store: &CertStore,
    connector: &ReceiveConnector,
    id: &X509Identifier,
    fqdn: &str,
    origin: &EventOrigin,
    now: OffsetDateTime,
) -> InboundSelection {
    let mut candidates = Vec::new();
    let mut chosen: Option<&StoreEntry> = None;
    let mut unusable: Option<String> = None;
    for e in store.my() {
        let verdict = if !dn_eq(&e.facts.subject, &id.subject) {
            InboundVerdict::SubjectMismatch
        } else if !dn_eq(&e.facts.issuer, &id.issuer) {
            InboundVerdict::IssuerMismatch
        } else if let Some(v) = key_verdict(e) {
            unusable.get_or_insert_with(|| format!("{} ({v})", e.facts.thumbprint));
            v
        } else if let Some(reason) = trust_reason(store, e, now) {
            unusable.get_or_insert_with(|| format!("{} ({reason})", e.facts.thumbprint));
            InboundVerdict::NotValid { reason }
        } else if let Some(c) = chosen {
            InboundVerdict::Outranked {
                reason: format!("{} matched first", c.facts.thumbprint),
            }
        } else {
            chosen = Some(e);
            InboundVerdict::Chosen
        };
        candidates.push(candidate(e, verdict));
    }
    let path = InboundPath::TlsCertificateName {
        identifier: id.to_string(),
    };
    match chosen {
        Some(e) => InboundSelection {
            path,
            outcome: InboundOutcome::Selected {
                thumbprint: e.facts.thumbprint.clone(),
                name: e.name.clone(),
                why: format!("issuer and subject match TlsCertificateName ({})", e.name),
            },
            candidates,
            events: Vec::new(),
        },
        None => InboundSelection {
            path,
            outcome: InboundOutcome::NoCertificate {
                why: match unusable {
                    Some(u) => format!("the certificate TlsCertificateName names is not usable: {u}"),
                    None => "no certificate in LocalMachine\\My has the issuer and subject TlsCertificateName names".into(),
                },
            },
            candidates,
            events: vec![events::cannot_load_starttls_certificate(
                origin,
                &id.to_string(),
                &connector.name,
                fqdn,
            )],
        },
    }
}

fn by_fqdn(
    store: &CertStore,
    connector: &ReceiveConnector,
    fqdn: &str,
    settings: &InboundSelectionSettings,
    origin: &EventOrigin,
    now: OffsetDateTime,
) -> InboundSelection {
    // First pass: which certificates qualify, and whether their match is exact.
    let mut verdicts: Vec<Option<InboundVerdict>> = Vec::new();
    let mut exact = Vec::new();
    let mut wildcard = Vec::new();
    for (i, e) in store.my().iter().enumerate() {
        let names = e.facts.names();
        let is_exact = names
            .iter()
            .any(|n| !n.starts_with("*.") && name_matches(n, fqdn));
        let is_wild = names
            .iter()
            .any(|n| n.starts_with("*.") && name_matches(n, fqdn));
        let v = if !is_exact && !is_wild {
            Some(InboundVerdict::NameMismatch)
        } else if let Some(v) = key_verdict(e) {
            Some(v)
        } else if !e.smtp_enabled() {
            Some(InboundVerdict::NotEnabledForSmtp)
        } else if !e.facts.is_time_valid(now) {
            Some(InboundVerdict::NotValid {
                reason: if now > e.facts.not_after {
                    "expired".into()
                } else {
                    "not yet valid".into()
                },
            })
        } else if let Some(reason) = trust_reason(store, e, now) {
            Some(InboundVerdict::NotValid { reason })
        } else {
            if is_exact {
                exact.push(i);
            } else {
                wildcard.push(i);
            }
            None
        };
        verdicts.push(v);
    }
    let pool = if exact.is_empty() { &wildcard } else { &exact };
    if !exact.is_empty() {
        for &i in &wildcard {
            verdicts[i] = Some(InboundVerdict::WildcardBehindExact);
        }
    }
    let my = store.my();
    let chosen = match settings.tie_break {
        TieBreak::FirstInStore => pool.first().copied(),
        TieBreak::LatestNotAfter => pool
            .iter()
            .copied()
            .rev()
            .max_by_key(|&i| my[i].facts.not_after),
        TieBreak::NewestNotBefore => pool
            .iter()
            .copied()
            .rev()
            .max_by_key(|&i| my[i].facts.not_before),
    };
    if let Some(c) = chosen {
        let rule = match settings.tie_break {
            TieBreak::FirstInStore => "first in store order",
            TieBreak::LatestNotAfter => "latest NotAfter",
            TieBreak::NewestNotBefore => "newest NotBefore",
        };
        for &i in pool {
            verdicts[i] = Some(if i == c {
                InboundVerdict::Chosen
            } else {
                InboundVerdict::Outranked {
                    reason: format!("{} wins: {rule}", my[c].facts.thumbprint),
                }
            });
        }
        let candidates = my
            .iter()
            .zip(verdicts)
            .map(|(e, v)| candidate(e, v.unwrap_or(InboundVerdict::NotConsidered)))
            .collect();
        return InboundSelection {
            path: InboundPath::Fqdn { fqdn: fqdn.into() },
            outcome: InboundOutcome::Selected {
                thumbprint: my[c].facts.thumbprint.clone(),
                name: my[c].name.clone(),
                why: format!(
                    "{} match for {fqdn} with a usable key ({} among {})",
                    if exact.is_empty() {
                        "wildcard"
                    } else {
                        "exact"
                    },
                    rule,
                    pool.len()
                ),
            },
            candidates,
            events: Vec::new(),
        };
    }
    self_signed_fallback(store, connector, fqdn, origin, now)
}

fn self_signed_fallback(
    store: &CertStore,
    connector: &ReceiveConnector,
    fqdn: &str,
    origin: &EventOrigin,
    now: OffsetDateTime,
) -> InboundSelection {
    let server_dn = format!("CN={}", connector.server);
    let mut chosen: Option<&StoreEntry> = None;
    let candidates = store
        .my()
        .iter()
        .map(|e| {
            let verdict = if !(e.facts.is_self_signed && dn_eq(&e.facts.subject, &server_dn)) {
                InboundVerdict::NotConsidered
            } else if let Some(v) = key_verdict(e) {
                v
            } else if !e.facts.is_time_valid(now) {
                InboundVerdict::NotValid {
                    reason: "out of date".into(),
                }
            } else if chosen.is_some() {
                InboundVerdict::Outranked {
                    reason: "an earlier self-signed certificate was taken".into(),
                }
            } else {
                chosen = Some(e);
                InboundVerdict::Chosen
            };
            candidate(e, verdict)
        })
        .collect();
    let path = InboundPath::SelfSigned {
        fqdn: fqdn.into(),
        server: connector.server.clone(),
    };
    match chosen {
        Some(e) => InboundSelection {
            path,
            outcome: InboundOutcome::Selected {
                thumbprint: e.facts.thumbprint.clone(),
                name: e.name.clone(),
                why: format!(
                    "no certificate for {fqdn}: Exchange's self-signed {} is the last resort",
                    e.facts.subject
                ),
            },
            candidates,
            events: Vec::new(),
        },
        None => InboundSelection {
            path,
            outcome: InboundOutcome::NoCertificate {
                why: format!("no usable certificate for {fqdn} and no self-signed {server_dn}"),
            },
            candidates,
            events: vec![events::cannot_load_starttls_certificate(
                origin,
                fqdn,
                &connector.name,
                fqdn,
            )],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hybridlab_onprem::certstore::{StoreDescription, TimeSpec, fixtures};

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-05-02 06:30 UTC)
    }

    fn store(certs: Vec<hybridlab_onprem::certstore::CertDescription>) -> CertStore {
        CertStore::build(
            &StoreDescription {
                authorities: fixtures::authorities(),
                certificates: certs,
            },
            now(),
        )
        .unwrap()
    }

    #[test]
    fn pinned_certificate_is_presented_and_a_stale_pin_removes_starttls() {
        let s = store(vec![
            fixtures::exchange_self_signed("EXCH01", "EXCH01.contoso.com"),
            fixtures::contoso("hybrid"),
        ]);
        let pin: X509Identifier = s
            .entry("hybrid")
            .unwrap()
            .x509_identifier()
            .parse()
            .unwrap();
        let c = ReceiveConnector::default_frontend("EXCH01").hybrid(pin, None);
        let sel = select_inbound(&s, &c, "EXCH01.contoso.com", &Default::default(), now());
        assert!(matches!(&sel.outcome, InboundOutcome::Selected { name, .. } if name == "hybrid"));
        assert!(sel.events.is_empty());

        let stale: X509Identifier = "<I>CN=Old CA<S>CN=mail.contoso.com".parse().unwrap();
        let c = ReceiveConnector::default_frontend("EXCH01").hybrid(stale, None);
        let sel = select_inbound(&s, &c, "EXCH01.contoso.com", &Default::default(), now());
        assert!(matches!(sel.outcome, InboundOutcome::NoCertificate { .. }));
        assert_eq!(sel.events[0].id, 12014);
        assert!(
            sel.events[0]
                .message
                .contains("<I>CN=Old CA<S>CN=mail.contoso.com")
        );
        assert!(sel.narrate().last().unwrap().contains("12014"));
    }

    #[test]
    fn fqdn_path_prefers_latest_expiry_then_falls_back_to_self_signed() {
        let mut short = fixtures::contoso("short");
        short.not_after = Some(TimeSpec::Days(60));
        let mut long = fixtures::contoso("long");
        long.not_after = Some(TimeSpec::Days(700));
        let mut nokey = fixtures::contoso("nokey");
        nokey.has_private_key = false;
        nokey.not_after = Some(TimeSpec::Days(900));
        let s = store(vec![
            short,
            long,
            nokey,
            fixtures::exchange_self_signed("EXCH01", "EXCH01.contoso.com"),
        ]);
        let mut c = ReceiveConnector::default_frontend("EXCH01");
        c.fqdn = Some("mail.contoso.com".into());
        let sel = select_inbound(&s, &c, "EXCH01.contoso.com", &Default::default(), now());
        assert!(matches!(&sel.outcome, InboundOutcome::Selected { name, .. } if name == "long"));
        assert_eq!(sel.candidates[2].verdict, InboundVerdict::NoPrivateKey);
        let first = InboundSelectionSettings {
            tie_break: TieBreak::FirstInStore,
            ..Default::default()
        };
        let sel = select_inbound(&s, &c, "EXCH01.contoso.com", &first, now());
        assert!(matches!(&sel.outcome, InboundOutcome::Selected { name, .. } if name == "short"));

        c.fqdn = Some("smtp.fabrikam.com".into());
        let sel = select_inbound(&s, &c, "EXCH01.contoso.com", &Default::default(), now());
        assert!(matches!(sel.path, InboundPath::SelfSigned { .. }));
        assert!(
            matches!(&sel.outcome, InboundOutcome::Selected { name, .. } if name == "self-signed")
        );
    }

    #[test]
    fn expired_pinned_certificate_is_presented_with_12016() {
        let mut old = fixtures::contoso("old");
        old.not_before = Some(TimeSpec::Days(-400));
        old.not_after = Some(TimeSpec::Days(-2));
        let s = store(vec![old]);
        let pin: X509Identifier = s.entry("old").unwrap().x509_identifier().parse().unwrap();
        let c = ReceiveConnector::default_frontend("EXCH01").hybrid(pin, None);
        let sel = select_inbound(&s, &c, "EXCH01.contoso.com", &Default::default(), now());
        assert!(matches!(sel.outcome, InboundOutcome::Selected { .. }));
        assert_eq!(sel.events[0].id, 12016);
    }
}
