//! Rules about the handshake and STARTTLS, one file per question:
//! - `handshake`: `tls-version-mismatch`;
//! - `remote`: EOP's certificate (`remote-cert-untrusted`, `remote-cert-name-mismatch`);
//! - `starttls`: whether TLS happened (`starttls-stripped`, `tls-required-cleartext`);
//! - `client_cert`: the certificate EOP attributes by (`no-client-certificate`,
//!   `inbound-connector-cert-mismatch`).

mod client_cert;
mod handshake;
mod remote;
mod starttls;

use std::collections::BTreeMap;

use super::Draft;
use crate::model::{Model, SessionView};

/// Every TLS rule's drafts.
pub(crate) fn rules(m: &Model<'_>) -> Vec<Draft> {
    let mut out = Vec::new();
    out.extend(handshake::version_mismatch(m));
    out.extend(remote::remote_validation(m));
    out.extend(starttls::starttls_stripped(m));
    out.extend(starttls::cleartext(m));
    out.extend(client_cert::client_certificate(m));
    out
}

/// Sessions that talk to EOP or belong to a hybrid connector.
pub(super) fn hybrid_sessions<'m, 'a>(
    m: &'m Model<'a>,
) -> impl Iterator<Item = &'m SessionView<'a>> + 'm {
    m.sessions
        .iter()
        .filter(move |s| s.to_eop || m.connector_of(s).is_some_and(|c| c.hybrid))
}

pub(super) fn connector_name(m: &Model<'_>, s: &SessionView<'_>) -> String {
    m.connector_of(s)
        .map_or_else(|| s.ps.session.connector_id.clone(), |c| c.name.clone())
}

/// Groups sessions by connector, newest first.
pub(super) fn by_connector<'m, 'a, T>(
    items: Vec<(&'m SessionView<'a>, T)>,
) -> BTreeMap<Option<usize>, Vec<(&'m SessionView<'a>, T)>> {
    let mut g: BTreeMap<Option<usize>, Vec<(&'m SessionView<'a>, T)>> = BTreeMap::new();
    for (s, t) in items {
        g.entry(s.connector).or_default().push((s, t));
    }
    for v in g.values_mut() {
        v.sort_by_key(|(s, _)| std::cmp::Reverse(s.start));
    }
    g
}
