//! Rules about the handshake and STARTTLS: `tls-version-mismatch`, `remote-cert-untrusted`,
//! `remote-cert-name-mismatch`, `starttls-stripped`, `tls-required-cleartext`,
//! `inbound-connector-cert-mismatch`, `no-client-certificate`.

use std::collections::BTreeMap;

use hybridlab_model::attribution::AttributionVerdict;
use hybridlab_model::x509::{dn_eq, names_match};

use super::{Draft, MAX_OCCURRENCES, count, fill, when};
use crate::FindingId;
use crate::model::{ChainVerdict, ConnectorView, Ev, Model, SessionView, norm_thumb, prop_ev};
use hybridlab_artefacts::protocol_log::SessionEvent;
use hybridlab_model::exchange::{DisconnectReason, SecurityStatus, TlsAuthLevel};

pub(crate) fn rules(m: &Model<'_>) -> Vec<Draft> {
    let mut out = Vec::new();
    out.extend(version_mismatch(m));
    out.extend(remote_validation(m));
    out.extend(starttls_stripped(m));
    out.extend(cleartext(m));
    out.extend(client_certificate(m));
    out
}

/// Sessions that talk to EOP or belong to a hybrid connector.
fn hybrid_sessions<'m, 'a>(m: &'m Model<'a>) -> impl Iterator<Item = &'m SessionView<'a>> + 'm {
    m.sessions
        .iter()
        .filter(move |s| s.to_eop || m.connector_of(s).is_some_and(|c| c.hybrid))
}

fn connector_name(m: &Model<'_>, s: &SessionView<'_>) -> String {
    m.connector_of(s)
        .map_or_else(|| s.ps.session.connector_id.clone(), |c| c.name.clone())
}

/// Groups sessions by connector, newest first.
fn by_connector<'m, 'a, T>(
    items: Vec<(&'m SessionView<'a>, T)>,
) -> BTreeMap<Option<usize>, Vec<(&'m SessionView<'a>, T)>> {
    let mut g: BTreeMap<Option<usize>, Vec<(&'m SessionView<'a>, T)>> = BTreeMap::new();
    for (s, t) in items {
        g.entry(s.connector).or_default().push((s, t));
    }
    for v in g.values_mut() {
        v.sort_by_key(|(s, _)| std::cmp::Reverse(s.start));
    }
    g
}

