//! EOP's verdicts once the session is up: `partner-connector-restriction` (5.7.51),
//! `relay-denied-unattributed` (5.7.64), `wrong-region-endpoint` (4.4.62 ATTR35), `eop-throttled`
//! (4.7.5xx/5.7.6xx/5.7.708), `recipient-rejected` (550 5.4.1, 5.1.1/5.1.10) and
//! `message-too-large` (552 5.3.4, OverAdvertisedSize).
//!
//! These replies come from EOP verbatim, so a queue's LastError that wraps one is as good as the
//! log line; the log is quoted first when it has the reply.

use std::collections::BTreeMap;
use std::net::IpAddr;

use hybridlab_model::reply::Reply;

use super::{Draft, MAX_OCCURRENCES, count, fill, when};
use crate::FindingId;
use crate::model::{Model, NdrView, QueueView, SessionView, prop_ev};

pub(crate) fn rules(m: &Model<'_>) -> Vec<Draft> {
    let mut out = Vec::new();
    out.extend(partner(m));
    out.extend(relay_denied(m));
    out.extend(wrong_region(m));
    out.extend(throttled(m));
    out.extend(recipient_rejected(m));
    out.extend(too_large(m));
    out
}

/// Per connector: the session hits (session, reply index), the queues and the NDRs.
type Group<'m, 'a> = (
    Option<usize>,
    Vec<(&'m SessionView<'a>, usize)>,
    Vec<&'m QueueView<'a>>,
    Vec<&'m NdrView<'a>>,
);

/// A reply matching `pred` in a session, per connector, newest first; plus the queues whose
/// LastError wraps one and the NDRs whose Diagnostic-Code is one (the message left the queue).
struct Hits<'m, 'a> {
    by_conn: BTreeMap<Option<usize>, Vec<(&'m SessionView<'a>, usize)>>,
    queues: Vec<&'m QueueView<'a>>,
    ndrs: Vec<&'m NdrView<'a>>,
}

fn find<'m, 'a>(m: &'m Model<'a>, pred: impl Fn(&Reply) -> bool) -> Hits<'m, 'a> {
    let mut by_conn: BTreeMap<Option<usize>, Vec<(&'m SessionView<'a>, usize)>> = BTreeMap::new();
    for s in &m.sessions {
        for (i, r) in s.replies() {
            if pred(r) {
                by_conn.entry(s.connector).or_default().push((s, i));
            }
        }
    }
    for v in by_conn.values_mut() {
        v.sort_by_key(|(s, i)| std::cmp::Reverse(s.at(*i)));
    }
    let queues = m
        .queues
        .iter()
        .filter(|q| q.inner_reply().is_some_and(|r| pred(&r)))
        .collect();
    let mut ndrs: Vec<&NdrView<'a>> = m.ndrs.iter().filter(|n| pred(&n.reply)).collect();
    ndrs.sort_by_key(|n| std::cmp::Reverse(n.ev.at));
    Hits {
        by_conn,
        queues,
        ndrs,
    }
}

impl<'m, 'a> Hits<'m, 'a> {
    /// Per connector: the session hits and the queue hits; queues of connectors without log hits
    /// make their own group.
    fn groups(self) -> Vec<Group<'m, 'a>> {
        let mut out: Vec<Group<'m, 'a>> = Vec::new();
        for (c, v) in self.by_conn {
            out.push((c, v, Vec::new(), Vec::new()));
        }
        for q in self.queues {
            match out
                .iter_mut()
                .find(|(c, _, _, _)| q.connector.is_none() || *c == q.connector)
            {
                Some(g) => g.2.push(q),
                None => out.push((q.connector, Vec::new(), vec![q], Vec::new())),
            }
        }
        for n in self.ndrs {
            match out
                .iter_mut()
                .find(|(c, _, _, _)| n.connector.is_none() || *c == n.connector)
            {
                Some(g) => g.3.push(n),
                None => out.push((n.connector, Vec::new(), Vec::new(), vec![n])),
            }
        }
        out
    }
}

