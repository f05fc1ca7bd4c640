//! One send session with the indices of the events the rules look at (banner, EHLO reply,
//! STARTTLS, certificates, TLS outcome, chain status, disconnect).

use std::net::{IpAddr, SocketAddr};

use hybridlab_artefacts::protocol_log::{CertRole, ParsedSession, SessionEvent};
use hybridlab_model::exchange::{DisconnectReason, SecurityStatus};
use hybridlab_model::reply::Reply;
use hybridlab_model::x509::CertFacts;
use time::OffsetDateTime;

use super::Ev;
use super::connectors::{is_eop_host, is_eop_ip};

/// What a chain-status info line of a send log says is wrong with the remote certificate (named
/// apart from the mock's client-certificate `ChainVerdict` in `hybridlab_model::record`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChainProblem {
    /// The chain does not validate: UntrustedRoot, PartialChain, revocation, expiry.
    Untrusted,
    /// The chain validates but the name does not match (SubjectMismatch).
    NameMismatch,
}

const UNTRUSTED_TOKENS: [&str; 9] = [
    "UntrustedRoot",
    "PartialChain",
    "RevocationStatusUnknown",
    "OfflineRevocation",
    "Revoked",
    "NotTimeValid",
    "Expired",
    "NotSignatureValid",
    "CertExpired",
];

/// Reads a chain-status info line (`Remote certificate chain validation status: 'UntrustedRoot'`).
fn chain_problem(data: &str, context: &str) -> Option<(ChainProblem, String)> {
    // The tokens are .NET enum names: look for them first (no allocation on ordinary lines).
    let has = |t: &str| data.contains(t) || context.contains(t);
    let verdict = if has("SubjectMismatch") || has("Subject mismatch") || has("subject mismatch") {
        (ChainProblem::NameMismatch, "SubjectMismatch")
    } else {
        (
            ChainProblem::Untrusted,
            *UNTRUSTED_TOKENS.iter().find(|t| has(t))?,
        )
    };
    let lower = format!("{data} {context}").to_ascii_lowercase();
    let about_certs = lower.contains("chain")
        || lower.contains("validation")
        || lower.contains("certificate")
        || lower.contains("tls authentication");
    about_certs.then(|| (verdict.0, verdict.1.to_string()))
}

/// One send session, with the indices of the events the rules look at.
#[derive(Debug, Clone)]
pub(crate) struct SessionView<'a> {
    pub ps: &'a ParsedSession,
    pub connector: Option<usize>,
    pub to_eop: bool,
    pub start: Option<OffsetDateTime>,
    pub connected: Option<usize>,
    pub attempting: Option<usize>,
    pub banner: Option<usize>,
    /// The first EHLO reply before any STARTTLS.
    pub ehlo_reply: Option<usize>,
    pub starttls: Option<usize>,
    pub sending_cert: Option<usize>,
    pub remote_cert: Option<usize>,
    pub tls_ok: Option<usize>,
    pub tls_failed: Option<(SecurityStatus, usize)>,
    pub chain: Option<(ChainProblem, String, usize)>,
    pub disconnect: Option<usize>,
    /// The address EOP saw (`Hello [203.0.113.77]`).
    pub observed_ip: Option<String>,
    /// Index of the EHLO reply that carried `observed_ip`.
    pub observed_ip_at: Option<usize>,
}

impl<'a> SessionView<'a> {
    pub(super) fn build(ps: &'a ParsedSession) -> Self {
        let mut v = Self {
            ps,
            connector: None,
            to_eop: false,
            start: ps.session.events.first().map(|e| e.at),
            connected: None,
            attempting: None,
            banner: None,
            ehlo_reply: None,
            starttls: None,
            sending_cert: None,
            remote_cert: None,
            tls_ok: None,
            tls_failed: None,
            chain: None,
            disconnect: None,
            observed_ip: None,
            observed_ip_at: None,
        };
        let mut last_sent: Option<&str> = None;
        for (i, te) in ps.session.events.iter().enumerate() {
            match &te.event {
                SessionEvent::AttemptingConnect => {
                    v.attempting.get_or_insert(i);
                }
                SessionEvent::Connected => {
                    v.connected.get_or_insert(i);
                }
                SessionEvent::Sent { line } => {
                    if line.trim().eq_ignore_ascii_case("STARTTLS") {
                        v.starttls.get_or_insert(i);
                    }
                    last_sent = Some(line.as_str());
                }
                SessionEvent::Received { reply } => {
                    let after_ehlo = last_sent.is_some_and(|l| {
                        let w = l.split_whitespace().next().unwrap_or("");
                        w.eq_ignore_ascii_case("EHLO") || w.eq_ignore_ascii_case("HELO")
                    });
                    if last_sent.is_none() && reply.code == 220 && v.banner.is_none() {
                        v.banner = Some(i);
                    }
                    if after_ehlo && reply.code == 250 {
                        if v.ehlo_reply.is_none() && v.starttls.is_none() && v.tls_ok.is_none() {
                            v.ehlo_reply = Some(i);
                        }
                        if let Some(ip) = hello_ip(reply) {
                            v.observed_ip = Some(ip);
                            v.observed_ip_at = Some(i);
                        }
                    }
                }
                SessionEvent::Certificate { role, .. } => match role {
                    CertRole::Sending => v.sending_cert = Some(i),
                    CertRole::Remote | CertRole::Received => v.remote_cert = Some(i),
                },
                SessionEvent::TlsNegotiated { .. } => v.tls_ok = Some(i),
                SessionEvent::TlsFailed { status } => v.tls_failed = Some((*status, i)),
                SessionEvent::Info { data, context } => {
                    if let Some((verdict, token)) = chain_problem(data, context) {
                        v.chain = Some((verdict, token, i));
                    } else if let Some(status) = SecurityStatus::from_log_text(context) {
                        v.tls_failed = Some((status, i));
                    }
                }
                SessionEvent::Disconnected { .. } => v.disconnect = Some(i),
                SessionEvent::ReceivedLine { .. } => {}
            }
        }
        let host_is_eop = |i: Option<usize>| {
            i.and_then(|i| v.reply(i))
                .and_then(|r| r.lines.first())
                .and_then(|l| l.split_whitespace().next())
                .is_some_and(is_eop_host)
        };
        v.to_eop = host_is_eop(v.banner)
            || host_is_eop(v.ehlo_reply)
            || v.remote_cert
                .and_then(|i| v.cert(i))
                .is_some_and(|c| c.names().iter().any(|n| is_eop_host(n)))
            || is_eop_ip(ps.session.remote.ip());
        v
    }