/// AlgorithmMismatch, SocketError during the handshake, and other handshake-level tokens.
fn version_mismatch(m: &Model<'_>) -> Vec<Draft> {
    let mut hits = Vec::new();
    for s in hybrid_sessions(m) {
        let hit = match s.tls_failed {
            Some((
                st @ (SecurityStatus::AlgorithmMismatch
                | SecurityStatus::SocketError
                | SecurityStatus::IllegalMessage
                | SecurityStatus::InvalidToken
                | SecurityStatus::MessageAltered
                | SecurityStatus::DecryptFailure),
                i,
            )) => Some((st, i)),
            Some(_) => None,
            None => {
                // STARTTLS accepted, then the peer drops the connection before any TLS outcome.
                let dropped = matches!(s.disconnect_reason(), Some(DisconnectReason::Remote(_)));
                match (s.starttls, s.tls_ok, s.disconnect) {
                    (Some(st), None, Some(d)) if dropped && d > st => {
                        Some((SecurityStatus::SocketError, d))
                    }
                    _ => None,
                }
            }
        };
        if let Some(h) = hit {
            hits.push((s, h));
        }
    }
    let mut out = Vec::new();
    for (conn, v) in by_connector(hits) {
        let (s0, (tok0, _)) = v[0];
        let cname = connector_name(m, s0);
        let mut d = Draft::new(FindingId::TlsVersionMismatch, cname.clone());
        d.connector = conn;
        d.sessions = v.iter().map(|(s, _)| s.id().to_string()).collect();
        for (k, (s, (_, i))) in v.iter().take(MAX_OCCURRENCES).enumerate() {
            d.occurrence(k, s.ev(*i));
            if let Some(dc) = s.disconnect.filter(|dc| dc != i) {
                d.occurrence(k, s.ev(dc));
            }
        }
        // Other sessions of this server negotiating old protocols.
        let old: Vec<Ev> = m
            .sessions
            .iter()
            .filter_map(|s| {
                s.tls_ok
                    .filter(|&i| match s.event(i) {
                        SessionEvent::TlsNegotiated { text } => {
                            text.contains("TLS1_0")
                                || text.contains("TLS1_1")
                                || text.contains("SSL3")
                        }
                        _ => false,
                    })
                    .map(|i| s.ev(i))
            })
            .rev()
            .take(2)
            .collect();
        let old_note = if old.is_empty() {
            String::new()
        } else {
            " Other sessions of this server still negotiate TLS 1.0/1.1 (SP_PROT_TLS1_0_CLIENT) with Internet peers, \
             which shows TLS 1.2 is not available to the SChannel client."
                .to_string()
        };
        d.evidence.extend(old);
        d.evidence.extend(m.queue_evs(conn, &[]));
        let tokens: Vec<&str> = {
            let mut t: Vec<&str> = v.iter().map(|(_, (st, _))| st.as_str()).collect();
            t.sort_unstable();
            t.dedup();
            t
        };
        let queue_note = conn
            .and_then(|ci| m.queues_of(ci).next())
            .map(|q| {
                format!(
                    " The queue's \"{}\" is this failure seen from further away.",
                    q.led()
                )
            })
            .unwrap_or_default();
        let middlebox = matches!(
            tok0,
            SecurityStatus::IllegalMessage
                | SecurityStatus::InvalidToken
                | SecurityStatus::MessageAltered
                | SecurityStatus::DecryptFailure
        );
        let cert_note = s0
            .sending_cert
            .and_then(|i| s0.cert(i))
            .and_then(|c| m.store.get(&norm_thumb(&c.thumbprint)))
            .filter(|c| c.in_ems)
            .map(|c| {
                format!(
                    " The certificate it presents ({}) is listed by Get-ExchangeCertificate with its key, so the \
                     certificate is not the problem.",
                    c.thumbprint
                )
            })
            .unwrap_or_default();
        let dropped = tok0 == SecurityStatus::SocketError && old_note.is_empty();
        d.explanation = if dropped {
            format!(
                "In {} of \"{cname}\" to {} the connection drops during the TLS handshake right after STARTTLS \
                 (SocketError, the last at {}; the remote side closed it), before any certificate matters. Either \
                 EOP refused what this server offers (EOP accepts only TLS 1.2 and later, with modern ciphers) or a \
                 device on the path (an intrusion-prevention system or a TLS-inspecting proxy) resets the \
                 handshake. Make sure TLS 1.2 is enabled for SChannel and .NET, and that nothing between Exchange \
                 and EOP inspects or resets SMTP and TLS.{cert_note}{queue_note}",
                count(v.len(), "session"),
                s0.remote_name(),
                s0.start.map(when).unwrap_or_default(),
            )
        } else if middlebox {
            format!(
                "In {} of \"{cname}\" to {} the TLS handshake fails with {} right after STARTTLS. These tokens mean \
                 the handshake bytes were altered or replaced: a TLS-inspecting device on the path, or a protocol \
                 or cipher EOP refuses. EOP accepts only TLS 1.2 (and later) with modern ciphers; make sure TLS 1.2 \
                 is enabled for SChannel and .NET and that nothing between Exchange and EOP inspects SMTP.{cert_note}",
                count(v.len(), "session"),
                s0.remote_name(),
                tokens.join(", "),
            )
        } else {
            format!(
                "In {} of \"{cname}\" to {} the TLS handshake fails with {} right after STARTTLS (the last at {}), \
                 before any certificate matters. EOP accepts only TLS 1.2 (and later); this server offers older \
                 protocols or ciphers EOP does not support.{old_note}{cert_note} Enable TLS 1.2 for SChannel and \
                 .NET and restart the server.{queue_note}",
                count(v.len(), "session"),
                s0.remote_name(),
                tokens.join(", "),
                s0.start.map(when).unwrap_or_default(),
            )
        };
        d.fix = FIX_TLS12.lines().map(str::to_string).collect();
        if dropped {
            d.fix.push(
                "# if TLS 1.2 is already enabled: exempt EOP's ranges (40.92.0.0/15, 40.107.0.0/16, 52.100.0.0/14, \
                 104.47.0.0/17) from SMTP/TLS inspection on the firewall or IPS"
                    .to_string(),
            );
        }
        out.push(d);
    }
    out
}

/// Names of a remote certificate event, if any.
fn remote_names(s: &SessionView<'_>) -> Vec<String> {
    s.remote_cert
        .and_then(|i| s.cert(i))
        .map(|c| c.names().into_iter().map(str::to_string).collect())
        .unwrap_or_default()
}

fn tls_domain_of(c: Option<&ConnectorView<'_>>) -> Option<String> {
    c.and_then(|c| c.row)
        .and_then(|r| r.row.tls_domain.clone())
        .filter(|d| !d.trim().is_empty())
}

fn auth_level_of(c: Option<&ConnectorView<'_>>) -> Option<TlsAuthLevel> {
    c.and_then(|c| c.row).and_then(|r| r.row.tls_auth_level)
}

/// The root to import for EOP's chain, from the issuer the session logged.
fn root_for(issuer: &str) -> &'static str {
    let l = issuer.to_ascii_lowercase();
    if l.contains("g2") {
        "DigiCertGlobalRootG2"
    } else if l.contains("digicert") {
        "DigiCertGlobalRootCA"
    } else if l.contains("microsoft") {
        "Microsoft RSA Root Certificate Authority 2017"
    } else {
        "<ROOT_CERTIFICATE>"
    }
}

