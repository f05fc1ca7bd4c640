//! Below and after TLS on the receive side: `inbound-connection-refused` (FM-37, EXO cannot open
//! TCP 25), `onprem-back-pressure` (FM-39, `452 4.3.1`) and `tls-domain-capabilities-missing`
//! (FM-41, mail from EXO accepted but anonymous).

use super::view::{ExoVerdict, InboundFamily, RecvView, recv_logged};
use crate::FindingId;
use crate::model::{Model, prop_ev};
use crate::rules::{Draft, MAX_OCCURRENCES, count, fill, when};

pub(super) fn rules(m: &Model<'_>, recv: &[RecvView<'_>], verdicts: &[ExoVerdict]) -> Vec<Draft> {
    let mut out = Vec::new();
    out.extend(refused(m, recv, verdicts));
    out.extend(back_pressure(m, recv, verdicts));
    out.extend(caps_missing(m, recv));
    out
}

fn refused(m: &Model<'_>, recv: &[RecvView<'_>], verdicts: &[ExoVerdict]) -> Option<Draft> {
    let hits: Vec<&ExoVerdict> = verdicts
        .iter()
        .filter(|v| matches!(v.family, InboundFamily::Refused | InboundFamily::TimedOut))
        .collect();
    let v0 = *hits.first()?;
    let mut d = Draft::new(FindingId::InboundConnectionRefused, "recv:tcp");
    for (k, v) in hits.iter().take(MAX_OCCURRENCES).enumerate() {
        d.occurrence(k, v.ev.clone());
    }
    let refused = v0.family == InboundFamily::Refused;
    let delivered = recv.iter().filter(|s| s.accepted.is_some()).count();
    let target = v0.target();
    let host = v0
        .led
        .last_attempted_server_name()
        .unwrap_or("<ON_PREMISES_HOST>")
        .to_string();
    let ip = v0
        .led
        .last_attempted_ip()
        .map(|i| i.rsplit_once(':').map_or(i, |(a, _)| a))
        .unwrap_or("<PUBLIC_IP>")
        .to_string();
    d.explanation = format!(
        "Exchange Online cannot open a TCP connection to {target} on port 25: the connection is {} \
         (\"{}\"). No SMTP session starts, so nothing on Exchange can be the cause: the firewall or NAT in \
         front of it refuses Exchange Online's addresses (an allow-list of EOP ranges that is out of date \
         lets only part of Exchange Online's pool through), the public address or MX/smart host points at \
         the wrong place, or the receive connector or service is down.{}",
        if refused {
            "refused (10061)"
        } else {
            "not answered (10060, timed out)"
        },
        v0.detail(),
        if delivered > 0 {
            format!(
                " The RECV log shows {} from Exchange Online that did deliver: part of the pool gets \
                 through, which is the outdated allow-list.",
                count(delivered, "session")
            )
        } else if recv_logged(m) {
            " The RECV log has no session from Exchange Online at all.".to_string()
        } else {
            String::new()
        }
    );
    d.fix = fill(FIX_REFUSED, &[("HOST", &host), ("IP", &ip)]);
    Some(d)
}