    pub(crate) fn id(&self) -> &'a str {
        &self.ps.session.session_id
    }

    pub(crate) fn at(&self, i: usize) -> OffsetDateTime {
        self.ps.session.events[i].at
    }

    pub(crate) fn event(&self, i: usize) -> &'a SessionEvent {
        &self.ps.session.events[i].event
    }

    pub(crate) fn reply(&self, i: usize) -> Option<&'a Reply> {
        match self.event(i) {
            SessionEvent::Received { reply } => Some(reply),
            _ => None,
        }
    }

    pub(crate) fn cert(&self, i: usize) -> Option<&'a CertFacts> {
        match self.event(i) {
            SessionEvent::Certificate { cert, .. } => Some(cert),
            _ => None,
        }
    }

    /// Whether the validity of the certificate event `i` was logged (one-line block).
    pub(crate) fn cert_dates_logged(&self, i: usize) -> bool {
        self.ps.sources[i].cert_validity_logged
    }

    /// The first line of event `i`.
    pub(crate) fn ev(&self, i: usize) -> Ev {
        Ev::of(self.ps.sources[i].first(), Some(self.at(i)))
    }

    /// The line of event `i` containing `needle` (a certificate block's thumbprint line).
    pub(crate) fn ev_containing(&self, i: usize, needle: &str) -> Ev {
        Ev::of(self.ps.sources[i].line_containing(needle), Some(self.at(i)))
    }

    /// The thumbprint line of the sending certificate.
    pub(crate) fn thumbprint_ev(&self, i: usize) -> Ev {
        self.ev_containing(i, "Certificate thumbprint")
    }

    /// Replies received, with their indices.
    pub(crate) fn replies(&self) -> impl Iterator<Item = (usize, &'a Reply)> + '_ {
        self.ps
            .session
            .events
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match &e.event {
                SessionEvent::Received { reply } => Some((i, reply)),
                _ => None,
            })
    }

    /// Commands sent before event `i` (latest first).
    pub(crate) fn sent_before(&self, i: usize) -> impl Iterator<Item = (usize, &'a str)> + '_ {
        self.ps.session.events[..i]
            .iter()
            .enumerate()
            .rev()
            .filter_map(|(j, e)| match &e.event {
                SessionEvent::Sent { line } => Some((j, line.as_str())),
                _ => None,
            })
    }

    pub(crate) fn disconnect_reason(&self) -> Option<&'a DisconnectReason> {
        self.disconnect.and_then(|i| match self.event(i) {
            SessionEvent::Disconnected { reason } => Some(reason),
            _ => None,
        })
    }

    /// Any command sent (EHLO, MAIL...).
    pub(crate) fn sent_any(&self, verb: &str) -> Option<usize> {
        self.ps.session.events.iter().position(|e| match &e.event {
            SessionEvent::Sent { line } => line
                .split([' ', ':'])
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case(verb)),
            _ => false,
        })
    }

    /// The remote host name as the banner or EHLO reply names it, else the remote IP.
    pub(crate) fn remote_name(&self) -> String {
        [self.ehlo_reply, self.banner]
            .into_iter()
            .flatten()
            .filter_map(|i| self.reply(i))
            .filter_map(|r| r.lines.first())
            .filter_map(|l| l.split_whitespace().next())
            .find(|h| h.contains('.') && !h.contains('*'))
            .map(str::to_string)
            .unwrap_or_else(|| self.ps.session.remote.ip().to_string())
    }

    pub(crate) fn remote(&self) -> SocketAddr {
        self.ps.session.remote
    }

    /// The time of the last event.
    pub(crate) fn end(&self) -> Option<OffsetDateTime> {
        self.ps.session.events.last().map(|e| e.at)
    }
}

/// `Hello [198.51.100.10]` in the first line of an EHLO reply.
fn hello_ip(r: &Reply) -> Option<String> {
    let l = r.lines.first()?;
    let i = l.find('[')?;
    let j = l[i..].find(']')? + i;
    let ip = &l[i + 1..j];
    ip.parse::<IpAddr>().ok().map(|_| ip.to_string())
}