/// remote-cert-untrusted and remote-cert-name-mismatch.
fn remote_validation(m: &Model<'_>) -> Vec<Draft> {
    let mut untrusted = Vec::new();
    let mut mismatch = Vec::new();
    for s in hybrid_sessions(m) {
        let conn = m.connector_of(s);
        let dv = auth_level_of(conn) == Some(TlsAuthLevel::DomainValidation);
        let tls_domain = tls_domain_of(conn);
        // Only a DomainValidation connector with a TlsDomain checks the remote names.
        let names_ok = || {
            !dv || tls_domain.as_deref().is_none_or(|d| {
                let names = remote_names(s);
                names.is_empty() || names_match(d, names.iter().map(String::as_str))
            })
        };
        let domain_syn = s.replies().find(|(_, r)| {
            r.code == 421 && r.text().contains("TLSAuthLevel cannot be DomainValidation")
        });
        match (s.chain.clone(), s.tls_failed) {
            (Some((ChainVerdict::NameMismatch, tok, i)), _) => mismatch.push((s, (tok, i))),
            (_, Some((SecurityStatus::WrongPrincipal, i))) => {
                mismatch.push((s, ("WrongPrincipal".to_string(), i)))
            }
            (Some((ChainVerdict::Untrusted, tok, i)), _) => untrusted.push((s, (tok, i))),
            (
                _,
                Some((
                    st @ (SecurityStatus::UntrustedRoot
                    | SecurityStatus::CertExpired
                    | SecurityStatus::CertUnknown
                    | SecurityStatus::TimeSkew),
                    i,
                )),
            ) => {
                if st == SecurityStatus::CertUnknown && !names_ok() {
                    mismatch.push((s, ("SubjectMismatch".to_string(), i)));
                } else {
                    untrusted.push((s, (st.as_str().to_string(), i)));
                }
            }
            _ => {
                if let Some((i, _)) = domain_syn {
                    mismatch.push((s, ("TLSAuthLevel without TlsDomain".to_string(), i)));
                } else if s.tls_ok.is_some()
                    && s.sent_any("MAIL").is_none()
                    && s.disconnect.is_some()
                    && !names_ok()
                {
                    // Handshake done, names do not match TlsDomain, the session ends.
                    let i = s.remote_cert.or(s.tls_ok).unwrap_or(0);
                    mismatch.push((s, ("SubjectMismatch".to_string(), i)));
                }
            }
        }
    }
    let mut out = Vec::new();
    for (conn, v) in by_connector(untrusted) {
        let (s0, _) = &v[0];
        let cname = connector_name(m, s0);
        let mut d = Draft::new(FindingId::RemoteCertUntrusted, cname.clone());
        d.connector = conn;
        d.sessions = v.iter().map(|(s, _)| s.id().to_string()).collect();
        for (k, (s, (_, i))) in v.iter().take(MAX_OCCURRENCES).enumerate() {
            d.occurrence(k, s.ev(*i));
            if let Some(rc) = s.remote_cert {
                d.occurrence(k, s.ev(rc));
            }
        }
        d.evidence
            .extend(m.queue_evs(conn, &["4.7.5 Certificate validation failure"]));
        let connector = conn.map(|i| &m.connectors[i]);
        d.evidence
            .push_opt(connector.and_then(|c| c.prop("TlsAuthLevel")));
        let issuer = s0
            .remote_cert
            .and_then(|i| s0.cert(i))
            .map(|c| c.issuer.clone())
            .unwrap_or_default();
        let tokens: Vec<String> = {
            let mut t: Vec<String> = v.iter().map(|(_, (t, _))| t.clone()).collect();
            t.sort();
            t.dedup();
            t
        };
        let level = auth_level_of(connector)
            .map_or("certificate validation".to_string(), |l| l.to_string());
        d.explanation = format!(
            "With TlsAuthLevel {level}, Exchange checks EOP's certificate chain{} and cannot build it to a trusted \
             root (chain status {}, {}, the last at {}): the session ends with 454 4.7.5 Certificate validation \
             failure. The root (for EOP since March 2026, DigiCert Global Root G2) is missing from the server's \
             Trusted Root store, typically on DMZ or Server Core machines where automatic root updates are disabled.{}",
            if issuer.is_empty() { String::new() } else { format!(" (issued by {issuer})") },
            tokens.join(", "),
            count(v.len(), "session"),
            s0.start.map(when).unwrap_or_default(),
            tls_domain_of(connector)
                .filter(|t| {
                    let names = remote_names(s0);
                    !names.is_empty() && names_match(t, names.iter().map(String::as_str))
                })
                .map(|t| format!(" The remote certificate's names match TlsDomain {t}, so the name is not the problem."))
                .unwrap_or_default(),
        );
        d.fix = fill(FIX_UNTRUSTED, &[("ROOT_CERTIFICATE", root_for(&issuer))]);
        out.push(d);
    }
    for (conn, v) in by_connector(mismatch) {
        let (s0, _) = &v[0];
        let cname = connector_name(m, s0);
        let connector = conn.map(|i| &m.connectors[i]);
        let mut d = Draft::new(FindingId::RemoteCertNameMismatch, cname.clone());
        d.connector = conn;
        d.sessions = v.iter().map(|(s, _)| s.id().to_string()).collect();
        for (k, (s, (_, i))) in v.iter().take(MAX_OCCURRENCES).enumerate() {
            d.occurrence(k, s.ev(*i));
            if let Some(rc) = s.remote_cert.filter(|rc| rc != i) {
                d.occurrence(k, s.ev(rc));
            }
        }
        d.evidence
            .push_opt(connector.and_then(|c| c.prop("TlsDomain")));
        d.evidence
            .push_opt(connector.and_then(|c| c.prop("TlsAuthLevel")));
        d.evidence.extend(m.queue_evs(
            conn,
            &[
                "4.7.5 Certificate validation failure",
                "TLSAuthLevel cannot be",
            ],
        ));
        let names = remote_names(s0);
        let eop = names.iter().any(|n| {
            n.eq_ignore_ascii_case("mail.protection.outlook.com")
                || n.ends_with(".mail.protection.outlook.com")
        });
        let td = tls_domain_of(connector).unwrap_or_else(|| "(empty)".to_string());
        d.explanation = format!(
            "The send connector \"{cname}\" uses DomainValidation and only accepts a remote certificate named {td}; \
             {} ({}). Set the TLS domain Exchange Online really uses.{}",
            if names.is_empty() {
                "the remote certificate does not match it".to_string()
            } else {
                format!("the remote side presents {}", names.join(", "))
            },
            count(v.len(), "session"),
            if !names.is_empty() && !eop {
                " The presented certificate is not EOP's at all: a TLS-intercepting proxy on the path re-signs the \
                 connection (FM-18); exempt the EOP ranges from TLS inspection."
            } else {
                ""
            },
        );
        d.fix = fill(FIX_NAME_MISMATCH, &[("CONNECTOR", &cname)]);
        out.push(d);
    }
    out.extend(validation_from_queues(m, &out));
    out
}

