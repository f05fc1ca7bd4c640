//! STARTTLS and the certificate the receiving server presents to Exchange Online.
//!
//! The server's own RECV log tells the cases apart: no STARTTLS in its EHLO reply is FM-05 (the
//! connector found no certificate); STARTTLS offered but never used by EOP is a device that masks
//! it; a failed handshake is a protocol mismatch (FM-40); a completed handshake that EOP leaves at
//! once is EOP refusing the certificate (expired, wrong name, untrusted chain). Exchange Online's
//! LED (`[Message=...]`) names the same families; its thumbprint, when no Exchange store holds
//! it, points at a device that terminates TLS (FM-38).

use std::collections::BTreeMap;

use hybridlab_model::x509::{CertFacts, names_match};

use super::view::{ExoVerdict, InboundFamily, RecvView, recv_logged};
use crate::FindingId;
use crate::model::{Ev, Model, norm_thumb};
use crate::rules::{Draft, MAX_OCCURRENCES, count, fill, when};

/// What one rule collected: receive sessions (with the event that shows the failure) and EXO's
/// verdicts.
#[derive(Default)]
struct Acc<'r, 'a> {
    recv: Vec<(&'r RecvView<'a>, usize)>,
    verdicts: Vec<&'r ExoVerdict>,
}

type Hits<'r, 'a> = BTreeMap<(FindingId, String), Acc<'r, 'a>>;

fn add_recv<'r, 'a>(h: &mut Hits<'r, 'a>, id: FindingId, s: &'r RecvView<'a>, i: usize) {
    h.entry((id, s.identity().to_string()))
        .or_default()
        .recv
        .push((s, i));
}

fn add_verdict<'r>(h: &mut Hits<'r, '_>, id: FindingId, v: &'r ExoVerdict) {
    // A verdict joins the receive sessions of the same finding, else stands alone.
    let key = h
        .keys()
        .find(|(i, _)| *i == id)
        .map_or_else(|| (id, String::new()), Clone::clone);
    h.entry(key).or_default().verdicts.push(v);
}

/// The outbound connector's TlsDomain (`mail.contoso.com`), when Get-OutboundConnector shows it.
pub(super) fn tls_domain(m: &Model<'_>) -> Option<(String, Option<Ev>)> {
    m.a.outbound_connectors
        .iter()
        .filter(|c| {
            c.row
                .connector_type
                .as_deref()
                .is_none_or(|t| t.eq_ignore_ascii_case("OnPremises"))
        })
        .find_map(|c| {
            let d = c.row.tls_domain.clone().filter(|d| !d.trim().is_empty())?;
            Some((d, crate::model::prop_ev(&c.evidence, "TlsDomain")))
        })
}

/// Why EOP would refuse a certificate it received in a completed handshake.
fn cert_verdict(m: &Model<'_>, c: &CertFacts, at: time::OffsetDateTime) -> FindingId {
    if c.not_after < at && c.not_after > hybridlab_artefacts::protocol_log::UNKNOWN_TIME {
        return FindingId::ReceiveCertExpired;
    }
    let domain = tls_domain(m).map(|(d, _)| d);
    let names = c.names();
    let name_ok = match &domain {
        Some(d) => names_match(d, names.iter().copied()),
        None => !c.is_self_signed,
    };
    if c.is_self_signed || !name_ok {
        FindingId::ReceiveCertSubjectMismatch
    } else {
        FindingId::ReceiveCertUntrusted
    }
}

