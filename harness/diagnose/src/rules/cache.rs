//! Rules about what changed while the transport ran: `cert-cached-after-change` (FM-34: the
//! transport still presents the certificate it selected before the store or the connector
//! changed) and `cert-failure-recovered` (a certificate failure that the latest sessions no longer
//! show: the fix took effect).
//!
//! Both read only what a real server gives: the send log's `Sending certificate` blocks, the
//! certificate listings (`Get-ChildItem Cert:\LocalMachine\My` lists every certificate, so only it
//! proves one removed; `Get-ExchangeCertificate` lists only keyed ones), the connector's
//! `TlsCertificateName` and the queue.

use std::cmp::Reverse;

use hybridlab_model::x509::{CertFacts, dn_eq};

use super::{Draft, MAX_OCCURRENCES, count, fill, when};
use crate::FindingId;
use crate::model::{ConnectorView, Model, SessionView, StoreCert, norm_thumb};
use hybridlab_model::exchange::SecurityStatus;

pub(crate) fn rules(m: &Model<'_>) -> Vec<Draft> {
    let mut out = Vec::new();
    for ci in 0..m.connectors.len() {
        out.extend(cached_after_change(m, ci));
        out.extend(failure_recovered(m, ci));
    }
    out
}

/// The sessions of a connector that presented a certificate, newest first, with the index of
/// the `Sending certificate` event.
fn presenting<'m, 'a>(m: &'m Model<'a>, ci: usize) -> Vec<(&'m SessionView<'a>, usize)> {
    let mut v: Vec<_> = m
        .sessions_of(ci)
        .filter_map(|s| s.sending_cert.map(|i| (s, i)))
        .filter(|(s, i)| s.cert(*i).is_some_and(|c| !c.thumbprint.trim().is_empty()))
        .collect();
    v.sort_by_key(|(s, i)| Reverse(s.at(*i)));
    v
}

fn thumb_of(s: &SessionView<'_>, i: usize) -> String {
    s.cert(i)
        .map(|c| norm_thumb(&c.thumbprint))
        .unwrap_or_default()
}

/// The connector's certificates now: what its `TlsCertificateName` resolves to in the listed
/// store at the reference time (time-valid matches), keyed ones first, newest NotAfter first.
fn resolved_now<'s>(m: &'s Model<'_>, c: &'s ConnectorView<'_>) -> Vec<&'s StoreCert> {
    let Some(name) = &c.tls_name else {
        return Vec::new();
    };
    let mut v: Vec<&StoreCert> = m
        .store
        .matching(&name.issuer, &name.subject)
        .filter(|x| x.valid_at(m.as_of))
        .collect();
    v.sort_by_key(|x| (!x.is_keyed(), Reverse(x.not_after)));
    v
}

/// A local credential failure (the presented certificate itself could not be used).
fn credential_failure(s: &SessionView<'_>) -> Option<(SecurityStatus, usize)> {
    s.tls_failed.filter(|(st, _)| {
        matches!(
            st,
            SecurityStatus::NoCredentials | SecurityStatus::UnknownCredentials
        )
    })
}

/// Why the presented certificate is stale, strongest first.
enum Stale {
    /// Not in the full store listing.
    Removed,
    /// Its issuer and subject are not the connector's `TlsCertificateName` any more.
    NameChanged,
    /// Not in `Get-ExchangeCertificate` although it worked as a keyed certificate, and no full
    /// listing to be sure.
    NotListed,
}