/// The transport's own verdicts that only the queue shows: `421 TLSAuthLevel cannot be
/// DomainValidation with out a valid TLS Domain.` (the session never gets to STARTTLS), and
/// `454 4.7.5 Certificate validation failure` for a connector no log covers.
fn validation_from_queues(m: &Model<'_>, already: &[Draft]) -> Vec<Draft> {
    let mut out: Vec<Draft> = Vec::new();
    for q in &m.queues {
        let led = q.led();
        let no_domain = led.contains("TLSAuthLevel cannot be DomainValidation");
        let untrusted = !no_domain
            && led.contains("4.7.5 Certificate validation failure")
            && q.connector
                .is_none_or(|ci| m.connectors[ci].sessions.is_empty());
        let id = match (no_domain, untrusted) {
            (true, _) => FindingId::RemoteCertNameMismatch,
            (_, true) => FindingId::RemoteCertUntrusted,
            _ => continue,
        };
        let connector = q.connector.map(|i| &m.connectors[i]);
        let cname = connector.map_or_else(|| "<CONNECTOR>".to_string(), |c| c.name.clone());
        if already
            .iter()
            .chain(out.iter())
            .any(|d| d.id == id && d.key == cname)
        {
            continue;
        }
        let mut d = Draft::new(id, cname.clone());
        d.connector = q.connector;
        d.evidence.push_opt(q.ev.clone());
        d.evidence
            .push_opt(connector.and_then(|c| c.prop("TlsAuthLevel")));
        d.evidence
            .push_opt(connector.and_then(|c| c.prop("TlsDomain")));
        if no_domain {
            d.evidence
                .push_opt(connector.and_then(|c| c.prop("SmartHosts")));
            // The sessions it stopped: EHLO answered, then QUIT without STARTTLS.
            if let Some(ci) = q.connector {
                let mut quiet: Vec<&SessionView<'_>> = m
                    .sessions_of(ci)
                    .filter(|s| {
                        s.starttls.is_none()
                            && s.sent_any("MAIL").is_none()
                            && s.ehlo_reply.is_some()
                    })
                    .collect();
                quiet.sort_by_key(|s| std::cmp::Reverse(s.start));
                for (k, s) in quiet.iter().take(MAX_OCCURRENCES).enumerate() {
                    if let Some(i) = s.ehlo_reply {
                        d.occurrence(k, s.ev(i));
                    }
                    if let Some(i) = s.disconnect {
                        d.occurrence(k, s.ev(i));
                    }
                }
                d.sessions = quiet.iter().map(|s| s.id().to_string()).collect();
            }
            d.explanation = format!(
                "The send connector \"{cname}\" uses TlsAuthLevel DomainValidation without a TlsDomain. It sends to \
                 smart hosts, so Exchange has no domain to check EOP's certificate against and gives up before \
                 STARTTLS: the queue shows \"{led}\", the transport's own verdict (EOP is never asked). Set the TLS \
                 domain Exchange Online really uses."
            );
            d.fix = fill(FIX_NAME_MISMATCH, &[("CONNECTOR", &cname)]);
        } else {
            d.explanation = format!(
                "The queue of the send connector \"{cname}\" shows \"{led}\": with certificate validation on, \
                 Exchange could not validate the remote certificate's chain. No protocol log covers this connector; \
                 the usual cause is a root missing from the server's Trusted Root store (for EOP since March 2026, \
                 DigiCert Global Root G2). Collect the send protocol log to see the chain status."
            );
            d.fix = fill(
                FIX_UNTRUSTED,
                &[("ROOT_CERTIFICATE", "DigiCertGlobalRootG2")],
            );
        }
        out.push(d);
    }
    out
}