pub(super) fn rules(m: &Model<'_>, recv: &[RecvView<'_>], verdicts: &[ExoVerdict]) -> Vec<Draft> {
    let mut h: Hits<'_, '_> = BTreeMap::new();
    for s in recv {
        if !s.ehlo_reply.is_empty() && !s.starttls_offered && s.starttls.is_none() {
            add_recv(
                &mut h,
                FindingId::ReceiveTlsCertNameNotFound,
                s,
                s.ehlo_reply[0],
            );
        } else if s.starttls_offered && s.starttls.is_none() && s.left_without_mail() {
            add_recv(
                &mut h,
                FindingId::InboundStarttlsStripped,
                s,
                s.ehlo_reply[0],
            );
        } else if let (Some(_), Some((_, i))) = (s.starttls, s.tls_failed) {
            add_recv(&mut h, FindingId::InboundTlsVersionMismatch, s, i);
        } else if let (Some(ok), Some(ci)) = (s.tls_ok, s.sending_cert)
            && s.left_without_mail()
            && let Some(c) = s.cert(ci)
        {
            add_recv(&mut h, cert_verdict(m, c, s.at(ok)), s, ci);
        }
    }
    let stripped_seen = h
        .keys()
        .any(|(i, _)| *i == FindingId::InboundStarttlsStripped);
    for v in verdicts {
        let in_no_store = v
            .led
            .thumbprint()
            .filter(|t| m.store.listed() && m.store.get(&norm_thumb(t)).is_none());
        let id = match v.family {
            InboundFamily::StarttlsRequired if stripped_seen => FindingId::InboundStarttlsStripped,
            InboundFamily::StarttlsRequired => FindingId::ReceiveTlsCertNameNotFound,
            InboundFamily::TlsFailed => FindingId::InboundTlsVersionMismatch,
            InboundFamily::SubjectMismatch | InboundFamily::Untrusted | InboundFamily::Expired
                if in_no_store.is_some() =>
            {
                FindingId::InboundMiddleboxCert
            }
            InboundFamily::SubjectMismatch => FindingId::ReceiveCertSubjectMismatch,
            InboundFamily::Untrusted => FindingId::ReceiveCertUntrusted,
            InboundFamily::Expired => FindingId::ReceiveCertExpired,
            _ => continue,
        };
        add_verdict(&mut h, id, v);
    }
    h.into_iter()
        .map(|((id, key), acc)| draft(m, recv, id, key, acc))
        .collect()
}

/// The certificate the connector should name: time-valid, keyed (listed by
/// Get-ExchangeCertificate or HasPrivateKey True), not self-signed, carrying `domain` or the subject
/// `TlsCertificateName` asks for; and a note on what the identifier matches.
fn good_certificate(
    m: &Model<'_>,
    tls_name: Option<&str>,
    domain: &str,
) -> (Option<String>, String) {
    let ident: Option<hybridlab_model::identifier::X509Identifier> =
        tls_name.and_then(|t| t.parse().ok());
    let subject_cn = ident.as_ref().and_then(|i| {
        hybridlab_artefacts::protocol_log::common_names_of(&i.subject)
            .into_iter()
            .next()
    });
    let good = m
        .store
        .certs
        .iter()
        .filter(|c| c.valid_at(m.as_of) && c.is_keyed() && c.subject != c.issuer)
        .find(|c| {
            c.domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
                || subject_cn.as_deref().is_some_and(|cn| {
                    c.domains.iter().any(|d| d.eq_ignore_ascii_case(cn))
                        || c.subject
                            .to_ascii_lowercase()
                            .contains(&cn.to_ascii_lowercase())
                })
        });
    let matches = ident.as_ref().map_or(0, |i| {
        m.store
            .matching(&i.issuer, &i.subject)
            .filter(|c| c.valid_at(m.as_of))
            .count()
    });
    let note = match (&ident, good, m.store.listed()) {
        (Some(_), Some(g), true) if matches == 0 => format!(
            " Its TlsCertificateName matches no time-valid certificate in the listings; {} ({}, issued by {}) \
             is the certificate to name.",
            g.thumbprint, g.subject, g.issuer
        ),
        (Some(_), None, true) if matches == 0 => {
            " Its TlsCertificateName matches no time-valid certificate in the listings.".to_string()
        }
        _ => String::new(),
    };
    (good.map(|g| g.thumbprint.clone()), note)
}

/// `mail.contoso.com` of `... Expected Subject: mail.contoso.com. Presented Subject: ...`.
fn expected_subject(detail: &str) -> Option<String> {
    let rest = detail.split("Expected Subject:").nth(1)?.trim_start();
    let name: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
    let name = name.trim_end_matches('.');
    (!name.is_empty()).then(|| name.to_string())
}