/// cert-cached-after-change: the latest sessions of a connector present a certificate the store
/// no longer holds, or one the connector's `TlsCertificateName` no longer names.
fn cached_after_change(m: &Model<'_>, ci: usize) -> Option<Draft> {
    let c = &m.connectors[ci];
    let presented = presenting(m, ci);
    let &(s0, i0) = presented.first()?;
    let logged: &CertFacts = s0.cert(i0)?;
    let thumb = thumb_of(s0, i0);
    // the latest run of sessions presenting the same certificate
    let run: Vec<(&SessionView<'_>, usize)> = presented
        .iter()
        .copied()
        .take_while(|(s, i)| thumb_of(s, *i) == thumb)
        .collect();
    // Only the connector to Exchange Online: another connector's certificate (an Edge's self-signed
    // one on the Internet connector) is not a hybrid mail-flow problem, and a partial store
    // listing (filtered by subject) would make it look removed.
    if !c.hybrid && !run.iter().any(|(s, _)| s.to_eop) {
        return None;
    }
    let listed = m.store.get(&thumb);
    let logged_names = !logged.subject.is_empty() && !logged.issuer.is_empty();
    let name_changed = logged_names
        && c.tls_name.as_ref().is_some_and(|n| {
            let same = dn_eq(&logged.subject, &n.subject) && dn_eq(&logged.issuer, &n.issuer);
            !same
        });
    let stale = if m.store.provider_listed && listed.is_none() {
        Stale::Removed
    } else if name_changed {
        Stale::NameChanged
    } else if m.store.ems_listed
        && !m.store.provider_listed
        && listed.is_none()
        && s0.tls_failed.is_none()
        && s0.tls_ok.is_some()
    {
        // A handshake that completed proves the certificate had a usable key, so its absence
        // from Get-ExchangeCertificate is not the key-less twin's (FM-01).
        Stale::NotListed
    } else {
        return None;
    };

    let now = resolved_now(m, c);
    let preferred = now.iter().copied().find(|x| x.thumbprint != thumb);
    let cname = c.name.clone();
    let mut d = Draft::new(FindingId::CertCachedAfterChange, format!("{cname}|{thumb}"));
    d.connector = Some(ci);
    d.sessions = run.iter().map(|(s, _)| s.id().to_string()).collect();
    for (k, (s, i)) in run.iter().take(MAX_OCCURRENCES).enumerate() {
        d.occurrence(k, s.thumbprint_ev(*i));
        if let Some((_, fi)) = s.tls_failed {
            d.occurrence(k, s.ev(fi));
        }
    }
    if let Some(p) = preferred {
        d.evidence.push_opt(p.ev());
    }
    d.evidence.push_opt(c.prop("TlsCertificateName"));
    let queue_ev = m.queue_evs(Some(ci), &[]);
    d.evidence.extend(queue_ev);

    let last = when(s0.at(i0));
    let outcome = match credential_failure(s0).or(s0.tls_failed) {
        Some((st, _)) => format!(
            ", and the handshake fails (TLS negotiation failed with error {})",
            st
        ),
        None => String::new(),
    };
    let why = match stale {
        Stale::Removed => format!(
            "The Cert:\\LocalMachine\\My listing no longer contains {thumb}: it was removed from the store"
        ),
        Stale::NameChanged => format!(
            "Its issuer and subject ({}, issued by {}) are not what the connector's TlsCertificateName names now \
             ({})",
            logged.subject,
            logged.issuer,
            c.tls_name_raw.as_deref().unwrap_or("")
        ),
        Stale::NotListed => format!(
            "Get-ExchangeCertificate does not list {thumb} although the handshake with it completed (so it had a \
             key); without a Get-ChildItem Cert:\\LocalMachine\\My listing its removal cannot be proven"
        ),
    };
    let instead = match preferred {
        Some(p) => format!(
            " The connector's TlsCertificateName now resolves to {} ({}).",
            p.thumbprint,
            if p.is_keyed() {
                "with its private key"
            } else {
                "key unknown"
            }
        ),
        None if c.tls_name.is_some() => {
            " The connector's TlsCertificateName resolves to no other certificate in the listing."
                .to_string()
        }
        None => String::new(),
    };
    d.explanation = format!(
        "The send connector \"{cname}\" still presents certificate {thumb} ({subject}) in its latest {sessions} (the \
         last at {last}){outcome}. {why}.{instead} The transport keeps the certificate it selected for a \
         TlsCertificateName in a cache until the service restarts, so removing or replacing a certificate \
         under an unchanged TlsCertificateName does not reach it (FM-34); either the change was made after the \
         last session, or the transport still holds the old selection. Restart the transport, retry the queue, \
         and check that the next session's Sending certificate block shows the certificate you meant.",
        subject = logged.subject,
        sessions = count(run.len(), "session"),
    );
    let queue = queue_identity(m, ci);
    let mut fix = fill(
        FIX_RESTART,
        &[
            ("QUEUE", &queue),
            (
                "EXPECTED_THUMBPRINT",
                preferred.map_or("<EXPECTED_THUMBPRINT>", |p| p.thumbprint.as_str()),
            ),
        ],
    );
    if c.frontend_proxy()
        && let Some(l) = fix
            .iter_mut()
            .find(|l| l.starts_with("# on a Mailbox server"))
    {
        *l = "Restart-Service MSExchangeFrontEndTransport".to_string();
    }
    d.fix = fix;
    Some(d)
}

/// `SERVER\3` of the connector's queue, else a `Get-Queue` filter that finds it.
fn queue_identity(m: &Model<'_>, ci: usize) -> String {
    m.connector_queue(ci)
        .map(|q| q.row.identity.clone())
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| "<SERVER>\\<QUEUE>".to_string())
}