fn offers_starttls(r: &hybridlab_model::reply::Reply) -> bool {
    r.lines
        .iter()
        .any(|l| l.trim().eq_ignore_ascii_case("STARTTLS"))
}

/// A keyword of X's (`XXXXXXXA`) where a firewall masked one.
fn masked_keyword(r: &hybridlab_model::reply::Reply) -> Option<String> {
    r.lines
        .iter()
        .skip(1)
        .map(|l| l.trim())
        .find(|l| {
            l.len() >= 4
                && l.chars().filter(|c| *c == 'X').count() >= l.len() - 1
                && l.starts_with("XXX")
        })
        .map(str::to_string)
}

/// starttls-stripped: EOP's EHLO reply (before TLS) without STARTTLS.
fn starttls_stripped(m: &Model<'_>) -> Vec<Draft> {
    let mut hits = Vec::new();
    for s in hybrid_sessions(m) {
        let Some(i) = s.ehlo_reply else { continue };
        let Some(r) = s.reply(i) else { continue };
        if offers_starttls(r) {
            continue;
        }
        hits.push((s, i));
    }
    let mut out = Vec::new();
    for (conn, v) in by_connector(hits) {
        let (s0, i0) = v[0];
        let cname = connector_name(m, s0);
        let connector = conn.map(|i| &m.connectors[i]);
        let mut d = Draft::new(FindingId::StarttlsStripped, cname.clone());
        d.connector = conn;
        d.sessions = v.iter().map(|(s, _)| s.id().to_string()).collect();
        let mut banner_masked = false;
        for (k, (s, i)) in v.iter().take(MAX_OCCURRENCES).enumerate() {
            d.occurrence(k, s.ev(*i));
            if let Some(b) = s.banner
                && s.reply(b).is_some_and(|r| r.text().contains("***"))
            {
                banner_masked = true;
                d.occurrence(k, s.ev(b));
            }
        }
        d.evidence.extend(m.queue_evs(conn, &["5.7.3"]));
        d.evidence
            .push_opt(connector.and_then(|c| c.prop("RequireTLS")));
        let mask = s0.reply(i0).and_then(masked_keyword);
        let sender_verdict =
            conn.is_some_and(|ci| m.queues_of(ci).any(|q| q.led().contains("5.7.3")));
        let require = connector.and_then(|c| c.require_tls());
        d.explanation = format!(
            "EOP always offers STARTTLS. Here the EHLO reply from {} arrives without it{}{} ({}): an SMTP-inspecting \
             firewall (e.g. Cisco ASA ESMTP inspection without allow-tls) rewrites the conversation. {} Hybrid mail \
             flow requires that nothing between Exchange and EOP alters SMTP.",
            s0.remote_name(),
            mask.map(|k| format!(", with STARTTLS replaced by {k}"))
                .unwrap_or_default(),
            if banner_masked {
                " and the banner masked with '*'"
            } else {
                ""
            },
            count(v.len(), "session"),
            match require {
                Some(false) => format!(
                    "The connector \"{cname}\" does not require TLS, so it falls back to clear text and EOP may refuse \
                     the mail (451 5.7.3) or treat it as anonymous."
                ),
                _ if sender_verdict => format!(
                    "The connector \"{cname}\" requires TLS, so it gives up (the queue's 451 5.7.3 STARTTLS is \
                     required to send mail is the sender's own verdict: EOP never saw a MAIL FROM)."
                ),
                _ => format!("The connector \"{cname}\" requires TLS, so it gives up."),
            },
        );
        d.fix = FIX_STRIPPED.lines().map(str::to_string).collect();
        out.push(d);
    }
    out
}

