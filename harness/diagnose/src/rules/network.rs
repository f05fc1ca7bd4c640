//! Below SMTP: `dns-resolution-failed`, `connect-failed`, `connection-timeout`.
//!
//! The queue's canned replies (`421 4.4.1 Connection timed out`, `421 4.2.1 Unable to connect`)
//! are symptoms: a connect failure needs attempts without a `+` line (or `Failed connection` in
//! the connectivity log), a timeout needs a connected session that went silent for the connector's
//! inactivity timeout with no TLS failure. The queue alone counts only when no log covers the
//! connector.

use std::collections::BTreeMap;

use super::{Draft, MAX_OCCURRENCES, count, fill, when};
use crate::FindingId;
use crate::model::{Ev, Model, SessionView};
use hybridlab_artefacts::connectivity::ConnectivityNote;
use hybridlab_artefacts::protocol_log::SessionEvent;

pub(crate) fn rules(m: &Model<'_>) -> Vec<Draft> {
    let mut out = Vec::new();
    out.extend(dns(m));
    out.extend(connect_failed(m));
    out.extend(timeout(m));
    out
}

/// The connector a connectivity session names on its `+` line.
fn connectivity_connectors(m: &Model<'_>) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for (note, _, session, _) in m.connectivity_notes() {
        if let ConnectivityNote::QueueStart { connector } = note {
            map.insert(session.to_string(), connector);
        }
    }
    map
}

fn connector_index(m: &Model<'_>, name: &str) -> Option<usize> {
    m.connectors
        .iter()
        .position(|c| c.is_next_hop_connector(name))
}

/// Per next hop: connector, queue lines, connectivity lines, the failure text.
type DnsGroup = (Option<usize>, Vec<Ev>, Vec<Ev>, String);

/// Per connector: attempt-only sessions and connectivity `Failed connection` lines (with endpoint).
type ConnectGroup<'m, 'a> = (Vec<&'m SessionView<'a>>, Vec<(Ev, String)>);

/// A silent session: (session, last command index, disconnect index, idle time).
type Silent<'m, 'a> = (&'m SessionView<'a>, usize, usize, time::Duration);

fn is_dns_text(t: &str) -> bool {
    let l = t.to_ascii_lowercase();
    l.contains("dns query failed") || l.contains("smtpsend.dns") || l.contains("nonexistentdomain")
}

fn dns(m: &Model<'_>) -> Vec<Draft> {
    let conn_of = connectivity_connectors(m);
    // Keyed by next-hop domain.
    let mut groups: BTreeMap<String, DnsGroup> = BTreeMap::new();
    for q in &m.queues {
        if is_dns_text(q.led()) {
            let g = groups
                .entry(q.next_hop.to_ascii_lowercase())
                .or_insert_with(|| (q.connector, Vec::new(), Vec::new(), q.led().to_string()));
            g.1.extend(q.ev.clone());
            if g.0.is_none() {
                g.0 = q.connector;
            }
        }
    }
    for (note, ev, session, dest) in m.connectivity_notes() {
        let text = match note {
            ConnectivityNote::DnsFailed { text } => text,
            ConnectivityNote::Summary {
                detail: Some(d), ..
            } if is_dns_text(&d) => d,
            _ => continue,
        };
        let ci = conn_of.get(session).and_then(|n| connector_index(m, n));
        let g = groups
            .entry(dest.to_ascii_lowercase())
            .or_insert_with(|| (ci, Vec::new(), Vec::new(), text.clone()));
        g.2.push(ev);
        if g.0.is_none() {
            g.0 = ci;
        }
    }
    let mut out = Vec::new();
    for (hop, (ci, queue_ev, mut conn_ev, text)) in groups {
        conn_ev.sort_by_key(|e| std::cmp::Reverse(e.at));
        let mut d = Draft::new(FindingId::DnsResolutionFailed, hop.clone());
        d.connector = ci;
        d.evidence.extend(queue_ev);
        for (k, e) in conn_ev.iter().take(MAX_OCCURRENCES).enumerate() {
            d.occurrence(k, e.clone());
        }
        let connector = ci.map(|i| &m.connectors[i]);
        let external = connector
            .and_then(|c| c.row)
            .and_then(|r| r.row.use_external_dns_servers_enabled)
            == Some(true);
        if external {
            d.evidence
                .push_opt(connector.and_then(|c| c.prop("UseExternalDNSServersEnabled")));
        }
        let no_session = ci.is_some_and(|i| m.connectors[i].sessions.is_empty());
        let hop_s = if hop.is_empty() {
            "<NEXT_HOP_DOMAIN>".to_string()
        } else {
            hop.clone()
        };
        let source = if external {
            "the transport's external DNS servers (UseExternalDNSServersEnabled True on the send connector)"
        } else {
            "the DNS servers of this server"
        };
        d.explanation = format!(
            "Exchange cannot resolve {hop_s} with {source}: \"{text}\"{}{}, so it never opens a connection{}.",
            if conn_ev.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} in the connectivity log)",
                    count(conn_ev.len(), "failed attempt")
                )
            },
            connector
                .map(|c| format!(" for the connector \"{}\"", c.name))
                .unwrap_or_default(),
            if no_session {
                " (the send log has no session for it)"
            } else {
                ""
            },
        );
        let server = m.server_name();
        d.fix = fill(FIX_DNS, &[("NEXT_HOP_DOMAIN", &hop_s), ("SERVER", &server)]);
        out.push(d);
    }
    out
}

