//! What the connector's TlsCertificateName resolves to: `tls-cert-name-not-found`, `cert-expired`
//! (every certificate it names is expired), `lint-tls-certificate-name-syntax`,
//! `lint-tls-certificate-name-ambiguous`.

use hybridlab_model::x509::dn_eq;

use super::expiry::FIX_EXPIRED;
use crate::FindingId;
use crate::model::{ConnectorView, Ev, Model, SessionView, StoreCert, norm_thumb};
use crate::rules::{Draft, MAX_OCCURRENCES, count, day, fill, when};
use hybridlab_model::identifier::X509Identifier;

/// The renewed certificate a stale TlsCertificateName should point at: time-valid, keyed (or key
/// unknown), same subject and another issuer first, then the same issuer and CN, then the same CN.
fn renewal_candidate<'s>(m: &'s Model<'_>, name: &X509Identifier) -> Option<(&'s StoreCert, u8)> {
    let cn = hybridlab_artefacts::protocol_log::common_names_of(&name.subject);
    m.store
        .certs
        .iter()
        .filter(|c| c.valid_at(m.as_of) && c.has_key != Some(false) && !c.subject.is_empty())
        .filter(|c| !dn_eq(&c.subject, &c.issuer))
        .filter_map(|c| {
            let same_subject = dn_eq(&c.subject, &name.subject);
            let same_issuer = dn_eq(&c.issuer, &name.issuer);
            let same_cn = !cn.is_empty()
                && hybridlab_artefacts::protocol_log::common_names_of(&c.subject) == cn;
            let prio = match (same_subject, same_issuer, same_cn) {
                (true, false, _) => 1,
                (false, true, true) => 2,
                (false, false, true) => 3,
                _ => return None,
            };
            Some((c, prio))
        })
        .min_by_key(|(c, p)| (*p, std::cmp::Reverse(c.not_after)))
}

/// Sessions of a connector that end right after the EHLO reply without STARTTLS and without a
/// certificate block (what an unresolvable TlsCertificateName looks like on the wire).
fn ended_after_ehlo<'m, 'a>(m: &'m Model<'a>, ci: usize) -> Vec<&'m SessionView<'a>> {
    m.sessions_of(ci)
        .filter(|s| {
            s.connected.is_some()
                && s.ehlo_reply.is_some()
                && s.starttls.is_none()
                && s.sending_cert.is_none()
                && s.sent_any("MAIL").is_none()
                && s.disconnect.is_some()
                && s.ehlo_reply.and_then(|i| s.reply(i)).is_some_and(|r| {
                    r.lines
                        .iter()
                        .any(|l| l.trim().eq_ignore_ascii_case("STARTTLS"))
                })
        })
        .collect()
}

const NOT_FOUND: &str = "could not be found";

/// TlsCertificateName that resolves to nothing (tls-cert-name-not-found) or only to expired
/// certificates (cert-expired).
pub(super) fn name_resolution(m: &Model<'_>) -> Vec<Draft> {
    let mut out = Vec::new();
    for (ci, c) in m.connectors.iter().enumerate() {
        let Some(u) = UnresolvedName::of(m, ci, c) else {
            continue;
        };
        out.extend(expired_name(m, &u));
        out.extend(name_not_found(m, &u));
    }
    out
}