/// tls-required-cleartext: EOP's own 451 5.7.3 to MAIL FROM / RCPT TO in a cleartext session.
fn cleartext(m: &Model<'_>) -> Vec<Draft> {
    let mut hits = Vec::new();
    for s in hybrid_sessions(m) {
        if s.tls_ok.is_some() {
            continue;
        }
        for (i, r) in s.replies() {
            let after_envelope = s.sent_before(i).next().is_some_and(|(_, l)| {
                let u = l.to_ascii_uppercase();
                u.starts_with("MAIL")
                    || u.starts_with("RCPT")
                    || u.starts_with("BDAT")
                    || u.starts_with("DATA")
            });
            if r.code == 451 && r.text().starts_with("5.7.3") && after_envelope {
                hits.push((s, i));
                break;
            }
        }
    }
    let mut out = Vec::new();
    for (conn, v) in by_connector(hits) {
        let (s0, _) = v[0];
        let cname = connector_name(m, s0);
        let connector = conn.map(|i| &m.connectors[i]);
        let mut d = Draft::new(FindingId::TlsRequiredCleartext, cname.clone());
        d.connector = conn;
        d.sessions = v.iter().map(|(s, _)| s.id().to_string()).collect();
        for (k, (s, i)) in v.iter().take(MAX_OCCURRENCES).enumerate() {
            d.occurrence(k, s.ev(*i));
        }
        let ignore = connector.and_then(|c| c.ignore_starttls()) == Some(true);
        let offered = s0
            .ehlo_reply
            .and_then(|i| s0.reply(i))
            .is_some_and(offers_starttls);
        let earlier_failure = conn.is_some_and(|ci| {
            m.sessions_of(ci)
                .any(|s| s.tls_failed.is_some() && s.start < s0.start)
        });
        if ignore {
            d.evidence
                .push_opt(connector.and_then(|c| c.prop("IgnoreSTARTTLS")));
        }
        d.evidence
            .push_opt(connector.and_then(|c| c.prop("RequireTLS")));
        for ic in m
            .onprem_inbound()
            .filter(|c| c.row.require_tls == Some(true))
        {
            d.evidence.push_opt(prop_ev(&ic.evidence, "RequireTls"));
        }
        d.evidence.extend(m.queue_evs(conn, &["5.7.3"]));
        let reason = if ignore {
            "IgnoreSTARTTLS is set on the send connector".to_string()
        } else if earlier_failure {
            "an earlier TLS failure made the connector fall back to clear text".to_string()
        } else if !offered {
            "STARTTLS was not offered".to_string()
        } else {
            "the connector did not use the STARTTLS EOP offered".to_string()
        };
        d.explanation = format!(
            "Exchange Online attributes this server to an inbound connector that requires TLS, but the server did \
             not start TLS ({reason}{}), so EOP answers 451 5.7.3 STARTTLS is required to send mail ({}, the last at \
             {}). Make the connector \"{cname}\" use, and require, TLS; if an earlier TLS failure caused the fallback, \
             that failure is the root cause and is reported separately.",
            if offered {
                "; EOP offered STARTTLS"
            } else {
                ""
            },
            count(v.len(), "session"),
            s0.start.map(when).unwrap_or_default(),
        );
        d.fix = fill(FIX_CLEARTEXT, &[("CONNECTOR", &cname)]);
        out.push(d);
    }
    out
}

