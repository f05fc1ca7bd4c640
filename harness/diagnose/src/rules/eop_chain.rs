//! `client-cert-untrusted` from the on-premises artefacts (FM-10/13): EOP's own verdict on the
//! certificate chain this server presents, `454 4.7.0 Failed to establish appropriate TLS channel:
//! UntrustedRoot: Access Denied`, answered to RCPT TO after the handshake succeeded (docs/domain.md
//! section 11.4; KB2888788). The same text reaches the queue's and the messages' LastError and the
//! NDR. This is EOP distrusting us, not us distrusting EOP (`remote-cert-untrusted`).

use std::collections::BTreeMap;

use hybridlab_model::reply::Reply;

use super::eop_record::{FIX_INTERMEDIATE, FIX_PRIVATE_CA, cn_or};
use super::{Draft, MAX_OCCURRENCES, count, fill, when};
use crate::FindingId;
use crate::model::{Model, SessionView, norm_thumb};

/// `454 4.7.0 Failed to establish appropriate TLS channel: <Reason>: Access Denied`.
pub(crate) fn is_chain_refusal(r: &Reply) -> bool {
    r.code == 454
        && r.text()
            .contains("Failed to establish appropriate TLS channel")
}

/// The SChannel reason in the reply (`UntrustedRoot`).
fn reason(text: &str) -> String {
    text.split("TLS channel:")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "UntrustedRoot".to_string())
}