/// The receive connector listing's row for a session's connector (`SERVER\Name` or `Name`).
fn recv_connector<'m>(
    m: &'m Model<'_>,
    identity: &str,
) -> Option<&'m hybridlab_artefacts::ps::Parsed<hybridlab_artefacts::connectors::ReceiveConnectorRow>>
{
    let name = identity.rsplit('\\').next().unwrap_or(identity);
    m.a.receive_connectors.iter().find(|c| {
        c.row
            .identity
            .as_deref()
            .is_some_and(|i| i.eq_ignore_ascii_case(identity))
            || c.row.name.eq_ignore_ascii_case(name)
    })
}

/// A session of another server that presented a certificate and delivered: (server, thumbprint).
fn delivering_elsewhere(recv: &[RecvView<'_>], server: &str) -> Option<(String, String)> {
    recv.iter()
        .rev()
        .filter(|s| s.accepted.is_some() && !s.server.eq_ignore_ascii_case(server))
        .find_map(|s| {
            let c = s.sending_cert.and_then(|i| s.cert(i))?;
            Some((s.server.clone(), c.thumbprint.clone()))
        })
}

fn draft(
    m: &Model<'_>,
    recv: &[RecvView<'_>],
    id: FindingId,
    key: String,
    mut acc: Acc<'_, '_>,
) -> Draft {
    acc.recv.sort_by_key(|(s, _)| std::cmp::Reverse(s.start()));
    let mut d = Draft::new(id, format!("recv:{key}"));
    for (k, (s, i)) in acc.recv.iter().take(MAX_OCCURRENCES).enumerate() {
        let e = if s.sending_cert == Some(*i) {
            s.cert_ev(*i)
        } else {
            s.ev(*i)
        };
        d.occurrence(k, e);
    }
    for (k, v) in acc.verdicts.iter().take(MAX_OCCURRENCES).enumerate() {
        d.occurrence(k, v.ev.clone());
    }
    let s0 = acc.recv.first().map(|(s, _)| *s);
    let identity = s0.map_or_else(
        || {
            m.a.receive_connectors
                .iter()
                .find(|c| c.row.bindings.iter().any(|b| b.ends_with(":25")))
                .and_then(|c| c.row.identity.clone())
                .unwrap_or_else(|| "<SERVER>\\Default Frontend <SERVER>".to_string())
        },
        |s| s.identity().to_string(),
    );
    let conn_row = recv_connector(m, &identity);
    if id == FindingId::ReceiveTlsCertNameNotFound {
        let name = identity.rsplit('\\').next().unwrap_or(&identity);
        d.evidence
            .extend(crate::rules::event_evs(m, &[12014], name));
    }
    if let Some(c) = conn_row {
        d.evidence
            .push_opt(crate::model::prop_ev(&c.evidence, "TlsCertificateName"));
    }
    let server = s0
        .map(|s| s.server.clone())
        .filter(|s| !s.is_empty())
        .or_else(|| conn_row.and_then(|c| c.row.server.clone()))
        .unwrap_or_else(|| m.server_name());
    let v0 = acc.verdicts.first();
    let target = v0.map_or_else(|| format!("server {server}"), |v| v.target());
    let sessions = count(acc.recv.len(), "session");
    let last = s0.and_then(|s| s.start()).map(when).unwrap_or_default();
    let exo = v0
        .map(|v| format!(" Exchange Online reports \"{}\".", v.detail()))
        .unwrap_or_default();
    let no_recv = acc.recv.is_empty();
    let recv_missing = !recv_logged(m);
    let cert = s0
        .and_then(|s| s.sending_cert.and_then(|i| s.cert(i)))
        .or_else(|| {
            acc.recv
                .iter()
                .find_map(|(s, _)| s.sending_cert.and_then(|i| s.cert(i)))
        });
    let thumb = cert
        .map(|c| c.thumbprint.clone())
        .or_else(|| v0.and_then(|v| v.led.thumbprint()))
        .unwrap_or_else(|| "<THUMBPRINT>".to_string());
    let domain = tls_domain(m);
    if let Some((_, Some(e))) = &domain
        && matches!(
            id,
            FindingId::ReceiveCertSubjectMismatch | FindingId::InboundMiddleboxCert
        )
    {
        d.evidence.push(e.clone());
    }
    let domain_name = domain
        .as_ref()
        .map(|(d, _)| d.clone())
        .or_else(|| v0.and_then(|v| expected_subject(&v.detail())))
        .or_else(|| v0.and_then(|v| v.led.last_attempted_server_name().map(str::to_string)))
        .unwrap_or_else(|| "<TLS_DOMAIN>".to_string());
    let connector = identity.clone();
    let (good, store_note) = good_certificate(
        m,
        conn_row.and_then(|c| c.row.tls_certificate_name.as_deref()),
        &domain_name,
    );
    let elsewhere = delivering_elsewhere(recv, &server);
    let good_thumb = good
        .or_else(|| elsewhere.as_ref().map(|(_, t)| t.clone()))
        .unwrap_or_else(|| "<GOOD_THUMBPRINT>".to_string());
    let elsewhere_note = elsewhere
        .as_ref()
        .map(|(srv, t)| {
            format!(
                " Sessions that land on {srv} present {t} and deliver: that certificate (with its key) is \
                 the one {server} must present too."
            )
        })
        .unwrap_or_default();
    let caps_missing = conn_row.is_some_and(|c| c.row.tls_domain_capabilities.is_empty());
    let any_tls_failed = acc.recv.iter().any(|(s, _)| s.tls_failed.is_some());
    let collect_recv = if recv_missing {
        format!(
            " The collection has no receive protocol log of {server}: what the server itself offered \
             and presented cannot be checked, so collect it (Get-ReceiveConnector \"{connector}\" | \
             Format-List ProtocolLoggingLevel must be Verbose; the RECV*.LOG files under \
             TransportRoles\\Logs\\FrontEnd\\ProtocolLog\\SmtpReceive)."
        )
    } else {
        String::new()
    };
    let c = Ctx {
        server,
        connector,
        target,
        sessions,
        last,
        exo,
        no_recv,
        recv_missing,
        thumb,
        domain_name,
        store_note,
        elsewhere_note,
        caps_missing,
        cert,
        v0: v0.copied(),
        good_thumb,
        any_tls_failed,
        collect_recv,
    };
    let (explanation, fix) = match id {
        FindingId::ReceiveTlsCertNameNotFound
        | FindingId::InboundStarttlsStripped
        | FindingId::InboundTlsVersionMismatch => explain_offer(id, &c),
        _ => explain_cert(id, &c),
    };
    d.explanation = explanation;
    d.fix = fix;
    d
}

/// What a receive-side explanation and fix are built from.
struct Ctx<'x> {
    server: String,
    connector: String,
    target: String,
    sessions: String,
    last: String,
    exo: String,
    no_recv: bool,
    recv_missing: bool,
    thumb: String,
    domain_name: String,
    store_note: String,
    elsewhere_note: String,
    caps_missing: bool,
    cert: Option<&'x CertFacts>,
    v0: Option<&'x ExoVerdict>,
    good_thumb: String,
    any_tls_failed: bool,
    collect_recv: String,
}

/// Explanation and fix of the findings about STARTTLS and the handshake.
fn explain_offer(id: FindingId, c: &Ctx<'_>) -> (String, Vec<String>) {
    let Ctx {
        server,
        connector,
        target,
        sessions,
        last,
        exo,
        no_recv,
        recv_missing,
        thumb,
        domain_name,
        store_note,
        good_thumb,
        any_tls_failed,
        ..
    } = c;
    let (no_recv, recv_missing, any_tls_failed) = (*no_recv, *recv_missing, *any_tls_failed);
    let vars: Vec<(&str, &str)> = vec![
        ("GOOD_THUMBPRINT", good_thumb),
        ("CONNECTOR", connector),
        ("SERVER", server),
        ("THUMBPRINT", thumb),
        ("TLS_DOMAIN", domain_name),
    ];
    let collect_recv = &c.collect_recv;
    match id {
        FindingId::ReceiveTlsCertNameNotFound => (
            format!(
                "{} {}receive connector \"{connector}\" offers no STARTTLS to Exchange Online: when its \
                 TlsCertificateName names a certificate the server cannot use (deleted or replaced after a \
                 renewal, expired, without its private key), the transport logs event 12014 and leaves \
                 STARTTLS out of the EHLO reply, and Exchange Online, which requires TLS toward on-premises, \
                 defers the mail with \"451 5.7.3 STARTTLS is required to send mail\".{store_note}{exo}{}",
                if no_recv {
                    format!("Mail from Exchange Online to {target} is deferred.")
                } else {
                    format!(
                        "In {sessions} from Exchange Online (the last at {last}) the EHLO reply of {server} has no STARTTLS."
                    )
                },
                if no_recv {
                    "The usual cause: the "
                } else {
                    "The "
                },
                if no_recv && !recv_missing {
                    String::new()
                } else if no_recv {
                    format!(
                        "{collect_recv} Until then SMTP inspection on a firewall (which hides a STARTTLS the \
                         server does offer: inbound-starttls-stripped) cannot be ruled out."
                    )
                } else {
                    String::new()
                }
            ),
            fill(FIX_CERT_NAME, &vars),
        ),
        FindingId::InboundStarttlsStripped => (
            format!(
                "The RECV log of {server} shows its EHLO reply offering STARTTLS to Exchange Online, yet in \
                 {sessions} (the last at {last}) Exchange Online never sends STARTTLS and leaves without mail. \
                 Exchange Online always uses STARTTLS when it sees it, so a device between them (SMTP \
                 inspection, \"ESMTP fixup\" on a firewall) hides or rewrites it, and Exchange Online, which \
                 requires TLS, defers with \"451 5.7.3 STARTTLS is required to send mail\". The server's \
                 certificate is not the problem: it offered STARTTLS.{exo}"
            ),
            fill(FIX_STRIPPED, &vars),
        ),
        FindingId::InboundTlsVersionMismatch => {
            let old = any_tls_failed;
            (
                format!(
                    "{} Exchange Online delivers only over TLS 1.2 or later with modern ciphers; a receive \
                     side that offers only TLS 1.0/1.1 (SChannel's TLS 1.2 Server keys disabled) or only old \
                     ciphers fails the handshake, and Exchange Online defers the mail.{exo}{}",
                    if no_recv {
                        format!("Exchange Online cannot complete the TLS handshake with {target}.")
                    } else {
                        format!(
                            "In {sessions} from Exchange Online (the last at {last}) {server} fails the TLS \
                             handshake after STARTTLS."
                        )
                    },
                    if old {
                        String::new()
                    } else {
                        format!(
                            " The artefacts do not show the server's SChannel settings: check them before \
                             changing anything; a device resetting the handshake cannot be ruled out.{collect_recv}"
                        )
                    }
                ),
                fill(
                    if old {
                        FIX_TLS12_SERVER
                    } else {
                        FIX_TLS12_CHECK
                    },
                    &vars,
                ),
            )
        }
        _ => (String::new(), Vec::new()),
    }
}

/// Explanation and fix of the findings about the certificate Exchange Online was shown.
fn explain_cert(id: FindingId, c: &Ctx<'_>) -> (String, Vec<String>) {
    let Ctx {
        server,
        connector,
        target,
        exo,
        no_recv,
        recv_missing,
        thumb,
        domain_name,
        elsewhere_note,
        caps_missing,
        cert,
        v0,
        good_thumb,
        ..
    } = c;
    let (no_recv, recv_missing, caps_missing) = (*no_recv, *recv_missing, *caps_missing);
    let (cert, v0) = (*cert, *v0);
    let vars: Vec<(&str, &str)> = vec![
        ("GOOD_THUMBPRINT", good_thumb),
        ("CONNECTOR", connector),
        ("SERVER", server),
        ("THUMBPRINT", thumb),
        ("TLS_DOMAIN", domain_name),
    ];
    let collect_recv = &c.collect_recv;
    match id {
        FindingId::ReceiveCertExpired => (
            format!(
                "The certificate {server} presents to Exchange Online (thumbprint {thumb}{}) has expired, so \
                 Exchange Online refuses the TLS session and defers the mail.{exo}{}",
                cert.map(|c| format!(", not after {}", when(c.not_after)))
                    .unwrap_or_default(),
                if no_recv {
                    collect_recv.clone()
                } else {
                    String::new()
                }
            ),
            fill(FIX_EXPIRED, &vars),
        ),
        FindingId::ReceiveCertSubjectMismatch => (
            format!(
                "Exchange Online's outbound connector validates the on-premises certificate by name \
                 (TlsSettings DomainValidation, TlsDomain {domain_name}), and the certificate {} presents \
                 ({}) does not carry that name{}. Exchange Online refuses it and defers \
                 the mail. With several servers behind one name, only the sessions that land on the server \
                 with the wrong certificate fail.{elsewhere_note}{exo}{collect_recv}",
                if server.starts_with('<') {
                    target.as_str()
                } else {
                    server.as_str()
                },
                cert.map_or_else(
                    || {
                        v0.and_then(|v| v.led.thumbprint()).map_or_else(
                            || "the LED does not say which".to_string(),
                            |t| format!("thumbprint {t}"),
                        )
                    },
                    |c| format!("{}, thumbprint {}", c.subject, c.thumbprint),
                ),
                if cert.is_some_and(|c| c.is_self_signed) {
                    " (it is the server's self-signed certificate: the receive connector has no \
                     TlsCertificateName, or names a certificate that is not on this server)"
                } else {
                    ""
                },
            ),
            {
                let mut f = fill(FIX_SUBJECT, &vars);
                if caps_missing {
                    f.push(format!(
                        "Set-ReceiveConnector \"{connector}\" -TlsDomainCapabilities mail.protection.outlook.com:AcceptCloudServicesMail"
                    ));
                }
                f
            },
        ),
        FindingId::ReceiveCertUntrusted => (
            format!(
                "Exchange Online completes the handshake with {target} but does not trust the chain of the \
                 certificate it presents (thumbprint {thumb}): a private (enterprise) CA, or an \
                 intermediate the server does not send because it is missing from its Intermediate \
                 Certification Authorities store. Exchange Online defers the mail.{exo}{}",
                if no_recv || v0.is_none() {
                    " Which of the two cannot be told from these artefacts: collect `certutil -verify` of \
                     the certificate on the server and Exchange Online's message trace detail."
                } else {
                    ""
                }
            ),
            fill(FIX_UNTRUSTED, &vars),
        ),
        FindingId::InboundMiddleboxCert => (
            format!(
                "Exchange Online refuses the certificate it was shown by {target} (thumbprint {thumb}), and \
                 no certificate listing of the Exchange servers holds that thumbprint: a device in front of \
                 Exchange (a load balancer, reverse proxy or firewall that terminates TLS) presents its own \
                 certificate.{exo}{}",
                if !recv_missing && no_recv {
                    " The RECV log has no session from Exchange Online at that time, which fits: the \
                     device, not Exchange, answered."
                } else {
                    ""
                }
            ),
            fill(FIX_MIDDLEBOX, &vars),
        ),
        _ => (String::new(), Vec::new()),
    }
}

const FIX_CERT_NAME: &str = "Get-ReceiveConnector \"<CONNECTOR>\" | Format-List Fqdn,TlsCertificateName,AuthMechanism
Get-ExchangeCertificate -Server <SERVER> | Where-Object { $_.Services -match 'SMTP' } | Format-List Thumbprint,Subject,Issuer,NotAfter,Services
# name the certificate the server really holds (the hybrid certificate, with its key):
$c = Get-ExchangeCertificate -Server <SERVER> -Thumbprint <GOOD_THUMBPRINT>
Set-ReceiveConnector \"<CONNECTOR>\" -TlsCertificateName \"<I>$($c.Issuer)<S>$($c.Subject)\"
Restart-Service MSExchangeFrontEndTransport";

const FIX_STRIPPED: &str = "# on the firewall in front of <SERVER>: turn off SMTP/ESMTP inspection for Exchange Online's ranges
# (40.92.0.0/15, 40.107.0.0/16, 52.100.0.0/14, 104.47.0.0/17); on a Cisco ASA: policy-map global_policy / class inspection_default / no inspect esmtp
# then, from outside: the EHLO reply must list STARTTLS (not XXXXXXXA)";

const FIX_TLS12_CHECK: &str = "Get-ItemProperty 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.2\\Server' -ErrorAction SilentlyContinue
Get-ItemProperty 'HKLM:\\SOFTWARE\\Microsoft\\.NETFramework\\v4.0.30319' | Format-List SystemDefaultTlsVersions,SchUseStrongCrypto
# only if TLS 1.2 Server shows Enabled 0 or DisabledByDefault 1: enable it (see FM-40 in docs/findings.md) and restart the server";

const FIX_TLS12_SERVER: &str = "Get-ItemProperty 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.2\\Server' -ErrorAction SilentlyContinue
New-Item 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.2\\Server' -Force
New-ItemProperty 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.2\\Server' -Name Enabled -Value 1 -PropertyType DWord -Force
New-ItemProperty 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.2\\Server' -Name DisabledByDefault -Value 0 -PropertyType DWord -Force
# SChannel reads these at boot: restart <SERVER> in a maintenance window
Restart-Computer";

const FIX_EXPIRED: &str =
    "Get-ExchangeCertificate -Server <SERVER> | Format-List Thumbprint,Subject,NotAfter,Services
# renew or import the new certificate (with its key) on <SERVER>, then:
Enable-ExchangeCertificate -Server <SERVER> -Thumbprint <NEW_THUMBPRINT> -Services SMTP
$c = Get-ExchangeCertificate -Server <SERVER> -Thumbprint <NEW_THUMBPRINT>
Set-ReceiveConnector \"<CONNECTOR>\" -TlsCertificateName \"<I>$($c.Issuer)<S>$($c.Subject)\"
Restart-Service MSExchangeFrontEndTransport";

const FIX_SUBJECT: &str = "Get-OutboundConnector | Where-Object ConnectorType -eq OnPremises | Format-List Name,TlsSettings,TlsDomain,SmartHosts
Get-ReceiveConnector \"<CONNECTOR>\" | Format-List Fqdn,TlsCertificateName
# on <SERVER>: present the certificate that carries <TLS_DOMAIN>
$c = Get-ExchangeCertificate -Server <SERVER> -Thumbprint <GOOD_THUMBPRINT>
Set-ReceiveConnector \"<CONNECTOR>\" -TlsCertificateName \"<I>$($c.Issuer)<S>$($c.Subject)\"
Restart-Service MSExchangeFrontEndTransport";

const FIX_UNTRUSTED: &str = "certutil -verify -urlfetch <CERTIFICATE_FILE>
# missing intermediate: import the issuing CA into the Intermediate Certification Authorities store of <SERVER>
Import-Certificate -FilePath <ISSUING_CA_FILE> -CertStoreLocation Cert:\\LocalMachine\\CA
Restart-Service MSExchangeFrontEndTransport
# private (enterprise) CA: replace the certificate with one from a public CA, then Set-ReceiveConnector -TlsCertificateName";

const FIX_MIDDLEBOX: &str = "# the device in front of Exchange presents thumbprint <THUMBPRINT>, which no Exchange server holds
# either pass SMTP through to Exchange without terminating TLS, or install the Exchange certificate (carrying <TLS_DOMAIN>) on the device
Get-ExchangeCertificate | Format-List Thumbprint,Subject,NotAfter,Services";
