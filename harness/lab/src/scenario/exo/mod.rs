//! The Exchange Online -> on-premises direction (`[scenario] direction = "exo-to-onprem"`):
//! Exchange Online's sender (`mock_eop::exo`) delivers through the tenant's outbound connector to
//! the on-premises receive side (`hybridlab_receive`), on the lab clock.
//!
//! - [`model`]: the `[receive]` and `[exo]` tables.
//! - [`runner`]: builds the receive site and EXO's queue, applies the `[[changes]]`, runs the
//!   queue over in-memory streams (paused clock) or loopback sockets ([`ExoReplay`]).
//! - [`artefacts`]: the files of both sides (RECV logs, `Get-ReceiveConnector`, certificate
//!   listings and `Get-EventLog | fl` per server; EXO's `Get-MessageTrace` and
//!   `Get-MessageTraceDetail` as Format-List and Export-Csv, `Get-OutboundConnector`,
//!   `Validate-OutboundConnector`) and the closed loop.
//! - [`expect`]: the `[expect]` checks of this direction.

pub mod artefacts;
pub mod expect;
pub mod model;
pub mod runner;

use hybridlab_model::exo::Tenant;
use hybridlab_receive::connector::ReceiveConnector;

pub use runner::{ExoReplay, ServedSide, ServerView, receive_side};

use super::model::Scenario;
use model::ReceiveSpec;

/// Receive-side finding ids the diagnosis will use for this direction. A scenario may expect one
/// before `hybridlab_diagnose`'s catalogue knows it: the closed-loop check then reports
/// "diagnosis pending" (not a failure) and turns on by itself once the rule lands.
pub const PENDING_FINDINGS: &[&str] = &[
    "receive-tls-cert-name-not-found",
    "receive-cert-subject-mismatch",
    "receive-cert-untrusted",
    "receive-cert-expired",
    "inbound-connection-refused",
    "inbound-middlebox-cert",
    "onprem-back-pressure",
    "inbound-tls-version-mismatch",
    "tls-domain-capabilities-missing",
    "inbound-starttls-stripped",
];

/// The tenant whose outbound connectors route the scenario's messages: `[exo] tenant`, else the
/// first tenant with an outbound connector.
///
/// # Errors
/// No such tenant (as text for the loader).
pub fn sending_tenant(s: &Scenario) -> Result<&Tenant, String> {
    match &s.exo.tenant {
        Some(name) => s
            .eop
            .tenants
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| format!("[exo] tenant = {name:?}: no such tenant in [[eop.tenants]]")),
        None => s
            .eop
            .tenants
            .iter()
            .find(|t| !t.outbound_connectors.is_empty())
            .ok_or_else(|| {
                "no tenant has an outbound connector: add [[eop.tenants.outbound_connectors]] \
                 (the connector Exchange Online delivers to on-premises through)"
                    .to_string()
            }),
    }
}

/// Every server's receive connectors as the file gives them (a server without any gets
/// `Default Frontend <SERVER>`), `TlsCertificateName` references not yet resolved.
pub fn initial_connectors(r: &ReceiveSpec) -> Vec<ReceiveConnector> {
    let mut out = Vec::new();
    for sv in &r.servers {
        let mine: Vec<&ReceiveConnector> = r
            .connectors
            .iter()
            .filter(|c| c.server.eq_ignore_ascii_case(&sv.name))
            .collect();
        if mine.is_empty() {
            out.push(ReceiveConnector::default_frontend(&sv.name));
        } else {
            out.extend(mine.into_iter().cloned());
        }
    }
    out
}

/// The index of `server`'s connector called `name` (default: its first connector).
pub fn find_connector(
    connectors: &[ReceiveConnector],
    server: &str,
    name: Option<&str>,
) -> Option<usize> {
    connectors.iter().position(|c| {
        c.server.eq_ignore_ascii_case(server) && name.is_none_or(|n| c.name.eq_ignore_ascii_case(n))
    })
}

/// Whether the scenario runs in this direction.
pub fn is_exo_to_onprem(s: &Scenario) -> bool {
    s.scenario.direction == model::Direction::ExoToOnprem
}
