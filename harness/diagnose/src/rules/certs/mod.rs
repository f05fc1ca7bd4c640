//! Rules about this server's own certificate, one file per question:
//! - `credentials`: the private key and its visibility (`cert-keyless-duplicate`,
//!   `cert-missing-private-key`, `cert-key-inaccessible`, `cert-invisible-to-ems`);
//! - `name`: what the connector's TlsCertificateName resolves to (`tls-cert-name-not-found`,
//!   `cert-expired`, `lint-tls-certificate-name-syntax`, `lint-tls-certificate-name-ambiguous`);
//! - `expiry`: validity dates (`cert-expired` from the log alone, `cert-expiring-soon`).

mod credentials;
mod expiry;
mod name;

use hybridlab_model::exchange::SecurityStatus;

use super::Draft;
use crate::Options;
use crate::model::Model;

/// Every certificate rule's drafts.
pub(crate) fn rules(m: &Model<'_>, opts: &Options) -> Vec<Draft> {
    let mut out = Vec::new();
    out.extend(credentials::credentials(m, SecurityStatus::NoCredentials));
    out.extend(credentials::credentials(
        m,
        SecurityStatus::UnknownCredentials,
    ));
    out.extend(name::name_resolution(m));
    out.extend(expiry::expired_in_log(m));
    out.extend(credentials::invisible_to_ems(m));
    out.extend(expiry::expiring_soon(m, opts));
    out.extend(name::name_lints(m));
    out
}
