//! The other direction, Exchange Online -> on-premises (docs/domain.md section 11): what the
//! receiving server's own RECV log, `Get-ReceiveConnector`, the certificate listings and
//! Exchange Online's verdicts (the LED of an NDR or a message-trace event:
//! `450 4.4.317 Cannot connect to remote server [Message=...] [LastAttemptedServerName=...]`)
//! say about why mail from Exchange Online does not arrive, or arrives anonymous.
//!
//! - `view`: receive sessions from EOP with the indices of their telling events, and Exchange
//!   Online's verdicts ([`ExoVerdict`]) classified by family.
//! - `tls`: STARTTLS and the certificate presented to EOP (`receive-tls-cert-name-not-found`,
//!   `inbound-starttls-stripped`, `inbound-tls-version-mismatch`, `receive-cert-expired`,
//!   `receive-cert-subject-mismatch`, `receive-cert-untrusted`, `inbound-middlebox-cert`).
//! - `flow`: below and after TLS (`inbound-connection-refused`, `onprem-back-pressure`,
//!   `tls-domain-capabilities-missing`).

mod flow;
mod tls;
mod view;

use super::Draft;
use crate::model::Model;

pub(crate) use self::view::exo_verdicts;

/// Every receive-side rule's drafts.
pub(crate) fn rules(m: &Model<'_>) -> Vec<Draft> {
    let recv = view::recv_sessions(m);
    let verdicts = exo_verdicts(m);
    let mut out = Vec::new();
    out.extend(tls::rules(m, &recv, &verdicts));
    out.extend(flow::rules(m, &recv, &verdicts));
    out
}
