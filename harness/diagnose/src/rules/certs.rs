//! Rules about this server's own certificate: `cert-keyless-duplicate`,
//! `cert-missing-private-key`, `cert-key-inaccessible`, `tls-cert-name-not-found`,
//! `cert-expired`, `cert-invisible-to-ems`, `cert-expiring-soon`,
//! `lint-tls-certificate-name-syntax`, `lint-tls-certificate-name-ambiguous`.

use std::collections::BTreeMap;

use hybridlab_model::x509::{CertFacts, dn_eq};

use super::{Draft, MAX_OCCURRENCES, count, day, fill, when};
use crate::model::{Ev, Model, SessionView, StoreCert, TlsName, norm_thumb};
use crate::{FindingId, Options};
use hybridlab_artefacts::certs::ExchangeService;
use hybridlab_model::exchange::SecurityStatus;

pub(crate) fn rules(m: &Model<'_>, opts: &Options) -> Vec<Draft> {
    let mut out = Vec::new();
    out.extend(credentials(m, SecurityStatus::NoCredentials));
    out.extend(credentials(m, SecurityStatus::UnknownCredentials));
    out.extend(name_resolution(m));
    out.extend(expired_in_log(m));
    out.extend(invisible_to_ems(m));
    out.extend(expiring_soon(m, opts));
    out.extend(name_lints(m));
    out
}

/// Sessions that failed with `status`, grouped by connector and presented thumbprint, newest
/// first within each group: (session, certificate event, failure event).
type Failures<'m, 'a> =
    BTreeMap<(Option<usize>, String), Vec<(&'m SessionView<'a>, Option<usize>, usize)>>;

fn failures_with<'m, 'a>(m: &'m Model<'a>, status: SecurityStatus) -> Failures<'m, 'a> {
    let mut groups: Failures<'m, 'a> = BTreeMap::new();
    for s in &m.sessions {
        let Some((st, fi)) = s.tls_failed else {
            continue;
        };
        if st != status {
            continue;
        }
        let ci = s.sending_cert.filter(|&c| c < fi);
        let thumb = ci
            .and_then(|c| s.cert(c))
            .map(|c| norm_thumb(&c.thumbprint))
            .unwrap_or_default();
        groups
            .entry((s.connector, thumb))
            .or_default()
            .push((s, ci, fi));
    }
    for v in groups.values_mut() {
        v.sort_by_key(|(s, _, fi)| std::cmp::Reverse(s.at(*fi)));
    }
    groups
}

/// The identifier a failing certificate was chosen by: the logged subject and issuer, else the
/// connector's TlsCertificateName.
fn identity_of(logged: Option<&CertFacts>, name: Option<&TlsName>) -> Option<TlsName> {
    match logged {
        Some(c) if !c.subject.is_empty() && !c.issuer.is_empty() => Some(TlsName {
            issuer: c.issuer.clone(),
            subject: c.subject.clone(),
        }),
        _ => name.cloned(),
    }
}