/// A connector whose TlsCertificateName names no time-valid certificate, with its symptoms.
struct UnresolvedName<'m, 'a> {
    /// Index of the connector in `Model::connectors`.
    ci: usize,
    c: &'m ConnectorView<'a>,
    /// The parsed TlsCertificateName.
    name: &'m X509Identifier,
    /// The certificates with that issuer and subject that are expired at the reference time.
    expired: Vec<&'m StoreCert>,
    /// The newest symptom lines: 454 "could not be found" replies, then the EHLO reply and
    /// disconnect of the newest session that ended after EHLO.
    symptoms: Vec<Ev>,
    /// The EHLO reply and disconnect lines of older such sessions.
    older: Vec<Ev>,
    /// The ids of the sessions that show a symptom.
    sessions: Vec<String>,
    /// How many sessions ended right after EHLO.
    quiet: usize,
    /// The queue LastError lines that say "could not be found".
    queue_ev: Vec<Ev>,
    /// The renewed certificate the name should point at, with its priority
    /// ([`renewal_candidate`]).
    renewal: Option<(&'m StoreCert, u8)>,
}

impl<'m, 'a> UnresolvedName<'m, 'a> {
    /// `None` when the connector has no parsed TlsCertificateName or a time-valid certificate
    /// matches it.
    fn of(m: &'m Model<'a>, ci: usize, c: &'m ConnectorView<'a>) -> Option<Self> {
        let name = c.tls_name.as_ref()?;
        let matches: Vec<&StoreCert> = m.store.matching(&name.issuer, &name.subject).collect();
        if matches.iter().any(|x| x.valid_at(m.as_of)) {
            return None;
        }
        // Symptoms: the 454 "could not be found" reply (queue or log), sessions ending after EHLO.
        let mut symptoms: Vec<Ev> = Vec::new();
        let mut sessions = Vec::new();
        let mut quiet: Vec<_> = ended_after_ehlo(m, ci);
        quiet.sort_by_key(|s| std::cmp::Reverse(s.start));
        for s in m.sessions_of(ci) {
            for (i, r) in s.replies() {
                if r.text().contains(NOT_FOUND) {
                    symptoms.push(s.ev(i));
                    sessions.push(s.id().to_string());
                }
            }
        }
        let mut older = Vec::new();
        for (k, s) in quiet.iter().take(MAX_OCCURRENCES).enumerate() {
            let target = if k == 0 { &mut symptoms } else { &mut older };
            if let Some(i) = s.ehlo_reply {
                target.push(s.ev(i));
            }
            if let Some(i) = s.disconnect {
                target.push(s.ev(i));
            }
        }
        sessions.extend(quiet.iter().map(|s| s.id().to_string()));
        let expired = matches
            .iter()
            .copied()
            .filter(|x| x.expired_at(m.as_of))
            .collect();
        Some(Self {
            ci,
            c,
            name,
            expired,
            symptoms,
            older,
            sessions,
            quiet: quiet.len(),
            queue_ev: m.queue_evs(Some(ci), &[NOT_FOUND]),
            renewal: renewal_candidate(m, name),
        })
    }

    fn has_queue_symptom(&self) -> bool {
        !self.queue_ev.is_empty()
    }

    /// The renewed certificate's thumbprint, else the `<NEW_THUMBPRINT>` placeholder.
    fn new_thumb(&self) -> String {
        self.renewal
            .map_or("<NEW_THUMBPRINT>".to_string(), |(r, _)| {
                r.thumbprint.clone()
            })
    }

    /// How the failure shows: the queue's 454, sessions ending after EHLO, or no STARTTLS.
    fn symptom_text(&self) -> String {
        if self.has_queue_symptom() {
            "454 4.7.5 The certificate specified in TlsCertificateName of the SendConnector could not be found."
                .to_string()
        } else if self.quiet > 0 {
            format!(
                "{} end right after EHLO, without STARTTLS",
                count(self.quiet, "session")
            )
        } else {
            "no STARTTLS is possible".to_string()
        }
    }