/// A session that never got past `attempting to connect`.
fn attempt_only(s: &SessionView<'_>) -> bool {
    s.attempting.is_some()
        && s.connected.is_none()
        && s.ps.session.events.iter().all(|e| {
            matches!(
                e.event,
                SessionEvent::AttemptingConnect
                    | SessionEvent::Info { .. }
                    | SessionEvent::Disconnected { .. }
            )
        })
}

fn is_connect_text(t: &str) -> bool {
    let l = t.to_ascii_lowercase();
    l.contains("winsock error code: 1006")
        || l.contains("failed to connect")
        || l.contains("unable to connect")
}

fn connect_failed(m: &Model<'_>) -> Vec<Draft> {
    let conn_of = connectivity_connectors(m);
    let last_time = m.sessions.iter().filter_map(|s| s.end()).max();
    // Per connector: attempt-only sessions, connectivity failures, queue lines.
    let mut groups: BTreeMap<Option<usize>, ConnectGroup<'_, '_>> = BTreeMap::new();
    for s in m.sessions.iter().filter(|s| attempt_only(s)) {
        groups.entry(s.connector).or_default().0.push(s);
    }
    for (note, ev, session, _) in m.connectivity_notes() {
        if let ConnectivityNote::FailedConnection { endpoint, .. } = note {
            let ci = conn_of
                .get(session)
                .and_then(|n| connector_index(m, n))
                .or_else(|| {
                    m.sessions
                        .iter()
                        .find(|s| s.id() == session)
                        .and_then(|s| s.connector)
                });
            groups.entry(ci).or_default().1.push((ev, endpoint));
        }
    }
    // The queue alone, for connectors no log covers.
    for q in m.queues.iter().filter(|q| is_connect_text(q.led())) {
        let covered = q
            .connector
            .is_some_and(|ci| !m.connectors[ci].sessions.is_empty())
            || (q.connector.is_none() && !m.sessions.is_empty());
        if !covered {
            groups.entry(q.connector).or_default();
        }
    }
    let mut out = Vec::new();
    for (ci, (mut attempts, mut failed)) in groups {
        let queue_ev: Vec<Ev> = m
            .queues
            .iter()
            .filter(|q| is_connect_text(q.led()) && (q.connector == ci || q.connector.is_none()))
            .filter_map(|q| q.ev.clone())
            .collect();
        // One attempt-only session at the very end of the log may just be a log cut short.
        let cut_short = attempts.len() == 1
            && failed.is_empty()
            && queue_ev.is_empty()
            && attempts[0].end() == last_time;
        let proven = attempts.len() >= 2
            || !failed.is_empty()
            || (!attempts.is_empty() && !queue_ev.is_empty());
        let queue_alone = attempts.is_empty()
            && failed.is_empty()
            && !queue_ev.is_empty()
            && ci.is_none_or(|c| m.connectors[c].sessions.is_empty());
        if cut_short || !(proven || queue_alone) {
            continue;
        }
        attempts.sort_by_key(|s| std::cmp::Reverse(s.start));
        failed.sort_by_key(|(e, _)| std::cmp::Reverse(e.at));
        let name = ci.map_or_else(
            || {
                attempts.first().map_or_else(
                    || "<CONNECTOR>".to_string(),
                    |s| s.ps.session.connector_id.clone(),
                )
            },
            |i| m.connectors[i].name.clone(),
        );
        let mut d = Draft::new(FindingId::ConnectFailed, name.clone());
        d.connector = ci;
        d.sessions = attempts.iter().map(|s| s.id().to_string()).collect();
        for (k, s) in attempts.iter().take(MAX_OCCURRENCES).enumerate() {
            if let Some(i) = s.attempting {
                d.occurrence(k, s.ev(i));
            }
        }
        for (k, (e, _)) in failed.iter().take(MAX_OCCURRENCES).enumerate() {
            d.occurrence(k, e.clone());
        }
        d.evidence.extend(queue_ev);
        let mut ips: Vec<String> = attempts
            .iter()
            .map(|s| s.remote().ip().to_string())
            .chain(failed.iter().map(|(_, ep)| {
                ep.rsplit_once(':')
                    .map_or(ep.as_str(), |(ip, _)| ip)
                    .to_string()
            }))
            .collect();
        ips.sort();
        ips.dedup();
        let code = m
            .queues
            .iter()
            .find(|q| q.led().contains("10061"))
            .map(|_| "refused (10061)")
            .unwrap_or("times out (10060)");
        let ip_list = if ips.is_empty() {
            "<REMOTE_IP>".to_string()
        } else {
            ips.join(", ")
        };
        d.explanation = format!(
            "Exchange cannot reach {ip_list} on port 25: the connection attempt {code}{}{}. Something on the path \
             blocks outbound SMTP from this server's address (a firewall rule, routing, the ISP). This is not a \
             timeout of a running session: no connection was ever established.",
            if attempts.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} of \"{name}\" stop at 'attempting to connect', the last at {}",
                    count(attempts.len(), "session"),
                    attempts[0].start.map(when).unwrap_or_default()
                )
            },
            if failed.is_empty() {
                String::new()
            } else {
                format!(
                    "; the connectivity log shows {}",
                    count(failed.len(), "failed connection")
                )
            },
        );
        let toward_exo = toward_exo(m, ci, &attempts, &ips);
        if !toward_exo {
            d.off_hybrid = true;
            d.explanation.push_str(&format!(
                " These attempts are not toward Exchange Online (the connector \"{name}\" is not the hybrid \
                 connector and {ip_list} is not an EOP address), so hybrid mail flow is not affected by them: a \
                 warning, not the cause of a hybrid failure."
            ));
        }
        let first_ip = ips
            .first()
            .cloned()
            .unwrap_or_else(|| "<REMOTE_IP>".to_string());
        d.fix = fill(
            if d.off_hybrid {
                FIX_CONNECT_OTHER
            } else {
                FIX_CONNECT
            },
            &[("REMOTE_IP", &first_ip)],
        );
        out.push(d);
    }
    out
}