/// A 250 reply that accepted a message (after BDAT ... LAST or the end of DATA).
pub(crate) fn delivered(s: &SessionView<'_>) -> Option<usize> {
    s.replies()
        .filter(|(_, r)| r.code == 250)
        .find(|(i, r)| {
            r.text().contains("Queued mail for delivery")
                || s.sent_before(*i).next().is_some_and(|(_, l)| {
                    l.split_whitespace()
                        .next()
                        .is_some_and(|w| w.eq_ignore_ascii_case("BDAT"))
                        && l.to_ascii_uppercase().contains("LAST")
                })
        })
        .map(|(i, _)| i)
}

/// A session that ended before presenting any certificate although STARTTLS was on offer: what
/// a `TlsCertificateName` that names nothing looks like (the transport closes after EHLO or after
/// `220` to STARTTLS, `454 4.7.5 ... could not be found`).
fn certificate_not_loaded(s: &SessionView<'_>) -> Option<usize> {
    let offered = s.ehlo_reply.and_then(|i| s.reply(i)).is_some_and(|r| {
        r.lines.iter().any(|l| {
            l.split_whitespace()
                .any(|w| w.eq_ignore_ascii_case("STARTTLS"))
        })
    });
    let quiet_after_starttls = s.starttls.is_none_or(|st| {
        s.replies()
            .filter(|(i, _)| *i > st)
            .all(|(_, r)| r.code == 220)
    });
    (offered
        && quiet_after_starttls
        && s.sending_cert.is_none()
        && s.tls_ok.is_none()
        && s.tls_failed.is_none()
        && s.sent_any("MAIL").is_none()
        && matches!(
            s.disconnect_reason(),
            Some(hybridlab_model::exchange::DisconnectReason::Local)
        ))
    .then_some(s.disconnect)
    .flatten()
}

/// How an earlier session failed on the certificate.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Failed {
    /// NoCredentials / UnknownCredentials with this certificate.
    Credentials,
    /// No certificate could be loaded.
    NotLoaded,
}