    /// A draft of `id` with the connector, the sessions and the symptom lines after `first`.
    fn draft(&self, id: FindingId, key: String, first: &[Option<Ev>]) -> Draft {
        let mut d = Draft::new(id, key);
        d.connector = Some(self.ci);
        d.sessions = self.sessions.clone();
        for e in first {
            d.evidence.push_opt(e.clone());
        }
        d.evidence.extend(self.queue_ev.iter().cloned());
        d.evidence.extend(self.symptoms.iter().cloned());
        for e in &self.older {
            d.evidence.push_later(e.clone());
        }
        d
    }
}

/// cert-expired: every certificate the identifier names is expired.
fn expired_name(m: &Model<'_>, u: &UnresolvedName<'_, '_>) -> Option<Draft> {
    let c = u.c;
    let newest = u.expired.iter().copied().max_by_key(|x| x.not_after)?;
    let mut d = u.draft(
        FindingId::CertExpired,
        format!("{}|{}", c.name, newest.thumbprint),
        &[
            newest.ev_not_after.clone(),
            newest.ev_status.clone(),
            newest.ev(),
            c.prop("TlsCertificateName"),
        ],
    );
    let na = newest
        .not_after
        .map_or_else(|| "an earlier date (Status DateInvalid)".to_string(), day);
    d.explanation = format!(
        "The certificate named by the send connector \"{}\" ({}, {}) expired on {na}{}. The transport only \
         loads time-valid certificates, so it behaves as if the certificate were missing ({}) \
         and mail to Exchange Online queues. Install the renewed certificate and point the connectors at it.",
        c.name,
        newest.thumbprint,
        newest.subject,
        m.as_of
            .map(|t| format!(" (reference time {})", when(t)))
            .unwrap_or_default(),
        u.symptom_text(),
    );
    d.fix = fill(
        FIX_EXPIRED,
        &[
            ("SERVER", &m.server_name()),
            ("NEW_THUMBPRINT", &u.new_thumb()),
            ("CONNECTOR", &c.name),
            ("EXPIRED_THUMBPRINT", &newest.thumbprint),
        ],
    );
    Some(d)
}

/// tls-cert-name-not-found: the lookup finds nothing. A complete store listing (provider) or a
/// symptom proves it; Get-ExchangeCertificate alone cannot (it hides key-less ones).
fn name_not_found(m: &Model<'_>, u: &UnresolvedName<'_, '_>) -> Option<Draft> {
    let (c, name) = (u.c, u.name);
    let logged_match = m.sessions_of(u.ci).any(|s| {
        s.sending_cert
            .and_then(|i| s.cert(i))
            .is_some_and(|x| dn_eq(&x.subject, &name.subject) && dn_eq(&x.issuer, &name.issuer))
    });
    let any_symptom = !u.symptoms.is_empty() || u.has_queue_symptom();
    let proven = if m.store.listed() {
        (m.store.provider_listed && !logged_match) || any_symptom
    } else {
        u.has_queue_symptom() || u.symptoms.iter().any(|e| e.text.contains(NOT_FOUND))
    };
    if !proven {
        return None;
    }
    let mut d = u.draft(
        FindingId::TlsCertNameNotFound,
        c.name.clone(),
        &[c.prop("TlsCertificateName")],
    );
    let drift = match u.renewal {
        Some((r, 1)) => {
            d.evidence.push_opt(r.ev_issuer.clone());
            d.evidence.push_opt(r.ev());
            format!(
                " The renewed certificate {} has the same subject but another issuer ({}): the CA changed \
                 intermediates, so the identifier no longer matches (issuer drift).",
                r.thumbprint, r.issuer
            )
        }
        Some((r, _)) => {
            d.evidence.push_opt(r.ev());
            format!(
                " Certificate {} ({} issued by {}) carries the same name and is the likely replacement.",
                r.thumbprint, r.subject, r.issuer
            )
        }
        None => String::new(),
    };
    let expired_note = if !u.expired.is_empty() {
        " The only matching certificates are expired (see cert-expired).".to_string()
    } else {
        String::new()
    };
    d.explanation = format!(
        "The send connector \"{}\" looks its certificate up by issuer and subject: TlsCertificateName is \"{raw}\". \
         No time-valid certificate in the store has that issuer and subject, so the lookup finds nothing, \
         STARTTLS cannot start and every session fails ({symptom_text}).{drift}{expired_note} Point the connector \
         at the current certificate.",
        c.name,
        raw = c.tls_name_raw.as_deref().unwrap_or_default(),
        symptom_text = u.symptom_text(),
    );
    d.fix = fill(
        FIX_NAME_NOT_FOUND,
        &[
            ("NEW_THUMBPRINT", &u.new_thumb()),
            ("CONNECTOR", &c.name),
            ("SERVER", &m.server_name()),
        ],
    );
    Some(d)
}

/// lint-tls-certificate-name-syntax and lint-tls-certificate-name-ambiguous.
pub(super) fn name_lints(m: &Model<'_>) -> Vec<Draft> {
    let mut out = Vec::new();
    for (ci, c) in m.connectors.iter().enumerate() {
        let Some(raw) = &c.tls_name_raw else { continue };
        match &c.tls_name {
            None => {
                let mut d = Draft::new(FindingId::LintTlsCertificateNameSyntax, c.name.clone());
                d.connector = Some(ci);
                d.evidence.push_opt(c.prop("TlsCertificateName"));
                let hex = norm_thumb(raw);
                let thumb = if hex.len() == 40 && hex.chars().all(|ch| ch.is_ascii_hexdigit()) {
                    hex
                } else {
                    m.store
                        .certs
                        .iter()
                        .find(|x| {
                            !x.subject.is_empty()
                                && raw
                                    .to_ascii_lowercase()
                                    .contains(&x.subject.to_ascii_lowercase())
                        })
                        .map_or_else(|| "<THUMBPRINT>".to_string(), |x| x.thumbprint.clone())
                };
                d.explanation = format!(
                    "The send connector \"{}\" has TlsCertificateName \"{raw}\", which is not of the form \
                     <I>issuer<S>subject. The transport can never find a certificate with this value, so STARTTLS \
                     cannot present the intended certificate.",
                    c.name
                );
                d.fix = fill(
                    FIX_SYNTAX,
                    &[("THUMBPRINT", &thumb), ("CONNECTOR", &c.name)],
                );
                out.push(d);
            }
            Some(name) => {
                let valid: Vec<&StoreCert> = m
                    .store
                    .matching(&name.issuer, &name.subject)
                    .filter(|x| x.valid_at(m.as_of))
                    .collect();
                if valid.len() < 2 {
                    continue;
                }
                let older = valid
                    .iter()
                    .min_by_key(|x| (x.not_before, x.not_after))
                    .copied()
                    .unwrap_or(valid[0]);
                let mut d = Draft::new(FindingId::LintTlsCertificateNameAmbiguous, c.name.clone());
                d.connector = Some(ci);
                d.evidence.push_opt(c.prop("TlsCertificateName"));
                for x in &valid {
                    d.evidence.push_opt(x.ev());
                }
                let list: Vec<String> = valid
                    .iter()
                    .map(|x| {
                        format!(
                            "{} (NotAfter {}{})",
                            x.thumbprint,
                            x.not_after.map_or_else(|| "unknown".to_string(), day),
                            match x.has_key {
                                Some(true) => ", with key",
                                Some(false) => ", no key",
                                None => "",
                            }
                        )
                    })
                    .collect();
                d.explanation = format!(
                    "The TlsCertificateName of the send connector \"{}\" matches {} valid certificates: {}. The \
                     connector cannot tell them apart; the transport takes the first one it enumerates, which may be \
                     the older or a key-less one. Keep exactly one.",
                    c.name,
                    valid.len(),
                    list.join(", ")
                );
                let subject = name.subject.replace('\'', "''");
                let issuer = name.issuer.replace('\'', "''");
                d.fix = fill(
                    FIX_AMBIGUOUS,
                    &[
                        ("SUBJECT", &subject),
                        ("ISSUER", &issuer),
                        ("OLDER_THUMBPRINT", &older.thumbprint),
                    ],
                );
                out.push(d);
            }
        }
    }
    out
}

const FIX_NAME_NOT_FOUND: &str = "$c = Get-ExchangeCertificate -Thumbprint <NEW_THUMBPRINT>
Set-SendConnector \"<CONNECTOR>\" -TlsCertificateName \"<I>$($c.Issuer)<S>$($c.Subject)\"
# the hybrid receive connector and the hybrid configuration usually carry the same stale value
Set-ReceiveConnector \"<SERVER>\\Default Frontend <SERVER>\" -TlsCertificateName \"<I>$($c.Issuer)<S>$($c.Subject)\"
Set-HybridConfiguration -TlsCertificateName \"<I>$($c.Issuer)<S>$($c.Subject)\"
Restart-Service MSExchangeTransport
Get-Queue | Where Status -eq Retry | Retry-Queue";

const FIX_SYNTAX: &str = "$c = Get-ExchangeCertificate -Thumbprint <THUMBPRINT>
Set-SendConnector \"<CONNECTOR>\" -TlsCertificateName \"<I>$($c.Issuer)<S>$($c.Subject)\"";

const FIX_AMBIGUOUS: &str = "Get-ChildItem Cert:\\LocalMachine\\My | Where-Object { $_.Subject -eq '<SUBJECT>' -and $_.Issuer -eq '<ISSUER>' } | Format-List Thumbprint,HasPrivateKey,NotBefore,NotAfter
Get-ChildItem Cert:\\LocalMachine\\My\\<OLDER_THUMBPRINT> | Remove-Item
Restart-Service MSExchangeTransport";
