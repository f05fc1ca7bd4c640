//! Whether TLS happened at all: `starttls-stripped` (EOP's EHLO reply without STARTTLS),
//! `tls-required-cleartext` (EOP refusing a cleartext session).

use super::{by_connector, connector_name, hybrid_sessions};
use crate::FindingId;
use crate::model::{Model, prop_ev};
use crate::rules::{Draft, MAX_OCCURRENCES, count, fill, when};

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
pub(super) fn starttls_stripped(m: &Model<'_>) -> Vec<Draft> {
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
pub(super) fn cleartext(m: &Model<'_>) -> Vec<Draft> {
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