/// Errors only on the hybrid path: the hybrid connector, EOP's addresses or host names, a queue
/// toward the tenant.
fn toward_exo(
    m: &Model<'_>,
    ci: Option<usize>,
    attempts: &[&SessionView<'_>],
    ips: &[String],
) -> bool {
    ci.is_some_and(|i| m.connectors[i].hybrid)
        || attempts.iter().any(|s| s.to_eop)
        || ips
            .iter()
            .any(|ip| ip.parse().is_ok_and(crate::model::is_eop_ip))
        || m.queues.iter().any(|q| {
            is_connect_text(q.led())
                && (q.connector == ci || q.connector.is_none())
                && is_exo_hop(q.next_hop, &q.last_error.fqdn)
        })
}

/// A next hop of Exchange Online: the tenant's coexistence domain or an EOP host.
fn is_exo_hop(next_hop: &str, fqdn: &str) -> bool {
    let h = next_hop.trim().to_ascii_lowercase();
    h.ends_with(".mail.onmicrosoft.com")
        || crate::model::is_eop_host(&h)
        || crate::model::is_eop_host(fqdn)
}

fn timeout(m: &Model<'_>) -> Vec<Draft> {
    let mut hits: BTreeMap<Option<usize>, Vec<Silent<'_, '_>>> = BTreeMap::new();
    for s in &m.sessions {
        let hybrid = s.to_eop || m.connector_of(s).is_some_and(|c| c.hybrid);
        if !hybrid || s.connected.is_none() || s.tls_failed.is_some() {
            continue;
        }
        let Some(dc) = s.disconnect else { continue };
        if dc == 0 {
            continue;
        }
        let gap = s.at(dc) - s.at(dc - 1);
        let limit = m
            .connector_of(s)
            .map_or(crate::model::DEFAULT_INACTIVITY, |c| c.inactivity_timeout());
        if gap < limit - time::Duration::seconds(1) {
            continue;
        }
        let Some((last_cmd, _)) = s.sent_before(dc).next() else {
            continue;
        };
        hits.entry(s.connector)
            .or_default()
            .push((s, last_cmd, dc, gap));
    }
    let mut out = Vec::new();
    for (ci, mut v) in hits {
        v.sort_by_key(|(s, _, _, _)| std::cmp::Reverse(s.start));
        let (s0, c0, _, gap0) = v[0];
        let name = ci.map_or_else(
            || s0.ps.session.connector_id.clone(),
            |i| m.connectors[i].name.clone(),
        );
        let mut d = Draft::new(FindingId::ConnectionTimeout, name.clone());
        d.connector = ci;
        d.sessions = v.iter().map(|(s, _, _, _)| s.id().to_string()).collect();
        for (k, (s, c, dc, _)) in v.iter().take(MAX_OCCURRENCES).enumerate() {
            d.occurrence(k, s.ev(*c));
            d.occurrence(k, s.ev(*dc));
        }
        d.evidence.extend(m.queue_evs(ci, &["timed out"]));
        d.evidence
            .push_opt(ci.and_then(|i| m.connectors[i].prop("ConnectionInactivityTimeOut")));
        let last_cmd = match s0.event(c0) {
            SessionEvent::Sent { line } => line.clone(),
            _ => String::new(),
        };
        let remote = s0.remote_name();
        let remote_host = ci
            .and_then(|i| {
                m.queues_of(i)
                    .map(|q| q.last_error.fqdn.clone())
                    .find(|f| !f.is_empty())
            })
            .or_else(|| ci.and_then(|i| m.connectors[i].smart_hosts().first().cloned()))
            .unwrap_or_else(|| remote.clone());
        let minutes = gap0.whole_minutes().to_string();
        let tls = if s0.tls_ok.is_some() {
            " and TLS worked"
        } else {
            ""
        };
        d.explanation = format!(
            "The connection to {remote} was up{tls}, but no answer came for {minutes} minutes after \
             \"{last_cmd}\" ({}, the last at {}), so Exchange closed it: there is no TLS failure line, this \
             421 4.4.1 Connection timed out is a real timeout. Smaller messages go through: look at the network path \
             (bandwidth, MTU, packet loss, a proxy) before raising the timeout.",
            count(v.len(), "session"),
            s0.start.map(when).unwrap_or_default(),
        );
        d.fix = fill(
            FIX_TIMEOUT,
            &[("REMOTE_HOST", &remote_host), ("CONNECTOR", &name)],
        );
        out.push(d);
    }
    out
}

const FIX_DNS: &str = "Resolve-DnsName -Type MX <NEXT_HOP_DOMAIN>
Get-TransportService <SERVER> | Format-List ExternalDNSServers,InternalDNSServers
Set-TransportService <SERVER> -ExternalDNSServers <WORKING_DNS_SERVER>
Get-Queue | Where Status -eq Retry | Retry-Queue";

const FIX_CONNECT: &str = "Test-NetConnection <REMOTE_IP> -Port 25
# allow TCP 25 from the sending address to 40.92.0.0/15, 40.107.0.0/16, 52.100.0.0/14, 104.47.0.0/17
Get-Queue | Where Status -eq Retry | Retry-Queue";

const FIX_CONNECT_OTHER: &str = "Test-NetConnection <REMOTE_IP> -Port 25
# not a hybrid problem: ask the destination's administrator whether <REMOTE_IP> accepts SMTP, or allow TCP 25 to it on the firewall
Get-Queue | Where Status -eq Retry | Format-List Identity,NextHopDomain,LastError";

const FIX_TIMEOUT: &str = "Test-NetConnection <REMOTE_HOST> -Port 25
Set-SendConnector \"<CONNECTOR>\" -ConnectionInactivityTimeOut 00:20:00
Get-Queue | Where Status -eq Retry | Retry-Queue";