/// no-client-certificate and inbound-connector-cert-mismatch: what EOP can attribute by.
fn client_certificate(m: &Model<'_>) -> Vec<Draft> {
    let cert_connectors: Vec<_> = m
        .onprem_inbound()
        .filter(|c| {
            c.row
                .tls_sender_certificate_name
                .as_deref()
                .is_some_and(|n| !n.trim().is_empty())
        })
        .collect();
    // The Exchange Online side (the mock's record standing in for the message trace): the
    // session was not attributed to any connector.
    let eop_unattributed = |s: &SessionView<'_>| {
        m.session_index(s)
            .and_then(|si| m.eop_of(si))
            .and_then(|e| e.verdict())
            .is_some_and(|v| {
                matches!(
                    v,
                    AttributionVerdict::Unattributed { .. }
                        | AttributionVerdict::RelayDenied { .. }
                        | AttributionVerdict::RelayDeniedAttr36
                        | AttributionVerdict::DirectSendDenied { .. }
                )
            })
    };
    if cert_connectors.is_empty() && m.eop.is_empty() {
        return Vec::new();
    }
    let mut none_or_self = Vec::new();
    let mut mismatch = Vec::new();
    for s in hybrid_sessions(m) {
        let cleartext_by_config = s.starttls.is_none()
            && s.sent_any("MAIL").is_some()
            && m.connector_of(s).and_then(|c| c.ignore_starttls()) == Some(true);
        if s.tls_ok.is_none() && !cleartext_by_config {
            continue;
        }
        let cert_based = !cert_connectors.is_empty();
        match s.sending_cert.and_then(|i| s.cert(i).map(|c| (i, c))) {
            None if cert_based || eop_unattributed(s) => {
                none_or_self.push((s, s.tls_ok.or(s.ehlo_reply).unwrap_or(0)))
            }
            Some((i, c)) if dn_eq(&c.subject, &c.issuer) && (cert_based || eop_unattributed(s)) => {
                none_or_self.push((s, i))
            }
            Some((_, c)) if dn_eq(&c.subject, &c.issuer) => {}
            None => {}
            Some(_) if !cert_based => {}
            Some((i, c)) => {
                let names = c.names();
                let ok = cert_connectors.iter().any(|ic| {
                    ic.row
                        .tls_sender_certificate_name
                        .as_deref()
                        .is_some_and(|n| names_match(n.trim(), names.iter().copied()))
                });
                if !ok {
                    mismatch.push((s, i));
                }
            }
        }
    }
    let expected = cert_connectors
        .first()
        .and_then(|c| c.row.tls_sender_certificate_name.clone())
        .unwrap_or_default();
    let inbound_name = cert_connectors
        .first()
        .map_or_else(|| "<INBOUND_CONNECTOR>".to_string(), |c| c.row.name.clone());
    let inbound_ev = cert_connectors
        .first()
        .and_then(|c| prop_ev(&c.evidence, "TlsSenderCertificateName"));
    // The EOP record's verdict and client-certificate lines of the newest sessions.
    let eop_evs = |v: &[(&SessionView<'_>, usize)]| -> Vec<Ev> {
        v.iter()
            .take(MAX_OCCURRENCES)
            .filter_map(|(s, _)| m.session_index(s).and_then(|si| m.eop_of(si)))
            .take(1)
            .flat_map(|e| e.evs())
            .collect()
    };
    let mut out = Vec::new();
    for (conn, v) in by_connector(none_or_self) {
        let (s0, i0) = v[0];
        let cname = connector_name(m, s0);
        let connector = conn.map(|i| &m.connectors[i]);
        let mut d = Draft::new(FindingId::NoClientCertificate, cname.clone());
        d.connector = conn;
        d.sessions = v.iter().map(|(s, _)| s.id().to_string()).collect();
        for (k, (s, i)) in v.iter().take(MAX_OCCURRENCES).enumerate() {
            d.occurrence(k, s.ev(*i));
        }
        let eop_lines = eop_evs(&v);
        let eop_saw = !eop_lines.is_empty();
        d.evidence.extend(eop_lines);
        d.evidence
            .push_opt(connector.and_then(|c| c.prop("TlsCertificateName")));
        d.evidence.push_opt(inbound_ev.clone());
        if connector.and_then(|c| c.ignore_starttls()) == Some(true) {
            d.evidence
                .push_opt(connector.and_then(|c| c.prop("IgnoreSTARTTLS")));
        }
        let presented = s0.cert(i0).map_or_else(
            || "no certificate".to_string(),
            |c| format!("the self-signed {}", c.subject),
        );
        // A keyed public certificate carrying the expected name, if the store has one.
        let pick = m
            .store
            .certs
            .iter()
            .filter(|x| x.is_keyed() && x.valid_at(m.as_of) && !dn_eq(&x.subject, &x.issuer))
            .find(|x| {
                if expected.trim().is_empty() {
                    // No connector listing: the keyed public certificate enabled for SMTP.
                    return x
                        .services
                        .as_ref()
                        .is_some_and(|sv| sv.iter().any(|s| s.as_str() == "SMTP"));
                }
                let mut names: Vec<&str> = x.domains.iter().map(String::as_str).collect();
                let cns = hybridlab_artefacts::protocol_log::common_names_of(&x.subject);
                names.extend(cns.iter().map(String::as_str));
                names_match(expected.trim(), names)
            });
        let thumb = pick.map_or_else(|| "<THUMBPRINT>".to_string(), |x| x.thumbprint.clone());
        let name = if expected.starts_with("*.") || expected.trim().is_empty() {
            pick.and_then(|x| {
                hybridlab_artefacts::protocol_log::common_names_of(&x.subject)
                    .into_iter()
                    .next()
            })
            .unwrap_or_else(|| "<NAME_IN_CERTIFICATE>".to_string())
        } else {
            expected.clone()
        };
        let expects = if expected.trim().is_empty() {
            String::new()
        } else {
            format!(": the inbound connector \"{inbound_name}\" expects {expected}")
        };
        d.explanation = format!(
            "EOP identifies hybrid mail by the certificate the server presents{expects}. The send connector \
             \"{cname}\" presents {presented} ({}), which EOP cannot use, so the mail is treated as anonymous \
             Internet mail{}. Pin the public certificate on the connector.",
            count(v.len(), "session"),
            if eop_saw {
                " (Exchange Online's record of the session shows it unattributed)"
            } else {
                ""
            },
        );
        d.fix = fill(
            FIX_NO_CLIENT_CERT,
            &[
                ("THUMBPRINT", &thumb),
                ("CONNECTOR", &cname),
                ("NAME_IN_CERTIFICATE", &name),
            ],
        );
        out.push(d);
    }
    for (conn, v) in by_connector(mismatch) {
        let (s0, i0) = v[0];
        let cname = connector_name(m, s0);
        let mut d = Draft::new(FindingId::InboundConnectorCertMismatch, cname.clone());
        d.connector = conn;
        d.sessions = v.iter().map(|(s, _)| s.id().to_string()).collect();
        for (k, (s, i)) in v.iter().take(MAX_OCCURRENCES).enumerate() {
            d.occurrence(k, s.ev(*i));
            d.occurrence(k, s.ev_containing(*i, "alternate names"));
        }
        d.evidence.push_opt(inbound_ev.clone());
        d.evidence.extend(eop_evs(&v));
        for (s, _) in v.iter().take(MAX_OCCURRENCES) {
            for (i, r) in s.replies() {
                if r.text().starts_with("5.7.64") || r.text().starts_with("5.7.68") {
                    d.evidence.push(s.ev(i));
                }
            }
        }
        let cert = s0.cert(i0);
        let names: Vec<String> = cert
            .map(|c| c.names().into_iter().map(str::to_string).collect())
            .unwrap_or_default();
        let cn = names
            .first()
            .cloned()
            .unwrap_or_else(|| "<NAME_IN_CERTIFICATE>".to_string());
        d.explanation = format!(
            "Exchange Online recognises your servers by the name in the certificate they present. The connector \
             \"{inbound_name}\" expects {expected} but the certificate the send connector \"{cname}\" presents carries \
             {} ({}), so the mail is not attributed to your organisation: hybrid headers are dropped and relaying \
             through Exchange Online is refused.",
            names.join(", "),
            count(v.len(), "session"),
        );
        d.fix = fill(
            FIX_INBOUND_MISMATCH,
            &[
                ("INBOUND_CONNECTOR", &inbound_name),
                ("NAME_IN_CERTIFICATE", &cn),
                ("CONNECTOR", &cname),
            ],
        );
        out.push(d);
    }
    out
}

