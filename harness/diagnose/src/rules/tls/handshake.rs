//! The handshake itself: `tls-version-mismatch` (AlgorithmMismatch, or a reset while other
//! sessions show TLS 1.2 is really off) and `tls-handshake-reset` (a reset right after STARTTLS,
//! or tokens that mean the handshake bytes were altered, with no sign of a version problem: a
//! firewall, IPS or TLS-inspecting device on the path, FM-18).

use hybridlab_artefacts::protocol_log::SessionEvent;
use hybridlab_model::exchange::{DisconnectReason, SecurityStatus};

use super::{by_connector, connector_name, hybrid_sessions};
use crate::FindingId;
use crate::model::{Ev, Model, SessionView, norm_thumb};
use crate::rules::{Draft, MAX_OCCURRENCES, count, when};

/// AlgorithmMismatch, SocketError during the handshake, and other handshake-level tokens.
pub(super) fn version_mismatch(m: &Model<'_>) -> Vec<Draft> {
    let hits: Vec<_> = hybrid_sessions(m)
        .filter_map(|s| handshake_failure(s).map(|h| (s, h)))
        .collect();
    by_connector(hits)
        .into_iter()
        .map(|(conn, v)| version_mismatch_draft(m, conn, &v))
        .collect()
}

/// The handshake-level failure of a session (token and event index): a TLS failure with one of
/// the handshake tokens, or STARTTLS accepted and then the peer dropping the connection before
/// any TLS outcome (as SocketError at the disconnect).
fn handshake_failure(s: &SessionView<'_>) -> Option<(SecurityStatus, usize)> {
    match s.tls_failed {
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
            let dropped = matches!(s.disconnect_reason(), Some(DisconnectReason::Remote(_)));
            match (s.starttls, s.tls_ok, s.disconnect) {
                (Some(st), None, Some(d)) if dropped && d > st => {
                    Some((SecurityStatus::SocketError, d))
                }
                _ => None,
            }
        }
    }
}

/// The newest two lines of any session of this server negotiating TLS 1.0/1.1 or SSL 3.
fn old_protocol_evs(m: &Model<'_>) -> Vec<Ev> {
    m.sessions
        .iter()
        .filter_map(|s| {
            s.tls_ok
                .filter(|&i| match s.event(i) {
                    SessionEvent::TlsNegotiated { text } => {
                        text.contains("TLS1_0") || text.contains("TLS1_1") || text.contains("SSL3")
                    }
                    _ => false,
                })
                .map(|i| s.ev(i))
        })
        .rev()
        .take(2)
        .collect()
}

/// tls-version-mismatch for one connector's failing sessions (newest first).
fn version_mismatch_draft(
    m: &Model<'_>,
    conn: Option<usize>,
    v: &[(&SessionView<'_>, (SecurityStatus, usize))],
) -> Draft {
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
    let old = old_protocol_evs(m);
    let old_note = if old.is_empty() {
        String::new()
    } else {
        " Other sessions of this server still negotiate TLS 1.0/1.1 (SP_PROT_TLS1_0_CLIENT) with Internet peers, \
         which shows TLS 1.2 is not available to the SChannel client."
            .to_string()
    };
    d.evidence.extend(old);
    d.evidence.extend(m.queue_evs(conn, &[]));
    let mut tokens: Vec<&str> = v.iter().map(|(_, (st, _))| st.as_str()).collect();
    tokens.sort_unstable();
    tokens.dedup();
    let tokens = tokens.join(", ");
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
    if dropped || (middlebox && old_note.is_empty()) {
        d.id = FindingId::TlsHandshakeReset;
    }
    let sessions = count(v.len(), "session");
    let remote = s0.remote_name();
    let last = s0.start.map(when).unwrap_or_default();
    d.explanation = if dropped || d.id == FindingId::TlsHandshakeReset {
        format!(
            "In {sessions} of \"{cname}\" to {remote} the TLS handshake is cut off right after STARTTLS \
             ({tokens}, the last at {last}; the remote side closed the connection), before any certificate \
             matters. Nothing in these artefacts shows a TLS version problem (no session of this server \
             negotiates TLS 1.0/1.1, no AlgorithmMismatch), so the usual cause is a device on the path: an \
             intrusion-prevention system, a firewall with SMTP or TLS inspection, or a proxy that resets the \
             handshake. Check that device before touching SChannel: its logs for resets of TCP 25 toward \
             EOP's ranges, and whether SMTP/TLS inspection is on for them. EOP itself accepts TLS 1.2 with \
             modern ciphers.{cert_note}{queue_note}",
        )
    } else if middlebox {
        format!(
            "In {sessions} of \"{cname}\" to {remote} the TLS handshake fails with {tokens} right after STARTTLS. These tokens mean \
             the handshake bytes were altered or replaced: a TLS-inspecting device on the path, or a protocol \
             or cipher EOP refuses.{old_note}{cert_note} Enable TLS 1.2 for SChannel and .NET and make sure \
             nothing between Exchange and EOP inspects SMTP.",
        )
    } else {
        format!(
            "In {sessions} of \"{cname}\" to {remote} the TLS handshake fails with {tokens} right after STARTTLS (the last at {last}), \
             before any certificate matters. EOP accepts only TLS 1.2 (and later); this server offers older \
             protocols or ciphers EOP does not support.{old_note}{cert_note} Enable TLS 1.2 for SChannel and \
             .NET and restart the server.{queue_note}",
        )
    };
    d.fix = if d.id == FindingId::TlsHandshakeReset {
        crate::rules::fill(FIX_RESET, &[("EOP_HOST", &remote)])
    } else {
        FIX_TLS12.lines().map(str::to_string).collect()
    };
    d
}

const FIX_RESET: &str = "# on the firewall/IPS between Exchange and EOP: look for resets of TCP 25 toward 40.92.0.0/15, 40.107.0.0/16, 52.100.0.0/14, 104.47.0.0/17
# and exempt those ranges from SMTP/TLS inspection (on a Cisco ASA: no inspect esmtp)
Test-NetConnection <EOP_HOST> -Port 25
# confirm SChannel still offers TLS 1.2 (expected: no value, or Enabled 1 / DisabledByDefault 0):
Get-ItemProperty 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.2\\Client' -ErrorAction SilentlyContinue
Get-Queue | Where Status -eq Retry | Retry-Queue";

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