fn back_pressure(m: &Model<'_>, recv: &[RecvView<'_>], verdicts: &[ExoVerdict]) -> Option<Draft> {
    let mut hits: Vec<(&RecvView<'_>, usize)> = recv
        .iter()
        .filter_map(|s| s.back_pressure.map(|i| (s, i)))
        .collect();
    hits.sort_by_key(|(s, _)| std::cmp::Reverse(s.start()));
    let vs: Vec<&ExoVerdict> = verdicts
        .iter()
        .filter(|v| v.family == InboundFamily::BackPressure)
        .collect();
    if hits.is_empty() && vs.is_empty() {
        return None;
    }
    let mut d = Draft::new(FindingId::OnpremBackPressure, "recv:back-pressure");
    for (k, (s, i)) in hits.iter().take(MAX_OCCURRENCES).enumerate() {
        d.occurrence(k, s.ev(*i));
    }
    for (k, v) in vs.iter().take(MAX_OCCURRENCES).enumerate() {
        d.occurrence(k, v.ev.clone());
    }
    d.evidence
        .extend(crate::rules::event_evs(m, &[15004, 15006, 15007], ""));
    let server = hits
        .first()
        .map(|(s, _)| s.server.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| m.server_name());
    let reply = hits
        .first()
        .map(|(s, i)| s.ev(*i).text)
        .or_else(|| vs.first().map(|v| v.detail()))
        .unwrap_or_default();
    let resource = reply
        .find('(')
        .map(|i| reply[i + 1..].split(')').next().unwrap_or("").to_string())
        .filter(|r| !r.is_empty());
    d.explanation = format!(
        "{server} is under back pressure: its resource monitor refuses new mail ({}), so Exchange Online's \
         MAIL FROM gets \"452 4.3.1 Insufficient system resources\" and the mail waits in Exchange Online{}. \
         Nothing is wrong with TLS or the connectors; the server needs its resources back. Events 15004 \
         (raised) and 15006/15007 in its Application log name the resource and its level.",
        resource
            .as_deref()
            .unwrap_or("a monitored resource is over its limit"),
        if hits.is_empty() {
            String::new()
        } else {
            format!(
                " ({}, the last at {})",
                count(hits.len(), "refused session"),
                hits[0].0.start().map(when).unwrap_or_default()
            )
        }
    );
    d.fix = fill(FIX_BACK_PRESSURE, &[("SERVER", &server)]);
    Some(d)
}

/// EOP's sessions whose TLS succeeded with EOP's certificate but got no capability.
fn caps_missing(m: &Model<'_>, recv: &[RecvView<'_>]) -> Vec<Draft> {
    let mut hits: Vec<(&RecvView<'_>, usize)> = recv
        .iter()
        .filter_map(|s| match s.caps {
            Some((i, false)) if s.tls_ok.is_some() => Some((s, i)),
            _ => None,
        })
        .collect();
    if hits.is_empty() {
        return Vec::new();
    }
    hits.sort_by_key(|(s, _)| std::cmp::Reverse(s.start()));
    let s0 = hits[0].0;
    let identity = s0.identity().to_string();
    let mut d = Draft::new(
        FindingId::TlsDomainCapabilitiesMissing,
        format!("recv:{identity}"),
    );
    for (k, (s, i)) in hits.iter().take(MAX_OCCURRENCES).enumerate() {
        d.occurrence(k, s.ev(*i));
        if let Some(a) = s.accepted {
            d.occurrence(k, s.ev(a));
        }
    }
    let name = identity
        .rsplit('\\')
        .next()
        .unwrap_or(&identity)
        .to_string();
    if let Some(c) = m.a.receive_connectors.iter().find(|c| {
        c.row.name.eq_ignore_ascii_case(&name)
            || c.row
                .identity
                .as_deref()
                .is_some_and(|i| i.eq_ignore_ascii_case(&identity))
    }) {
        d.evidence
            .push_opt(prop_ev(&c.evidence, "TlsDomainCapabilities"));
    }
    let accepted = hits.iter().filter(|(s, _)| s.accepted.is_some()).count();
    d.explanation = format!(
        "Exchange Online authenticates to \"{identity}\" with its certificate (mail.protection.outlook.com), \
         but the connector grants it no TLS domain capability (TlsDomainCapabilities='None' in {}, the last \
         at {}). Without `mail.protection.outlook.com:AcceptCloudServicesMail` the session is anonymous: mail \
         {}is accepted, but the cross-premises headers are dropped, so mail from cloud mailboxes arrives as \
         external (external sender tags, no resolved display names, out-of-office and transport rules for \
         external senders). The Hybrid Configuration Wizard sets this; it is lost when the connector is \
         recreated or changed by hand.",
        count(hits.len(), "session"),
        s0.start().map(when).unwrap_or_default(),
        if accepted > 0 {
            format!("({}) ", count(accepted, "message"))
        } else {
            String::new()
        },
    );
    d.fix = fill(FIX_CAPS, &[("CONNECTOR", &identity)]);
    vec![d]
}

const FIX_REFUSED: &str = "# from outside the network (not from the server):
Test-NetConnection <HOST> -Port 25
Resolve-DnsName <HOST>
Get-OutboundConnector | Where-Object ConnectorType -eq OnPremises | Format-List Name,SmartHosts,UseMXRecord
# on the firewall/NAT in front of <IP>: allow TCP 25 from Exchange Online's current ranges
# (40.92.0.0/15, 40.107.0.0/16, 52.100.0.0/14, 104.47.0.0/17; see the published endpoint list) and forward them to Exchange
Get-ReceiveConnector | Where-Object { $_.Bindings -match ':25$' } | Format-List Identity,Enabled,Bindings,RemoteIPRanges";

const FIX_BACK_PRESSURE: &str = "Get-EventLog Application -Source MSExchangeTransport -Newest 200 | Where-Object { $_.EventID -in 15004,15006,15007 } | Format-List TimeGenerated,EventID,Message
Get-ExchangeDiagnosticInfo -Server <SERVER> -Process EdgeTransport -Component ResourceThrottling
# free disk space on the queue database's volume (or move the queue database), then watch event 15005 (resource back to normal)";

const FIX_CAPS: &str = "Get-ReceiveConnector \"<CONNECTOR>\" | Format-List TlsDomainCapabilities,TlsCertificateName,AuthMechanism
Set-ReceiveConnector \"<CONNECTOR>\" -TlsDomainCapabilities mail.protection.outlook.com:AcceptCloudServicesMail";