/// cert-failure-recovered: earlier sessions of a connector failed on their certificate (a
/// credential error, or no certificate loaded at all); its latest session presents a certificate,
/// completes TLS and delivers.
fn failure_recovered(m: &Model<'_>, ci: usize) -> Vec<Draft> {
    let c = &m.connectors[ci];
    let mut sessions: Vec<&SessionView<'_>> = m.sessions_of(ci).collect();
    sessions.sort_by_key(|s| Reverse(s.start));
    let Some(last) = sessions.first() else {
        return Vec::new();
    };
    let (Some(ok_i), Some(cert_i), Some(acc_i)) = (last.tls_ok, last.sending_cert, delivered(last))
    else {
        return Vec::new();
    };
    let good = thumb_of(last, cert_i);
    if good.is_empty() {
        return Vec::new();
    }
    // failed sessions by what failed (the certificate they presented), newest first:
    // (key, kind, [(session, thumbprint event, failure event)])
    type Group<'m, 'a> = (
        String,
        Failed,
        Vec<(&'m SessionView<'a>, Option<usize>, usize)>,
    );
    let mut groups: Vec<Group<'_, '_>> = Vec::new();
    for s in sessions.iter().skip(1) {
        let (key, kind, si, fi) = match (credential_failure(s), s.sending_cert) {
            (Some((_, fi)), Some(si)) => {
                let t = thumb_of(s, si);
                if t.is_empty() || t == good {
                    continue;
                }
                (t, Failed::Credentials, Some(si), fi)
            }
            _ => match certificate_not_loaded(s) {
                Some(fi) => (String::new(), Failed::NotLoaded, None, fi),
                None => continue,
            },
        };
        match groups.iter_mut().find(|(x, k, _)| *x == key && *k == kind) {
            Some((_, _, v)) => v.push((s, si, fi)),
            None => groups.push((key, kind, vec![(s, si, fi)])),
        }
    }
    let cname = c.name.clone();
    let queue_now = m
        .connector_queue(ci)
        .map(|q| {
            format!(
                " Get-Queue now shows {} with {} message(s) and {}.",
                q.row.identity,
                q.row.message_count,
                if q.row.last_error.is_some() {
                    "a LastError from before the fix"
                } else {
                    "no LastError"
                }
            )
        })
        .unwrap_or_default();
    groups
        .into_iter()
        .map(|(t, kind, fails)| {
            let (f0, _, f0_fail) = fails[0];
            let key = if t.is_empty() { "not-loaded" } else { t.as_str() };
            let mut d = Draft::new(FindingId::CertFailureRecovered, format!("{cname}|{key}"));
            d.connector = Some(ci);
            d.sessions = fails.iter().map(|(s, _, _)| s.id().to_string()).collect();
            d.evidence.push(last.thumbprint_ev(cert_i));
            d.evidence.push(last.ev(ok_i));
            d.evidence.push(last.ev(acc_i));
            for (k, (s, si, fi)) in fails.iter().take(MAX_OCCURRENCES).enumerate() {
                if let Some(si) = si {
                    d.occurrence(k, s.thumbprint_ev(*si));
                }
                d.occurrence(k, s.ev(*fi));
            }
            let what = match kind {
                Failed::Credentials => {
                    let status = credential_failure(f0)
                        .map(|(st, _)| st.to_string())
                        .unwrap_or_default();
                    let gone = if m.store.provider_listed && m.store.get(&t).is_none() {
                        format!(" {t} is no longer in the Cert:\\LocalMachine\\My listing.")
                    } else {
                        String::new()
                    };
                    format!("presented {t} and failed with {status}.{gone}")
                }
                Failed::NotLoaded => "ended before presenting any certificate although EOP offered STARTTLS: \
                     the transport could not load the certificate its TlsCertificateName named (454 4.7.5 \
                     ... could not be found)."
                    .to_string(),
            };
            d.explanation = format!(
                "Mail flows again on the send connector \"{cname}\": its latest session ({last_at}) presents {good}, \
                 completes TLS and delivers. The {n} before it (the last at {f_at}) {what} Whatever was changed \
                 (the key-less certificate removed and the transport restarted, a key re-attached, the connector \
                 pointed at the renewed certificate) has taken effect; the failures in the log are history, not a \
                 current fault.{queue_now} Nothing to fix; keep the evidence for the case notes.",
                last_at = when(last.at(cert_i)),
                n = count(fails.len(), "failed session"),
                f_at = when(f0.at(f0_fail)),
            );
            d.fix = fill(FIX_RECOVERED, &[("THUMBPRINT", &good)]);
            d
        })
        .collect()
}

const FIX_RESTART: &str = "Restart-Service MSExchangeTransport
# on a Mailbox server also: Restart-Service MSExchangeFrontEndTransport
Retry-Queue -Identity <QUEUE>
# then the next session's Sending certificate block must show <EXPECTED_THUMBPRINT>";

const FIX_RECOVERED: &str = "# nothing to fix; to confirm:
Get-Queue | Format-List Identity,Status,MessageCount,LastError
Get-ChildItem Cert:\\LocalMachine\\My\\<THUMBPRINT> | Format-List Subject,Thumbprint,HasPrivateKey";