/// Where EOP's verdict was seen and what it means for the presented certificate.
fn explanation(
    seen: Option<(&SessionView<'_>, usize)>,
    name: &str,
    text: &str,
    in_queue: bool,
    in_ndr: bool,
    issuer: Option<&str>,
) -> String {
    let token = reason(text);
    let enterprise = issuer.is_some_and(|i| {
        i.split(',')
            .any(|rdn| rdn.trim().to_ascii_uppercase().starts_with("DC="))
    });
    let where_seen = match (seen, in_queue, in_ndr) {
        (Some((s, n)), _, _) => format!(
            "In {} of \"{name}\" (the last at {}) EOP completes the TLS handshake and then answers \
             RCPT TO with \"{text}\".",
            count(n, "session"),
            s.start.map(when).unwrap_or_default()
        ),
        (None, true, _) => format!("The queue's LastError is \"{text}\"."),
        (None, false, true) => format!("The non-delivery report says \"{text}\"."),
        (None, false, false) => {
            "Event 2004 on the server reports EOP's refusal of the TLS channel \
             (UntrustedRoot)."
                .to_string()
        }
    };
    let cause = match (issuer, enterprise) {
        (Some(i), true) => format!(
            " The certificate this server presents was issued by \"{i}\", a private (enterprise) CA \
             Exchange Online does not trust: hybrid needs a certificate from a public CA."
        ),
        (Some(i), false) => format!(
            " The certificate this server presents was issued by \"{i}\". Either that CA's \
             intermediate certificate is missing from the server's Intermediate Certification \
             Authorities store (SChannel sends only what is installed, EOP does not fetch it), or \
             the CA is private; the send log cannot tell which: check the chain with certutil."
        ),
        (None, _) => {
            " The artefacts do not show which certificate was presented: collect the send \
             protocol log (Verbose) and `Get-ChildItem Cert:\\LocalMachine\\My | Format-List *`."
                .to_string()
        }
    };
    format!(
        "{where_seen} This is EOP refusing the certificate chain this server presents ({token}): EOP \
         cannot build it to a root it trusts, so it cannot use the certificate to attribute the session \
         and refuses to relay. Event 2004 on the server repeats it.{cause}"
    )
}

pub(crate) fn rules(m: &Model<'_>) -> Vec<Draft> {
    let mut by_conn: BTreeMap<Option<usize>, Vec<(&SessionView<'_>, usize)>> = BTreeMap::new();
    for s in &m.sessions {
        if let Some((i, _)) = s.replies().find(|(_, r)| is_chain_refusal(r)) {
            by_conn.entry(s.connector).or_default().push((s, i));
        }
    }
    let queue_hit = |led: &str| led.contains("Failed to establish appropriate TLS channel");
    // Event 2004 repeats EOP's verdict on the server (KB2888788).
    let events: Vec<crate::model::Ev> = crate::rules::event_evs(m, &[2004], "UntrustedRoot")
        .into_iter()
        .chain(crate::rules::event_evs(
            m,
            &[2004],
            "appropriate TLS channel",
        ))
        .collect();
    let queues: Vec<_> = m.queues.iter().filter(|q| queue_hit(q.led())).collect();
    let ndrs: Vec<_> = m
        .ndrs
        .iter()
        .filter(|n| is_chain_refusal(&n.reply))
        .collect();
    if by_conn.is_empty() && (!queues.is_empty() || !ndrs.is_empty() || !events.is_empty()) {
        by_conn.insert(
            queues
                .first()
                .and_then(|q| q.connector)
                .or_else(|| ndrs.first().and_then(|n| n.connector)),
            Vec::new(),
        );
    }
    let mut out = Vec::new();
    for (ci, mut v) in by_conn {
        v.sort_by_key(|(s, i)| std::cmp::Reverse(s.at(*i)));
        let name = ci.map_or_else(
            || {
                v.first().map_or_else(
                    || "<CONNECTOR>".to_string(),
                    |(s, _)| s.ps.session.connector_id.clone(),
                )
            },
            |i| m.connectors[i].name.clone(),
        );
        let mut d = Draft::new(FindingId::ClientCertUntrusted, name.clone());
        d.connector = ci;
        d.sessions = v.iter().map(|(s, _)| s.id().to_string()).collect();
        for (k, (s, i)) in v.iter().take(MAX_OCCURRENCES).enumerate() {
            d.occurrence(k, s.ev(*i));
            if k == 0 {
                if let Some(c) = s.sending_cert {
                    d.evidence.push(s.thumbprint_ev(c));
                }
                if let Some(t) = s.tls_ok {
                    d.evidence.push(s.ev(t));
                }
            }
        }
        d.evidence.extend(
            queues
                .iter()
                .filter(|q| q.connector == ci || q.connector.is_none())
                .filter_map(|q| q.ev.clone()),
        );
        d.evidence
            .extend(ndrs.iter().take(MAX_OCCURRENCES).map(|n| n.ev.clone()));
        d.evidence.extend(events.iter().cloned());
        let s0 = v.first().map(|(s, _)| *s);
        let cert = s0.and_then(|s| s.sending_cert.and_then(|i| s.cert(i)));
        let text = s0
            .and_then(|s| v.first().and_then(|(_, i)| s.reply(*i)))
            .map(Reply::one_line)
            .or_else(|| queues.first().map(|q| q.led().to_string()))
            .or_else(|| ndrs.first().map(|n| n.reply.one_line()))
            .unwrap_or_default();
        let issuer = cert.map(|c| c.issuer.clone());
        if let Some(c) = cert
            && let Some(sc) = m.store.get(&norm_thumb(&c.thumbprint))
        {
            d.evidence
                .push_opt(sc.ev_issuer.clone().or_else(|| sc.ev()));
        }
        let enterprise = issuer.as_deref().is_some_and(|i| {
            i.split(',')
                .any(|rdn| rdn.trim().to_ascii_uppercase().starts_with("DC="))
        });
        d.explanation = explanation(
            s0.map(|s| (s, v.len())),
            &name,
            &text,
            !queues.is_empty(),
            !ndrs.is_empty(),
            issuer.as_deref(),
        );
        let server = m.server_name();
        let cn = cert
            .and_then(|c| c.common_names.first().cloned())
            .unwrap_or_else(|| "<NAME_IN_CERTIFICATE>".to_string());
        d.fix = if enterprise {
            fill(
                FIX_PRIVATE_CA,
                &[("CONNECTOR", &name), ("NAME", &cn), ("SERVER", &server)],
            )
        } else {
            let mut f = vec![format!(
                "certutil -verify -urlfetch C:\\Temp\\{}.cer",
                cert.map_or("<THUMBPRINT>", |c| c.thumbprint.as_str())
            )];
            f.extend(fill(
                FIX_INTERMEDIATE,
                &[
                    (
                        "ISSUING_CA",
                        &issuer
                            .as_deref()
                            .map_or_else(|| "<ISSUING_CA>".to_string(), cn_or),
                    ),
                    ("SERVER", &server),
                ],
            ));
            f
        };
        out.push(d);
    }
    out
}