fn connector_name(m: &Model<'_>, c: Option<usize>, s: Option<&SessionView<'_>>) -> String {
    c.map(|i| m.connectors[i].name.clone())
        .or_else(|| s.map(|s| s.ps.session.connector_id.clone()))
        .unwrap_or_else(|| "<CONNECTOR>".to_string())
}

/// The reply text for the explanation: the newest log line, else the queue's inner reply, else
/// the NDR's diagnostic code.
fn reply_text(
    v: &[(&SessionView<'_>, usize)],
    qs: &[&QueueView<'_>],
    ns: &[&NdrView<'_>],
) -> String {
    v.first()
        .and_then(|(s, i)| s.reply(*i))
        .map(Reply::one_line)
        .or_else(|| {
            qs.first()
                .and_then(|q| q.inner_reply())
                .map(|r| r.one_line())
        })
        .or_else(|| ns.first().map(|n| n.reply.one_line()))
        .unwrap_or_default()
}

fn start_draft(
    id: FindingId,
    m: &Model<'_>,
    c: Option<usize>,
    v: &[(&SessionView<'_>, usize)],
    qs: &[&QueueView<'_>],
    ns: &[&NdrView<'_>],
) -> Draft {
    let name = connector_name(m, c, v.first().map(|(s, _)| *s));
    let mut d = Draft::new(id, name);
    d.connector = c;
    d.sessions = v.iter().map(|(s, _)| s.id().to_string()).collect();
    d.sessions.dedup();
    for (k, (s, i)) in v.iter().take(MAX_OCCURRENCES).enumerate() {
        d.occurrence(k, s.ev(*i));
    }
    d.evidence.extend(qs.iter().filter_map(|q| q.ev.clone()));
    d.evidence
        .extend(ns.iter().take(MAX_OCCURRENCES).map(|n| n.ev.clone()));
    d
}

fn occurrences(v: &[(&SessionView<'_>, usize)], qs: &[&QueueView<'_>]) -> String {
    match v.first() {
        Some((s, i)) => format!(
            "{}, the last at {}",
            count(v.len(), "reply"),
            when(s.at(*i))
        ),
        None if !qs.is_empty() => "in the queue's LastError".to_string(),
        None => "in the non-delivery report".to_string(),
    }
}

/// The address EOP saw: `Hello [ip]` of the session, or `[ip]` inside the reply.
fn observed_ip(s: Option<&SessionView<'_>>, r: Option<&Reply>) -> Option<String> {
    s.and_then(|s| s.observed_ip.clone()).or_else(|| {
        let t = r?.text();
        t.match_indices('[').find_map(|(i, _)| {
            let rest = &t[i + 1..];
            let ip = rest.split(']').next()?;
            ip.parse::<IpAddr>().ok().map(|_| ip.to_string())
        })
    })
}

fn partner(m: &Model<'_>) -> Vec<Draft> {
    let hits = find(m, |r| r.code == 550 && r.text().starts_with("5.7.51"));
    let mut out = Vec::new();
    for (c, v, qs, ns) in hits.groups() {
        let mut d = start_draft(FindingId::PartnerConnectorRestriction, m, c, &v, &qs, &ns);
        let partner = m.a.inbound_connectors.iter().find(|ic| {
            ic.row.enabled != Some(false)
                && ic
                    .row
                    .connector_type
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case("Partner"))
                && (ic.row.restrict_domains_to_ip_addresses == Some(true)
                    || ic.row.restrict_domains_to_certificate == Some(true))
        });
        let onprem_disabled = m.a.inbound_connectors.iter().find(|ic| {
            ic.row.enabled == Some(false)
                && ic
                    .row
                    .connector_type
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case("OnPremises"))
        });
        let onprem_enabled = m.onprem_inbound().next();
        let (pname, domains, restriction) = match partner {
            Some(p) => {
                d.evidence.push_opt(prop_ev(&p.evidence, "SenderDomains"));
                let restriction = if p.row.restrict_domains_to_ip_addresses == Some(true) {
                    d.evidence
                        .push_opt(prop_ev(&p.evidence, "RestrictDomainsToIPAddresses"));
                    d.evidence
                        .push_opt(prop_ev(&p.evidence, "SenderIPAddresses"));
                    format!("the addresses {}", p.row.sender_ip_addresses.join(", "))
                } else {
                    d.evidence
                        .push_opt(prop_ev(&p.evidence, "RestrictDomainsToCertificate"));
                    format!(
                        "a certificate named {}",
                        p.row
                            .tls_sender_certificate_name
                            .clone()
                            .unwrap_or_default()
                    )
                };
                let domains: Vec<String> = p
                    .row
                    .sender_domains
                    .iter()
                    .map(|s| {
                        let b = s.split_once(':').map_or(s.as_str(), |(_, r)| r);
                        b.split(';').next().unwrap_or(b).to_string()
                    })
                    .collect();
                (p.row.name.clone(), domains.join(", "), restriction)
            }
            None => (
                "<PARTNER_CONNECTOR>".to_string(),
                "your domain".to_string(),
                "specific addresses or a certificate".to_string(),
            ),
        };
        let onprem_note = match (onprem_disabled, onprem_enabled) {
            (Some(o), None) => {
                d.evidence.push_opt(prop_ev(&o.evidence, "Enabled"));
                format!(
                    " The OnPremises connector \"{}\" that should claim it is disabled.",
                    o.row.name
                )
            }
            (_, Some(_)) => String::new(),
            (None, None) if !m.a.inbound_connectors.is_empty() => {
                " No OnPremises connector exists to claim it first.".to_string()
            }
            _ => String::new(),
        };
        let onprem_name = onprem_disabled
            .or(onprem_enabled)
            .map_or_else(|| "<ONPREM_CONNECTOR>".to_string(), |o| o.row.name.clone());
        d.explanation = format!(
            "EOP refuses the on-premises mail with 550 5.7.51 TenantInboundAttribution ({}): the Partner connector \
             \"{pname}\" claims mail from {domains} and only accepts it from {restriction}. Your on-premises servers \
             do not match, and no enabled OnPremises connector claims them first.{onprem_note}",
            occurrences(&v, &qs),
        );
        d.fix = fill(
            FIX_PARTNER,
            &[
                ("ONPREM_CONNECTOR", &onprem_name),
                ("PARTNER_CONNECTOR", &pname),
            ],
        );
        out.push(d);
    }
    out
}

fn relay_denied(m: &Model<'_>) -> Vec<Draft> {
    // 5.7.64 (relay denied) and 5.7.68 (Direct Send refused): both say EOP did not attribute the
    // mail to the organisation.
    let hits = find(m, |r| {
        r.code == 550 && (r.text().starts_with("5.7.64") || r.text().starts_with("5.7.68"))
    });
    let mut out = Vec::new();
    for (c, v, qs, ns) in hits.groups() {
        let mut d = start_draft(FindingId::RelayDeniedUnattributed, m, c, &v, &qs, &ns);
        let s0 = v.first().map(|(s, _)| *s);
        let ip = observed_ip(s0, v.first().and_then(|(s, i)| s.reply(*i)));
        // The EHLO replies naming the address EOP saw.
        for (k, (s, _)) in v.iter().take(MAX_OCCURRENCES).enumerate() {
            if let Some(i) = s.observed_ip_at {
                d.occurrence(k, s.ev(i));
            }
        }
        let parsed_ip: Option<IpAddr> = ip.as_deref().and_then(|i| i.parse().ok());
        let ip_connectors: Vec<_> = m
            .onprem_inbound()
            .filter(|ic| !ic.row.sender_ip_addresses.is_empty())
            .collect();
        let covered = |ic: &&hybridlab_artefacts::ps::Parsed<
            hybridlab_artefacts::connectors::InboundConnectorRow,
        >| {
            parsed_ip.is_some_and(|ip| ic.row.sender_ip_addresses.iter().any(|a| ip_in(a, ip)))
        };
        let ic = ip_connectors
            .iter()
            .find(|ic| !covered(ic))
            .or(ip_connectors.first());
        let mut sender_ips = String::new();
        let inbound_name = match ic {
            Some(ic) => {
                d.evidence
                    .push_opt(prop_ev(&ic.evidence, "SenderIPAddresses"));
                sender_ips = ic.row.sender_ip_addresses.join(", ");
                ic.row.name.clone()
            }
            None => m.onprem_inbound().next().map_or_else(
                || "<INBOUND_CONNECTOR>".to_string(),
                |ic| ic.row.name.clone(),
            ),
        };
        let ip_s = ip.clone().unwrap_or_else(|| "<OBSERVED_IP>".to_string());
        let why = if sender_ips.is_empty() {
            format!(
                "EOP sees this server as {ip_s}, and no inbound connector claims that address or the certificate it presents"
            )
        } else {
            format!(
                "EOP sees this server as {ip_s}, which is not in the connector's addresses ({sender_ips}): the \
                 egress address changed"
            )
        };
        let direct_send = reply_text(&v, &qs, &ns).contains("5.7.68");
        d.explanation = if direct_send {
            format!(
                "Exchange Online accepts mail from your own domains only from senders it can attribute to your \
                 organisation through an inbound connector, by certificate or by IP address, because Direct Send \
                 is rejected (RejectDirectSend). {why}, so the mail is refused with 550 5.7.68 \
                 TenantInboundAttribution; Direct Send not allowed ({}). Fix the attribution rather than disabling \
                 the control.",
                occurrences(&v, &qs),
            )
        } else {
            format!(
                "Exchange Online only relays for senders it can attribute to your organisation through an inbound \
                 connector, by certificate or by IP address. {why}, so mail to recipients outside the tenant is \
                 refused with 550 5.7.64 TenantAttribution; Relay Access Denied ({}).",
                occurrences(&v, &qs),
            )
        };
        d.fix = fill(
            FIX_RELAY,
            &[("INBOUND_CONNECTOR", &inbound_name), ("OBSERVED_IP", &ip_s)],
        );
        out.push(d);
    }
    out
}

/// Whether `ip` is in `entry` (`198.51.100.10`, `198.51.100.0/24`, `198.51.100.10-198.51.100.20`).
fn ip_in(entry: &str, ip: IpAddr) -> bool {
    let e = entry.trim();
    if let Ok(a) = e.parse::<IpAddr>() {
        return a == ip;
    }
    if let Ok(n) = e.parse::<ipnet::IpNet>() {
        return n.contains(&ip);
    }
    if let Some((a, b)) = e.split_once('-')
        && let (Ok(a), Ok(b)) = (a.trim().parse::<IpAddr>(), b.trim().parse::<IpAddr>())
    {
        return a <= ip && ip <= b;
    }
    false
}

fn wrong_region(m: &Model<'_>) -> Vec<Draft> {
    let hits = find(m, |r| {
        r.text().starts_with("4.4.62") || r.text().contains("ATTR35")
    });
    let mut out = Vec::new();
    for (c, v, qs, ns) in hits.groups() {
        let mut d = start_draft(FindingId::WrongRegionEndpoint, m, c, &v, &qs, &ns);
        let conn = c.map(|i| &m.connectors[i]);
        d.evidence.push_opt(conn.and_then(|c| c.prop("SmartHosts")));
        let smart = conn
            .and_then(|c| c.smart_hosts().first().cloned())
            .or_else(|| {
                qs.first()
                    .map(|q| q.last_error.fqdn.clone())
                    .filter(|f| !f.is_empty())
            })
            .or_else(|| v.first().map(|(s, _)| s.remote_name()))
            .unwrap_or_else(|| "<SMART_HOST>".to_string());
        let tenant = m.tenant_domain();
        let dashed = tenant.as_deref().map_or_else(
            || "<TENANT_DOMAIN_WITH_DASHES>".to_string(),
            |t| t.replace('.', "-"),
        );
        let tenant = tenant.unwrap_or_else(|| "<TENANT_DOMAIN>".to_string());
        let cname = d.key.clone();
        d.explanation = format!(
            "The connector \"{cname}\" sends to {smart}, which lands in a different Exchange Online region than your \
             tenant: every recipient gets 451 4.4.62 Mail sent to the wrong Office 365 region. ATTR35 ({}). Send to \
             your tenant's own MX host ({dashed}.mail.protection.outlook.com).",
            occurrences(&v, &qs),
        );
        d.fix = fill(
            FIX_REGION,
            &[
                ("TENANT_DOMAIN", &tenant),
                ("CONNECTOR", &cname),
                ("TENANT_DOMAIN_WITH_DASHES", &dashed),
            ],
        );
        out.push(d);
    }
    out
}

/// EOP reputation verdicts.
fn is_throttle(r: &Reply) -> bool {
    if r.code < 400 {
        return false;
    }
    if r.text().contains("AS16012607") {
        return true;
    }
    let Some(e) = r.enhanced() else { return false };
    match (r.code, e.class, e.subject) {
        (451 | 450 | 421, 4, 7) => {
            (500..=699).contains(&e.detail) || (850..=899).contains(&e.detail)
        }
        (550 | 554, 5, 7) => {
            (606..=649).contains(&e.detail)
                || (501..=513).contains(&e.detail)
                || matches!(e.detail, 703 | 705 | 708 | 750)
        }
        _ => false,
    }
}

fn throttled(m: &Model<'_>) -> Vec<Draft> {
    let hits = find(m, is_throttle);
    let mut out = Vec::new();
    for (c, v, qs, ns) in hits.groups() {
        let mut d = start_draft(FindingId::EopThrottled, m, c, &v, &qs, &ns);
        let s0 = v.first().map(|(s, _)| *s);
        let r0 = v
            .first()
            .and_then(|(s, i)| s.reply(*i))
            .cloned()
            .or_else(|| qs.first().and_then(|q| q.inner_reply()));
        let ip = observed_ip(s0, r0.as_ref()).unwrap_or_else(|| "<OBSERVED_IP>".to_string());
        let unclaimed = m.onprem_inbound().next().is_none();
        let banned = r0.as_ref().is_some_and(|r| r.code >= 500);
        d.explanation = format!(
            "EOP answers {} ({}): it treats {ip} as an unknown Internet sender and {}. Hybrid mail should arrive \
             through an OnPremises inbound connector, which also exempts it from this throttling.{}",
            reply_text(&v, &qs, &ns),
            occurrences(&v, &qs),
            if banned { "blocks it" } else { "limits it" },
            if unclaimed && m.a.inbound_connectors.is_empty() {
                " No inbound connector claims this server (the Get-InboundConnector listing is empty or missing)."
            } else if unclaimed {
                " No enabled OnPremises inbound connector claims this server."
            } else {
                ""
            },
        );
        d.fix = fill(FIX_THROTTLED, &[("OBSERVED_IP", &ip)]);
        out.push(d);
    }
    out
}

/// EOP refusing a recipient at RCPT TO: Directory-Based Edge Blocking (`550 5.4.1 Recipient
/// address rejected: Access denied`) or an unknown address (`550 5.1.1`/`5.1.10
/// RESOLVER.ADR.ExRecipNotFound`).
fn is_recipient_rejected(r: &Reply) -> bool {
    if r.code != 550 {
        return false;
    }
    let t = r.text();
    t.starts_with("5.4.1") || t.starts_with("5.1.1 ") || t.starts_with("5.1.10")
}

/// A session with Exchange Online: the banner or EHLO names an EOP host, the peer is in EOP's
/// ranges, or it went out through a connector to Exchange Online. An Internet server refusing an
/// unknown recipient on the Internet connector is not a hybrid problem.
fn toward_eop(m: &Model<'_>, s: &SessionView<'_>) -> bool {
    s.to_eop || m.connector_of(s).is_some_and(|c| c.hybrid)
}

fn recipient_rejected(m: &Model<'_>) -> Vec<Draft> {
    let mut hits = find(m, is_recipient_rejected);
    for v in hits.by_conn.values_mut() {
        v.retain(|(s, _)| toward_eop(m, s));
    }
    hits.by_conn.retain(|_, v| !v.is_empty());
    let hybrid = |c: Option<usize>| c.is_none_or(|c| m.connectors.get(c).is_some_and(|c| c.hybrid));
    hits.queues.retain(|q| hybrid(q.connector));
    hits.ndrs.retain(|n| hybrid(n.connector));
    let mut out = Vec::new();
    for (c, v, qs, ns) in hits.groups() {
        let mut d = start_draft(FindingId::RecipientRejected, m, c, &v, &qs, &ns);
        // The recipients: the RCPT TO before each refusal, else the NDR's Final-Recipient.
        let mut rcpts: Vec<String> = Vec::new();
        for (s, i) in &v {
            if let Some((j, line)) = s.sent_before(*i).find(|(_, l)| {
                l.get(..7)
                    .is_some_and(|p| p.eq_ignore_ascii_case("RCPT TO"))
            }) {
                if rcpts.is_empty() {
                    d.evidence.push(s.ev(j));
                }
                if let Some(a) = line
                    .split_once('<')
                    .and_then(|(_, r)| r.split('>').next())
                    .filter(|a| !rcpts.iter().any(|x| x.eq_ignore_ascii_case(a)))
                {
                    rcpts.push(a.to_string());
                }
            }
        }
        for n in &ns {
            if !rcpts
                .iter()
                .any(|x| x.eq_ignore_ascii_case(&n.rcpt.address))
            {
                rcpts.push(n.rcpt.address.clone());
            }
        }
        let rcpt = rcpts
            .first()
            .cloned()
            .unwrap_or_else(|| "<RECIPIENT>".to_string());
        let text = reply_text(&v, &qs, &ns);
        let dbeb = text.contains("5.4.1");
        d.explanation = format!(
            "Exchange Online refuses {} at RCPT TO: {text} ({}). The connection and the attribution are fine;              the recipient is the problem. {} The message is returned to the sender.",
            if rcpts.len() > 1 {
                format!("{} recipients ({})", rcpts.len(), rcpts.join(", "))
            } else {
                rcpt.clone()
            },
            occurrences(&v, &qs),
            if dbeb {
                "Directory-Based Edge Blocking rejects addresses that are not in the Exchange Online directory:                  the object has not synchronised (or the mailbox moved and its address changed), or a domain                  shared with on-premises is Authoritative instead of InternalRelay."
            } else {
                "The address does not exist in Exchange Online (RESOLVER.ADR.ExRecipNotFound): a typo, a                  deleted object, or a mailbox whose targetAddress points at the wrong domain."
            },
        );
        d.fix = fill(FIX_RECIPIENT, &[("RECIPIENT", &rcpt)]);
        out.push(d);
    }
    out
}

fn too_large(m: &Model<'_>) -> Vec<Draft> {
    let hits = find(m, |r| {
        r.code >= 500
            && r.text().starts_with("5.3.4")
            && (r.code == 552 || r.text().contains("OverAdvertisedSize"))
    });
    let mut out = Vec::new();
    for (c, v, qs, ns) in hits.groups() {
        let mut d = start_draft(FindingId::MessageTooLarge, m, c, &v, &qs, &ns);
        // The size: the BDAT chunk or the MAIL FROM SIZE= before the reply; the recipient.
        let mut size: Option<u64> = None;
        let mut rcpt: Option<String> = None;
        if let Some((s, i)) = v.first() {
            for (j, line) in s.sent_before(*i) {
                let u = line.to_ascii_uppercase();
                if size.is_none() && u.starts_with("BDAT ") {
                    size = line.split_whitespace().nth(1).and_then(|n| n.parse().ok());
                    if size.is_some() {
                        d.evidence.push(s.ev(j));
                    }
                } else if size.is_none() && u.starts_with("MAIL FROM") {
                    size = u
                        .split_whitespace()
                        .find_map(|t| t.strip_prefix("SIZE="))
                        .and_then(|n| n.parse().ok());
                }
                if rcpt.is_none() && u.starts_with("RCPT TO") {
                    rcpt = line
                        .split_once('<')
                        .and_then(|(_, r)| r.split('>').next())
                        .map(str::to_string);
                }
            }
        }
        if rcpt.is_none() {
            rcpt = ns.first().map(|n| n.rcpt.address.clone());
        }
        let size_s = size.map_or_else(
            || "<SIZE>".to_string(),
            hybridlab_model::size::group_thousands,
        );
        let rcpt_s = rcpt.unwrap_or_else(|| "<RECIPIENT>".to_string());
        let cname = d.key.clone();
        let over_advertised = v.is_empty()
            && (qs.iter().any(|q| q.led().contains("OverAdvertisedSize"))
                || ns
                    .iter()
                    .any(|n| n.reply.text().contains("OverAdvertisedSize")));
        let mut advertised: Option<u64> = None;
        let explanation = if over_advertised {
            // The transport refused to send: the newest session of the connector that saw the
            // EHLO SIZE and sent no MAIL FROM shows the limit it compared with.
            let seen = m
                .sessions
                .iter()
                .rev()
                .filter(|s| c.is_none() || s.connector == c)
                .filter(|s| s.sent_any("MAIL").is_none())
                .find_map(|s| {
                    let i = s.ehlo_reply?;
                    advertised_size(s.reply(i)?).map(|n| (s, i, n))
                });
            if let Some((s, i, n)) = seen {
                d.evidence.push(s.ev(i));
                advertised = Some(n);
            }
            let message = if size.is_some() {
                format!("The message of {size_s} bytes to {rcpt_s}")
            } else {
                format!("A message to {rcpt_s}")
            };
            format!(
                "{message} is larger than the SIZE the next hop advertises{}, so the transport did not even send \
                 MAIL FROM and returned it to the sender: {} ({}). Exchange compares the message with the remote \
                 server's EHLO SIZE before it sends. Align the limits along the whole path (organisation, \
                 connectors, Exchange Online mailbox), or send the content another way.",
                seen.map(|(_, _, n)| format!(
                    " ({} bytes in the EHLO reply)",
                    hybridlab_model::size::group_thousands(n)
                ))
                .unwrap_or_default(),
                reply_text(&v, &qs, &ns),
                occurrences(&v, &qs),
            )
        } else {
            let ehlo_size = v
                .first()
                .and_then(|(s, _)| s.ehlo_reply.and_then(|i| s.reply(i)))
                .and_then(advertised_size);
            format!(
                "The message of {size_s} bytes to {rcpt_s} is larger than a limit further on (here: the Exchange \
                 Online recipient's maximum receive size): {} ({}).{} Align the limits along the whole path \
                 (organisation, connectors, Exchange Online mailbox).",
                reply_text(&v, &qs, &ns),
                occurrences(&v, &qs),
                ehlo_size
                    .map(|n| format!(
                        " EOP advertised SIZE {}, so the front door accepted it; the recipient's mailbox did not.",
                        hybridlab_model::size::group_thousands(n)
                    ))
                    .unwrap_or_default(),
            )
        };
        d.explanation = explanation;
        d.fix = if over_advertised {
            let mb = advertised.map_or_else(
                || "<ADVERTISED_MB>".to_string(),
                |n| (n / (1024 * 1024)).to_string(),
            );
            fill(
                FIX_OVER_ADVERTISED,
                &[("CONNECTOR", &cname), ("ADVERTISED_MB", &mb)],
            )
        } else {
            fill(FIX_SIZE, &[("RECIPIENT", &rcpt_s), ("CONNECTOR", &cname)])
        };
        out.push(d);
    }
    out
}

/// The `SIZE` keyword of an EHLO reply, whether the log keeps its lines or joins them with blanks.
fn advertised_size(r: &Reply) -> Option<u64> {
    r.lines.iter().find_map(|l| {
        let mut words = l.split_whitespace();
        while let Some(w) = words.next() {
            if w.eq_ignore_ascii_case("SIZE") {
                return words.next().and_then(|n| n.parse().ok());
            }
        }
        None
    })
}

const FIX_PARTNER: &str = "# Exchange Online PowerShell
Set-InboundConnector \"<ONPREM_CONNECTOR>\" -Enabled $true
Set-InboundConnector \"<PARTNER_CONNECTOR>\" -SenderDomains <DOMAINS_THE_PARTNER_REALLY_SENDS>";

const FIX_RELAY: &str = "# Exchange Online PowerShell
Set-InboundConnector \"<INBOUND_CONNECTOR>\" -SenderIPAddresses @{Add=\"<OBSERVED_IP>\"}
# better: attribute by certificate (then present that certificate on the send connector)
# Set-InboundConnector \"<INBOUND_CONNECTOR>\" -TlsSenderCertificateName <NAME_IN_CERTIFICATE>";

const FIX_REGION: &str = "Resolve-DnsName -Type MX <TENANT_DOMAIN>
Set-SendConnector \"<CONNECTOR>\" -SmartHosts <TENANT_DOMAIN_WITH_DASHES>.mail.protection.outlook.com
Get-Queue | Where Status -eq Retry | Retry-Queue";

const FIX_THROTTLED: &str = "# Exchange Online PowerShell
New-InboundConnector -Name \"From on-premises\" -ConnectorType OnPremises -SenderDomains * -SenderIPAddresses <OBSERVED_IP> -RequireTls $true
# if the address is on the tenant's own block list
Set-HostedConnectionFilterPolicy Default -IPBlockList @{Remove=\"<OBSERVED_IP>\"}
# banned IP (5.7.6xx): request delisting at https://sender.office.com";

const FIX_RECIPIENT: &str = "# Exchange Online PowerShell
Get-Recipient <RECIPIENT> | Format-List RecipientType,PrimarySmtpAddress,EmailAddresses
Get-AcceptedDomain | Format-Table DomainName,DomainType
# a namespace shared with on-premises must be InternalRelay, not Authoritative (never an onmicrosoft.com domain):
# Set-AcceptedDomain <SHARED_DOMAIN> -DomainType InternalRelay
# on the directory synchronisation server: push the missing object
Start-ADSyncSyncCycle -PolicyType Delta";

const FIX_OVER_ADVERTISED: &str = "# the next hop refuses messages over <ADVERTISED_MB> MB (Exchange Online: 150 MB, a fixed limit)
Get-TransportConfig | Format-List MaxSendSize,MaxReceiveSize
Get-SendConnector \"<CONNECTOR>\" | Format-List MaxMessageSize
# keep the on-premises limits at or below the next hop's, so senders are told at submission
Set-SendConnector \"<CONNECTOR>\" -MaxMessageSize <ADVERTISED_MB>MB";

const FIX_SIZE: &str = "# Exchange Online PowerShell: the recipient's limit
Get-Mailbox <RECIPIENT> | Format-List MaxReceiveSize,MaxSendSize
Set-Mailbox <RECIPIENT> -MaxReceiveSize 150MB
# on-premises limits along the path
Get-TransportConfig | Format-List MaxSendSize,MaxReceiveSize
Get-SendConnector \"<CONNECTOR>\" | Format-List MaxMessageSize";