/// NoCredentials -> cert-keyless-duplicate / cert-missing-private-key;
/// UnknownCredentials -> cert-key-inaccessible.
fn credentials(m: &Model<'_>, status: SecurityStatus) -> Vec<Draft> {
    let mut out = Vec::new();
    for ((conn, thumb), fails) in failures_with(m, status) {
        let (s0, c0, _) = fails[0];
        let logged = c0.and_then(|c| s0.cert(c));
        let connector = conn.map(|i| &m.connectors[i]);
        let cname =
            connector.map_or_else(|| s0.ps.session.connector_id.clone(), |c| c.name.clone());
        let ident = identity_of(logged, connector.and_then(|c| c.tls_name.as_ref()));
        let store_t = (!thumb.is_empty()).then(|| m.store.get(&thumb)).flatten();

        // The failure lines, most recent first.
        let mut fail_ev = Vec::new();
        let mut sessions = Vec::new();
        for (k, (s, ci, fi)) in fails.iter().take(MAX_OCCURRENCES).enumerate() {
            if let Some(ci) = ci {
                fail_ev.push((k, s.thumbprint_ev(*ci)));
            }
            fail_ev.push((k, s.ev(*fi)));
        }
        for (s, _, _) in &fails {
            sessions.push(s.id().to_string());
        }
        let n = fails.len();
        let last = when(s0.at(fails[0].2));
        let queue_ev = m.queue_evs(conn, &[]);
        let led = conn
            .and_then(|ci| m.queues_of(ci).next())
            .map(|q| q.led().to_string());
        let tls_name_ev = connector.and_then(|c| c.prop("TlsCertificateName"));

        if status == SecurityStatus::UnknownCredentials {
            let mut d = Draft::new(FindingId::CertKeyInaccessible, format!("{cname}|{thumb}"));
            d.connector = conn;
            d.sessions = sessions;
            for (k, e) in fail_ev {
                d.occurrence(k, e);
            }
            let mut services_note = String::new();
            if let Some(t) = store_t {
                if t.is_keyed() {
                    d.evidence.push_opt(t.ev());
                }
                if let Some(sv) = &t.services
                    && !sv.contains(&ExchangeService::Smtp)
                {
                    d.evidence.push_opt(t.ev_services.clone());
                    services_note = format!(
                        " Get-ExchangeCertificate shows it with its key but enabled only for {} (not SMTP).",
                        if sv.is_empty() {
                            "no service".to_string()
                        } else {
                            hybridlab_artefacts::certs::services_text(sv)
                        }
                    );
                }
            }
            d.evidence.extend(queue_ev);
            let t = if thumb.is_empty() {
                "<THUMBPRINT>".to_string()
            } else {
                thumb.clone()
            };
            d.explanation = format!(
                "The send connector \"{cname}\" presents certificate {t} ({subject}), and SChannel answers \
                 UnknownCredentials ({sessions}, the last at {last}): the certificate and its key are there, \
                 but the transport (running as NETWORK SERVICE) is not allowed to open the key.{services_note} \
                 The certificate was imported but never enabled for SMTP, or its key sits in a provider SChannel \
                 cannot use. `Enable-ExchangeCertificate -Services SMTP` grants the access.{queue}",
                subject = logged.map_or("subject not logged", |c| c.subject.as_str()),
                sessions = count(n, "session"),
                queue = led
                    .map(|l| format!(
                        " The queue's \"{l}\" is this failure seen from further away."
                    ))
                    .unwrap_or_default(),
            );
            d.fix = fill(FIX_KEY_INACCESSIBLE, &[("THUMBPRINT", &t)]);
            out.push(d);
            continue;
        }

        // NoCredentials: is there a keyed twin with the same issuer and subject?
        let t_proven_keyed = store_t.is_some_and(|t| t.in_ems);
        let twin: Option<&StoreCert> = ident.as_ref().and_then(|id| {
            m.store
                .matching(&id.issuer, &id.subject)
                .filter(|c| c.thumbprint != thumb && c.is_keyed() && c.valid_at(m.as_of))
                .max_by_key(|c| c.not_after)
        });
        let keyless_line = store_t
            .filter(|t| t.is_keyless())
            .and_then(|t| t.ev_key.clone());
        let absent_from_ems = m.store.ems_listed && !store_t.is_some_and(|t| t.in_ems);
        let proof = if keyless_line.is_some() {
            format!(
                "Cert:\\LocalMachine\\My lists {thumb} with HasPrivateKey False{}",
                if absent_from_ems {
                    " and Get-ExchangeCertificate does not list it"
                } else {
                    ""
                }
            )
        } else if absent_from_ems {
            format!(
                "{thumb} is missing from the Get-ExchangeCertificate listing, which shows only certificates that have a private key"
            )
        } else if !m.store.listed() {
            "no certificate listing was provided to confirm it".to_string()
        } else {
            format!("the listings do not show a key for {thumb}")
        };
        let subject = ident
            .as_ref()
            .map_or_else(|| "(subject not logged)".to_string(), |i| i.subject.clone());
        let queue_phrase = led.as_deref().map_or_else(
            || "\"421 4.4.1 Connection timed out\"".to_string(),
            |l| format!("\"{l}\""),
        );

        match twin.filter(|_| !t_proven_keyed && !thumb.is_empty()) {
            Some(t2) => {
                let mut d = Draft::new(FindingId::CertKeylessDuplicate, format!("{cname}|{thumb}"));
                d.connector = conn;
                d.sessions = sessions;
                for (k, e) in fail_ev {
                    d.occurrence(k, e);
                }
                d.evidence.push_opt(keyless_line);
                if let Some(t) = store_t {
                    d.evidence.push_opt(t.ev());
                }
                d.evidence.push_opt(t2.ev());
                d.evidence.push_opt(tls_name_ev);
                d.evidence.extend(queue_ev);
                d.explanation = format!(
                    "The send connector \"{cname}\" asks for its certificate by issuer and subject \
                     (TlsCertificateName), not by thumbprint. Two certificates in Cert:\\LocalMachine\\My carry \
                     that issuer and subject ({subject}): {t2} with its private key (the one Get-ExchangeCertificate \
                     shows) and {thumb} without one ({proof}), typically a re-issued or re-imported .cer. The \
                     transport took {thumb}, the first match; without a private key SChannel cannot complete the \
                     handshake (TLS negotiation failed with error NoCredentials, {sessions}, the last at {last}) and \
                     Exchange records the failure as {queue_phrase} although nothing timed out. \
                     Get-ExchangeCertificate lists only certificates with a key, which is why it looks \
                     absent. Remove {thumb}; the transport then finds {t2}. Never remove {t2}.",
                    t2 = t2.thumbprint,
                    sessions = count(n, "session"),
                );
                let mut fix = fill(FIX_KEYLESS, &[("KEYLESS_THUMBPRINT", &thumb)]);
                if connector.is_some_and(|c| c.frontend_proxy()) {
                    let at = fix
                        .iter()
                        .position(|l| l.starts_with("Restart-Service MSExchangeTransport"))
                        .map_or(fix.len(), |i| i + 1);
                    fix.insert(
                        at,
                        "Restart-Service MSExchangeFrontEndTransport".to_string(),
                    );
                }
                d.fix = fix;
                out.push(d);
            }
            None => {
                let mut d =
                    Draft::new(FindingId::CertMissingPrivateKey, format!("{cname}|{thumb}"));
                d.connector = conn;
                d.sessions = sessions;
                for (k, e) in fail_ev {
                    d.occurrence(k, e);
                }
                d.evidence.push_opt(keyless_line);
                if let Some(t) = store_t {
                    d.evidence.push_opt(t.ev());
                }
                d.evidence.push_opt(tls_name_ev);
                d.evidence.extend(queue_ev);
                let serial = logged
                    .map(|c| c.serial.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .or_else(|| store_t.and_then(|t| t.serial.clone()))
                    .unwrap_or_else(|| "<SERIAL>".to_string());
                let t = if thumb.is_empty() {
                    "<THUMBPRINT>".to_string()
                } else {
                    thumb.clone()
                };
                let no_store = if m.store.provider_listed {
                    String::new()
                } else {
                    " Without a Get-ChildItem Cert:\\LocalMachine\\My listing a key-less twin cannot be ruled out: \
                     if that listing shows a keyed certificate with the same issuer and subject, remove this one instead."
                        .to_string()
                };
                d.explanation = format!(
                    "The send connector \"{cname}\" presents certificate {t} ({subject}), and SChannel fails with \
                     NoCredentials ({sessions}, the last at {last}): the certificate is installed without its private \
                     key ({proof}), typically a .cer imported on this server while the request was completed on \
                     another one, or the key was deleted. No other time-valid certificate with the same issuer and \
                     subject has a key, so removing it would not help: it is the only one. Re-attach the key or \
                     import the PFX with the key. The queue shows {queue_phrase}, a misleading timeout.{no_store}",
                    sessions = count(n, "session"),
                );
                let server = m.server_name();
                d.fix = fill(
                    FIX_MISSING_KEY,
                    &[("SERIAL", &serial), ("THUMBPRINT", &t), ("SERVER", &server)],
                );
                out.push(d);
            }
        }
    }
    out
}

/// The renewed certificate a stale TlsCertificateName should point at: time-valid, keyed (or key
/// unknown), same subject and another issuer first, then the same issuer and CN, then the same CN.
fn renewal_candidate<'s>(m: &'s Model<'_>, name: &TlsName) -> Option<(&'s StoreCert, u8)> {
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
fn name_resolution(m: &Model<'_>) -> Vec<Draft> {
    let mut out = Vec::new();
    for (ci, c) in m.connectors.iter().enumerate() {
        let Some(name) = &c.tls_name else {
            continue;
        };
        let raw = c.tls_name_raw.clone().unwrap_or_default();
        let matches: Vec<&StoreCert> = m.store.matching(&name.issuer, &name.subject).collect();
        let valid: Vec<&StoreCert> = matches
            .iter()
            .copied()
            .filter(|x| x.valid_at(m.as_of))
            .collect();
        if !valid.is_empty() {
            continue;
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
        let queue_ev = m.queue_evs(Some(ci), &[NOT_FOUND]);
        let has_queue_symptom = !queue_ev.is_empty();
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
        let any_symptom = !symptoms.is_empty() || has_queue_symptom;
        let renewal = renewal_candidate(m, name);
        let name_ev = c.prop("TlsCertificateName");
        let server = m.server_name();
        let new_thumb = renewal.map_or("<NEW_THUMBPRINT>".to_string(), |(r, _)| {
            r.thumbprint.clone()
        });
        let symptom_text = if has_queue_symptom {
            "454 4.7.5 The certificate specified in TlsCertificateName of the SendConnector could not be found."
                .to_string()
        } else if !quiet.is_empty() {
            format!(
                "{} end right after EHLO, without STARTTLS",
                count(quiet.len(), "session")
            )
        } else {
            "no STARTTLS is possible".to_string()
        };

        let expired: Vec<&StoreCert> = matches
            .iter()
            .copied()
            .filter(|x| x.expired_at(m.as_of))
            .collect();
        if !matches.is_empty() && !expired.is_empty() {
            // cert-expired: every certificate the identifier names is expired.
            let newest = expired
                .iter()
                .copied()
                .max_by_key(|x| x.not_after)
                .unwrap_or(expired[0]);
            let mut d = Draft::new(
                FindingId::CertExpired,
                format!("{}|{}", c.name, newest.thumbprint),
            );
            d.connector = Some(ci);
            d.sessions = sessions.clone();
            d.evidence.push_opt(newest.ev_not_after.clone());
            d.evidence.push_opt(newest.ev_status.clone());
            d.evidence.push_opt(newest.ev());
            d.evidence.push_opt(name_ev.clone());
            d.evidence.extend(queue_ev.clone());
            d.evidence.extend(symptoms.iter().cloned());
            for e in &older {
                d.evidence.push_later(e.clone());
            }
            let na = newest
                .not_after
                .map_or_else(|| "an earlier date (Status DateInvalid)".to_string(), day);
            d.explanation = format!(
                "The certificate named by the send connector \"{}\" ({}, {}) expired on {na}{}. The transport only \
                 loads time-valid certificates, so it behaves as if the certificate were missing ({symptom_text}) \
                 and mail to Exchange Online queues. Install the renewed certificate and point the connectors at it.",
                c.name,
                newest.thumbprint,
                newest.subject,
                m.as_of
                    .map(|t| format!(" (reference time {})", when(t)))
                    .unwrap_or_default(),
            );
            d.fix = fill(
                FIX_EXPIRED,
                &[
                    ("SERVER", &server),
                    ("NEW_THUMBPRINT", &new_thumb),
                    ("CONNECTOR", &c.name),
                    ("EXPIRED_THUMBPRINT", &newest.thumbprint),
                ],
            );
            out.push(d);
        }

        // tls-cert-name-not-found: the lookup finds nothing. A complete store listing (provider)
        // or a symptom proves it; Get-ExchangeCertificate alone cannot (it hides key-less ones).
        let logged_match = m.sessions_of(ci).any(|s| {
            s.sending_cert
                .and_then(|i| s.cert(i))
                .is_some_and(|x| dn_eq(&x.subject, &name.subject) && dn_eq(&x.issuer, &name.issuer))
        });
        let proven = if m.store.listed() {
            (m.store.provider_listed && !logged_match) || any_symptom
        } else {
            has_queue_symptom || symptoms.iter().any(|e| e.text.contains(NOT_FOUND))
        };
        if !proven {
            continue;
        }
        let mut d = Draft::new(FindingId::TlsCertNameNotFound, c.name.clone());
        d.connector = Some(ci);
        d.sessions = sessions;
        d.evidence.push_opt(name_ev);
        d.evidence.extend(queue_ev);
        d.evidence.extend(symptoms);
        for e in older {
            d.evidence.push_later(e);
        }
        let drift = match renewal {
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
        let expired_note = if !expired.is_empty() {
            " The only matching certificates are expired (see cert-expired).".to_string()
        } else {
            String::new()
        };
        d.explanation = format!(
            "The send connector \"{}\" looks its certificate up by issuer and subject: TlsCertificateName is \"{raw}\". \
             No time-valid certificate in the store has that issuer and subject, so the lookup finds nothing, \
             STARTTLS cannot start and every session fails ({symptom_text}).{drift}{expired_note} Point the connector \
             at the current certificate.",
            c.name
        );
        d.fix = fill(
            FIX_NAME_NOT_FOUND,
            &[
                ("NEW_THUMBPRINT", &new_thumb),
                ("CONNECTOR", &c.name),
                ("SERVER", &server),
            ],
        );
        out.push(d);
    }
    out
}

/// cert-expired from the log alone: a hybrid session presented a certificate whose logged
/// `Not after` is before the session.
fn expired_in_log(m: &Model<'_>) -> Vec<Draft> {
    let mut seen: BTreeMap<String, Draft> = BTreeMap::new();
    for s in m.sessions.iter().rev() {
        let hybrid = m.connector_of(s).is_some_and(|c| c.hybrid) || s.to_eop;
        let Some(ci) = s.sending_cert else {
            continue;
        };
        let Some(cert) = s.cert(ci) else {
            continue;
        };
        if !hybrid {
            continue;
        }
        let (na, from_log) = if s.cert_dates_logged(ci) {
            (Some(cert.not_after), true)
        } else {
            (
                m.store.get(&cert.thumbprint).and_then(|x| x.not_after),
                false,
            )
        };
        let Some(na) = na else {
            continue;
        };
        let at = s.at(ci);
        if na >= at {
            continue;
        }
        let thumb = norm_thumb(&cert.thumbprint);
        let cname = m
            .connector_of(s)
            .map_or_else(|| s.ps.session.connector_id.clone(), |c| c.name.clone());
        let d = seen.entry(thumb.clone()).or_insert_with(|| {
            let mut d = Draft::new(FindingId::CertExpired, format!("{cname}|{thumb}"));
            d.connector = s.connector;
            d.explanation = format!(
                "The send connector \"{cname}\" presents certificate {thumb} ({}), which expired on {}{}. EOP \
                 cannot use an expired certificate to recognise your organisation, and the transport logs event \
                 12016. Install the renewed certificate and point the connectors at it.",
                cert.subject,
                day(na),
                if from_log { "" } else { " (per the store listing)" },
            );
            let server = m.server_name();
            d.fix = fill(
                FIX_EXPIRED,
                &[
                    ("SERVER", &server),
                    ("CONNECTOR", &cname),
                    ("EXPIRED_THUMBPRINT", &thumb),
                ],
            );
            d
        });
        if d.sessions.len() < MAX_OCCURRENCES {
            d.evidence.push(s.ev(ci));
        }
        d.sessions.push(s.id().to_string());
    }
    seen.into_values().collect()
}

/// cert-invisible-to-ems: a presented thumbprint that Get-ExchangeCertificate does not list.
fn invisible_to_ems(m: &Model<'_>) -> Vec<Draft> {
    if !m.store.ems_listed {
        return Vec::new();
    }
    let mut by_thumb: BTreeMap<String, Vec<(&SessionView<'_>, usize)>> = BTreeMap::new();
    for s in &m.sessions {
        if let Some(ci) = s.sending_cert
            && let Some(c) = s.cert(ci)
        {
            if c.thumbprint.trim().is_empty()
                || m.store.get(&c.thumbprint).is_some_and(|x| x.in_ems)
            {
                continue;
            }
            let t = norm_thumb(&c.thumbprint);
            by_thumb.entry(t).or_default().push((s, ci));
        }
    }
    let mut out = Vec::new();
    for (t, mut v) in by_thumb {
        v.sort_by_key(|(s, ci)| std::cmp::Reverse(s.at(*ci)));
        let (s0, c0) = v[0];
        let subject = s0.cert(c0).map_or("", |c| c.subject.as_str()).to_string();
        let mut connectors: Vec<String> = v
            .iter()
            .map(|(s, _)| {
                m.connector_of(s)
                    .map_or_else(|| s.ps.session.connector_id.clone(), |c| c.name.clone())
            })
            .collect();
        connectors.dedup();
        let mut d = Draft::new(FindingId::CertInvisibleToEms, t.clone());
        d.connector = s0.connector;
        d.sessions = v.iter().map(|(s, _)| s.id().to_string()).collect();
        for (k, (s, ci)) in v.iter().take(MAX_OCCURRENCES).enumerate() {
            d.occurrence(k, s.thumbprint_ev(*ci));
        }
        let store_t = m.store.get(&t);
        let confirm = match store_t {
            Some(x) if x.is_keyless() => {
                d.evidence.push_opt(x.ev_key.clone());
                " The certificate provider listing confirms it: HasPrivateKey False."
            }
            _ => "",
        };
        d.explanation = format!(
            "The send log shows the transport presenting {t} ({subject}) in {} of \"{}\", but the \
             Get-ExchangeCertificate listing does not contain it. Get-ExchangeCertificate lists only certificates \
             that have a private key, so this certificate most likely has none.{confirm} By itself this does not \
             say why mail fails; look at the certificate findings next to it.",
            count(v.len(), "session"),
            connectors.join("\", \""),
        );
        d.fix = fill(FIX_INVISIBLE, &[("THUMBPRINT", &t)]);
        out.push(d);
    }
    out
}

/// cert-expiring-soon: the connector's certificate, a presented one, or one enabled for SMTP.
fn expiring_soon(m: &Model<'_>, opts: &Options) -> Vec<Draft> {
    let Some(as_of) = m.as_of else {
        return Vec::new();
    };
    let horizon = as_of + opts.expiry_warning;
    struct Cand {
        not_after: time::OffsetDateTime,
        subject: String,
        uses: Vec<String>,
        ev: Vec<Ev>,
        connector: Option<usize>,
    }
    let mut cands: BTreeMap<String, Cand> = BTreeMap::new();
    let mut add = |thumb: &str,
                   na: Option<time::OffsetDateTime>,
                   subject: &str,
                   use_: String,
                   ev: Option<Ev>,
                   connector: Option<usize>| {
        let Some(na) = na else { return };
        if !(as_of < na && na <= horizon) {
            return;
        }
        let c = cands.entry(thumb.to_string()).or_insert_with(|| Cand {
            not_after: na,
            subject: subject.to_string(),
            uses: Vec::new(),
            ev: Vec::new(),
            connector,
        });
        if !c.uses.contains(&use_) {
            c.uses.push(use_);
        }
        if let Some(e) = ev
            && c.ev.len() < 4
            && !c.ev.contains(&e)
        {
            c.ev.push(e);
        }
        if c.connector.is_none() {
            c.connector = connector;
        }
    };
    for (ci, c) in m.connectors.iter().enumerate() {
        if let Some(name) = &c.tls_name {
            for x in m
                .store
                .matching(&name.issuer, &name.subject)
                .filter(|x| x.valid_at(Some(as_of)))
            {
                add(
                    &x.thumbprint,
                    x.not_after,
                    &x.subject,
                    format!("the send connector \"{}\" names it", c.name),
                    x.ev_not_after.clone().or_else(|| x.ev()),
                    Some(ci),
                );
            }
        }
    }
    for s in m.sessions.iter().rev() {
        let Some(ci) = s.sending_cert else { continue };
        let Some(cert) = s.cert(ci) else { continue };
        let store = m.store.get(&cert.thumbprint);
        let logged = s.cert_dates_logged(ci);
        let na = if logged {
            Some(cert.not_after)
        } else {
            store.and_then(|x| x.not_after)
        };
        // Most sessions present a certificate far from expiry: decide before formatting.
        if !na.is_some_and(|na| as_of < na && na <= horizon) {
            continue;
        }
        let t = norm_thumb(&cert.thumbprint);
        let ev = if logged {
            Some(s.ev(ci))
        } else {
            store
                .and_then(|x| x.ev_not_after.clone())
                .or_else(|| Some(s.thumbprint_ev(ci)))
        };
        let cname = m
            .connector_of(s)
            .map_or_else(|| s.ps.session.connector_id.clone(), |c| c.name.clone());
        let use_ = format!("the transport presents it on \"{cname}\"");
        add(&t, na, &cert.subject, use_.clone(), ev, s.connector);
        // The store's date line too, when the log carried the date.
        if let Some(x) = store {
            add(
                &t,
                na,
                &cert.subject,
                use_,
                x.ev_not_after.clone(),
                s.connector,
            );
        }
    }
    for x in m.store.certs.iter().filter(|x| x.in_ems) {
        if x.services
            .as_ref()
            .is_some_and(|s| s.contains(&ExchangeService::Smtp))
        {
            add(
                &x.thumbprint,
                x.not_after,
                &x.subject,
                "Get-ExchangeCertificate shows it enabled for SMTP".to_string(),
                x.ev_not_after.clone().or_else(|| x.ev()),
                None,
            );
        }
    }
    cands
        .into_iter()
        .map(|(t, c)| {
            let days = (c.not_after - as_of).whole_days();
            let mut d = Draft::new(FindingId::CertExpiringSoon, t.clone());
            d.connector = c.connector;
            d.evidence.extend(c.ev);
            d.explanation = format!(
                "{} ({t}) expires on {} ({} after the reference time {}); {}. After that hybrid mail stops: renew it \
                 now and point the connectors at the renewal.",
                c.subject,
                day(c.not_after),
                count(days.max(0) as usize, "day"),
                when(as_of),
                c.uses.join("; "),
            );
            d.fix = fill(FIX_EXPIRING, &[("THUMBPRINT", &t)]);
            d
        })
        .collect()
}

/// lint-tls-certificate-name-syntax and lint-tls-certificate-name-ambiguous.
fn name_lints(m: &Model<'_>) -> Vec<Draft> {
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

const FIX_KEYLESS: &str = "# optional: keep a copy of the key-less certificate before removing it
Export-Certificate -Cert Cert:\\LocalMachine\\My\\<KEYLESS_THUMBPRINT> -FilePath C:\\Temp\\<KEYLESS_THUMBPRINT>.cer
Get-ChildItem Cert:\\LocalMachine\\My\\<KEYLESS_THUMBPRINT> | Remove-Item
Restart-Service MSExchangeTransport
Get-Queue | Where Status -eq Retry | Retry-Queue";

const FIX_MISSING_KEY: &str = "# if the key is still in this server's key store, re-attach it (the serial number is in the evidence)
certutil -repairstore My <SERIAL>
Get-ChildItem Cert:\\LocalMachine\\My\\<THUMBPRINT> | Format-List Subject,Thumbprint,HasPrivateKey
# otherwise import the PFX (with key) exported from the server where the request was completed
Import-ExchangeCertificate -Server <SERVER> -FileData ([System.IO.File]::ReadAllBytes('\\\\<SERVER>\\c$\\Temp\\certificate.pfx')) -Password (Read-Host 'PFX password' -AsSecureString)
# let the transport read the key; answer N to \"overwrite the existing default SMTP certificate?\"
Enable-ExchangeCertificate -Server <SERVER> -Thumbprint <THUMBPRINT> -Services SMTP
Restart-Service MSExchangeTransport
Get-Queue | Where Status -eq Retry | Retry-Queue";

const FIX_KEY_INACCESSIBLE: &str = "# answer N when asked to overwrite the existing default SMTP certificate
Enable-ExchangeCertificate -Thumbprint <THUMBPRINT> -Services SMTP
Restart-Service MSExchangeTransport
Get-Queue | Where Status -eq Retry | Retry-Queue
# if it still fails, the key is in a CNG provider: re-import the PFX into the legacy SChannel provider
# certutil -csp \"Microsoft RSA SChannel Cryptographic Provider\" -importpfx My C:\\Temp\\certificate.pfx";

const FIX_NAME_NOT_FOUND: &str = "$c = Get-ExchangeCertificate -Thumbprint <NEW_THUMBPRINT>
Set-SendConnector \"<CONNECTOR>\" -TlsCertificateName \"<I>$($c.Issuer)<S>$($c.Subject)\"
# the hybrid receive connector and the hybrid configuration usually carry the same stale value
Set-ReceiveConnector \"<SERVER>\\Default Frontend <SERVER>\" -TlsCertificateName \"<I>$($c.Issuer)<S>$($c.Subject)\"
Set-HybridConfiguration -TlsCertificateName \"<I>$($c.Issuer)<S>$($c.Subject)\"
Restart-Service MSExchangeTransport
Get-Queue | Where Status -eq Retry | Retry-Queue";

const FIX_EXPIRED: &str = "Import-ExchangeCertificate -Server <SERVER> -FileData ([System.IO.File]::ReadAllBytes('\\\\<SERVER>\\c$\\Temp\\renewed.pfx')) -Password (Read-Host 'PFX password' -AsSecureString)
# answer N to \"overwrite the existing default SMTP certificate?\"
Enable-ExchangeCertificate -Server <SERVER> -Thumbprint <NEW_THUMBPRINT> -Services SMTP
$c = Get-ExchangeCertificate -Thumbprint <NEW_THUMBPRINT>
Set-SendConnector \"<CONNECTOR>\" -TlsCertificateName \"<I>$($c.Issuer)<S>$($c.Subject)\"
Restart-Service MSExchangeTransport
Get-Queue | Where Status -eq Retry | Retry-Queue
# afterwards: Remove-ExchangeCertificate -Thumbprint <EXPIRED_THUMBPRINT>";

const FIX_INVISIBLE: &str = "Get-ChildItem Cert:\\LocalMachine\\My | Format-List Subject,Issuer,Thumbprint,HasPrivateKey,NotAfter
certutil -store My <THUMBPRINT>";

const FIX_SYNTAX: &str = "$c = Get-ExchangeCertificate -Thumbprint <THUMBPRINT>
Set-SendConnector \"<CONNECTOR>\" -TlsCertificateName \"<I>$($c.Issuer)<S>$($c.Subject)\"";

const FIX_EXPIRING: &str = "Get-ExchangeCertificate -Thumbprint <THUMBPRINT> | New-ExchangeCertificate -GenerateRequest -RequestFile C:\\Temp\\renewal.req
# after the CA has issued it: Import-ExchangeCertificate, Enable-ExchangeCertificate -Services SMTP,
# then update TlsCertificateName on the connectors (or re-run the Hybrid Configuration Wizard)";

const FIX_AMBIGUOUS: &str = "Get-ChildItem Cert:\\LocalMachine\\My | Where-Object { $_.Subject -eq '<SUBJECT>' -and $_.Issuer -eq '<ISSUER>' } | Format-List Thumbprint,HasPrivateKey,NotBefore,NotAfter
Get-ChildItem Cert:\\LocalMachine\\My\\<OLDER_THUMBPRINT> | Remove-Item
Restart-Service MSExchangeTransport";