const FIX_TLS12: &str = "New-Item 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.2\\Client' -Force
New-ItemProperty 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.2\\Client' -Name Enabled -Value 1 -PropertyType DWord -Force
New-ItemProperty 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.2\\Client' -Name DisabledByDefault -Value 0 -PropertyType DWord -Force
New-Item 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.2\\Server' -Force
New-ItemProperty 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.2\\Server' -Name Enabled -Value 1 -PropertyType DWord -Force
New-ItemProperty 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.2\\Server' -Name DisabledByDefault -Value 0 -PropertyType DWord -Force
foreach ($p in 'HKLM:\\SOFTWARE\\Microsoft\\.NETFramework\\v4.0.30319', 'HKLM:\\SOFTWARE\\WOW6432Node\\Microsoft\\.NETFramework\\v4.0.30319') { New-ItemProperty $p -Name SystemDefaultTlsVersions -Value 1 -PropertyType DWord -Force; New-ItemProperty $p -Name SchUseStrongCrypto -Value 1 -PropertyType DWord -Force }
Restart-Computer
# after the restart
Get-Queue | Where Status -eq Retry | Retry-Queue";

const FIX_UNTRUSTED: &str = "Import-Certificate -FilePath C:\\Temp\\<ROOT_CERTIFICATE>.crt -CertStoreLocation Cert:\\LocalMachine\\Root
# keep the root list current (often disabled on Edge servers)
Set-ItemProperty 'HKLM:\\SOFTWARE\\Policies\\Microsoft\\SystemCertificates\\AuthRoot' -Name DisableRootAutoUpdate -Value 0
Restart-Service MSExchangeTransport
Get-Queue | Where Status -eq Retry | Retry-Queue";

const FIX_NAME_MISMATCH: &str =
    "Set-SendConnector \"<CONNECTOR>\" -TlsDomain mail.protection.outlook.com
Get-Queue | Where Status -eq Retry | Retry-Queue";

const FIX_STRIPPED: &str = "# on the firewall (Cisco ASA example), then retry:
#   policy-map type inspect esmtp esmtp_allow_tls
#    parameters
#     allow-tls
#   policy-map global_policy
#    class inspection_default
#     no inspect esmtp
#     inspect esmtp esmtp_allow_tls
Get-Queue | Where Status -eq Retry | Retry-Queue";

const FIX_CLEARTEXT: &str = "Set-SendConnector \"<CONNECTOR>\" -IgnoreSTARTTLS $false -RequireTLS $true -TlsAuthLevel DomainValidation -TlsDomain mail.protection.outlook.com
Get-Queue | Where Status -eq Retry | Retry-Queue";

const FIX_NO_CLIENT_CERT: &str = "$c = Get-ExchangeCertificate -Thumbprint <THUMBPRINT>
Set-SendConnector \"<CONNECTOR>\" -TlsCertificateName \"<I>$($c.Issuer)<S>$($c.Subject)\" -Fqdn <NAME_IN_CERTIFICATE>
Restart-Service MSExchangeTransport";

const FIX_INBOUND_MISMATCH: &str = "# Exchange Online PowerShell
Set-InboundConnector \"<INBOUND_CONNECTOR>\" -TlsSenderCertificateName <NAME_IN_CERTIFICATE>
# or present a certificate that carries the expected name (on-premises)
Set-SendConnector \"<CONNECTOR>\" -TlsCertificateName \"<I><ISSUER><S><SUBJECT>\"";
