//! The certificate store as the listings show it: every `LocalMachine\My` certificate merged over
//! the `Get-ExchangeCertificate` and `Get-ChildItem Cert:` rows that list it.

use std::collections::HashMap;

use hybridlab_artefacts::certs::{CertListingSource, CertificateStatus, ExchangeService};
use hybridlab_artefacts::{Artefacts, CertificateEntry};
use hybridlab_model::x509::dn_eq;
use time::OffsetDateTime;

use super::{Ev, is_norm_thumb, norm_thumb, prop_ev, row_ev};

/// One certificate of `LocalMachine\My`, merged over every listing that shows it.
#[derive(Debug, Clone, Default)]
pub(crate) struct StoreCert {
    pub thumbprint: String,
    pub subject: String,
    pub issuer: String,
    pub not_before: Option<OffsetDateTime>,
    pub not_after: Option<OffsetDateTime>,
    /// True when `Get-ExchangeCertificate` lists it or a provider row says so; false when a
    /// provider row says `HasPrivateKey False`.
    pub has_key: Option<bool>,
    pub in_ems: bool,
    pub in_provider: bool,
    pub services: Option<Vec<ExchangeService>>,
    pub status: Option<CertificateStatus>,
    pub serial: Option<String>,
    pub domains: Vec<String>,
    /// The `Thumbprint` line of every row that lists it (EMS rows first).
    pub ev_rows: Vec<Ev>,
    /// The `HasPrivateKey` line of a provider row.
    pub ev_key: Option<Ev>,
    pub ev_not_after: Option<Ev>,
    pub ev_services: Option<Ev>,
    pub ev_status: Option<Ev>,
    pub ev_issuer: Option<Ev>,
    dates_from_json: bool,
}

impl StoreCert {
    /// Time-valid at `t` (the transport's `validOnly` search). Without dates: not `DateInvalid`.
    pub(crate) fn valid_at(&self, t: Option<OffsetDateTime>) -> bool {
        match (t, self.not_before, self.not_after) {
            (Some(t), nb, Some(na)) => nb.is_none_or(|nb| nb <= t) && t <= na,
            _ => self.status != Some(CertificateStatus::DateInvalid),
        }
    }

    /// Expired at `t` (or listed `DateInvalid` when the dates are unknown).
    pub(crate) fn expired_at(&self, t: Option<OffsetDateTime>) -> bool {
        match (t, self.not_after) {
            (Some(t), Some(na)) => na < t,
            _ => self.status == Some(CertificateStatus::DateInvalid),
        }
    }

    pub(crate) fn is_keyed(&self) -> bool {
        self.has_key == Some(true)
    }

    pub(crate) fn is_keyless(&self) -> bool {
        self.has_key == Some(false)
    }

    pub(crate) fn matches(&self, issuer: &str, subject: &str) -> bool {
        !self.subject.is_empty() && dn_eq(&self.subject, subject) && dn_eq(&self.issuer, issuer)
    }

    /// The best line to show for this certificate.
    pub(crate) fn ev(&self) -> Option<Ev> {
        self.ev_rows.first().cloned()
    }
}

/// Every certificate listing of the inputs, merged.
#[derive(Debug, Clone, Default)]
pub(crate) struct Store {
    pub certs: Vec<StoreCert>,
    /// A `Get-ExchangeCertificate` listing is among the inputs.
    pub ems_listed: bool,
    /// A `Get-ChildItem Cert:\LocalMachine\My` listing is among the inputs.
    pub provider_listed: bool,
}

impl Store {
    pub(super) fn build(a: &Artefacts) -> Self {
        Self::from_entries(a.certificates.iter())
    }

    /// The store of the listings `entries` (one server's, or all of them merged).
    pub(super) fn from_entries<'e>(entries: impl Iterator<Item = &'e CertificateEntry>) -> Self {
        let mut store = Self::default();
        let mut index: HashMap<String, usize> = HashMap::new();
        // EMS rows first so their lines lead.
        let mut entries: Vec<_> = entries.collect();
        entries.sort_by_key(|e| e.source != CertListingSource::ExchangeCertificate);
        for e in entries {
            let row = &e.parsed.row;
            let ev = &e.parsed.evidence;
            let ems = e.source == CertListingSource::ExchangeCertificate;
            if ems {
                store.ems_listed = true;
            } else {
                store.provider_listed = true;
            }
            let thumb = norm_thumb(&row.thumbprint);
            if thumb.is_empty() {
                continue;
            }
            let i = *index.entry(thumb.clone()).or_insert_with(|| {
                store.certs.push(StoreCert {
                    thumbprint: thumb.clone(),
                    ..StoreCert::default()
                });
                store.certs.len() - 1
            });
            let c = &mut store.certs[i];
            if c.subject.is_empty() {
                c.subject = row.subject.clone();
            }
            if c.issuer.is_empty() {
                c.issuer = row.issuer.clone();
                c.ev_issuer = prop_ev(ev, "Issuer");
            }
            // JSON dates are unambiguous instants; Format-List dates are local and culture-bound.
            let json = e.format == hybridlab_artefacts::ListingFormat::Json;
            if row.not_after.is_some() && (c.not_after.is_none() || (json && !c.dates_from_json)) {
                c.not_after = row.not_after;
                c.not_before = row.not_before.or(c.not_before);
                c.dates_from_json = json;
                c.ev_not_after = prop_ev(ev, "NotAfter").or(c.ev_not_after.take());
            }
            if ems {
                c.in_ems = true;
                c.has_key = Some(true);
                c.services = row.services.clone().or(c.services.take());
                c.ev_services = prop_ev(ev, "Services").or(c.ev_services.take());
                c.status = row.status.or(c.status);
                c.ev_status = prop_ev(ev, "Status").or(c.ev_status.take());
            } else {
                c.in_provider = true;
                match row.has_private_key {
                    Some(true) => c.has_key = Some(true),
                    Some(false) if !c.in_ems => c.has_key = Some(false),
                    _ => {}
                }
                if row.has_private_key.is_some() {
                    c.ev_key = prop_ev(ev, "HasPrivateKey").or(c.ev_key.take());
                }
            }
            if c.serial.is_none() {
                c.serial = row.serial_number.clone().filter(|s| !s.is_empty());
            }
            for d in &row.certificate_domains {
                if !c.domains.iter().any(|x| x.eq_ignore_ascii_case(d)) {
                    c.domains.push(d.clone());
                }
            }
            if let Some(l) = prop_ev(ev, "Thumbprint").or_else(|| row_ev(ev)) {
                c.ev_rows.push(l);
            }
        }
        store
    }

    /// Any listing at all.
    pub(crate) fn listed(&self) -> bool {
        self.ems_listed || self.provider_listed
    }

    pub(crate) fn get(&self, thumbprint: &str) -> Option<&StoreCert> {
        if is_norm_thumb(thumbprint) {
            return self.certs.iter().find(|c| c.thumbprint == thumbprint);
        }
        let t = norm_thumb(thumbprint);
        self.certs.iter().find(|c| c.thumbprint == t)
    }

    /// Certificates with this issuer and subject (any validity).
    pub(crate) fn matching<'s>(
        &'s self,
        issuer: &'s str,
        subject: &'s str,
    ) -> impl Iterator<Item = &'s StoreCert> + 's {
        self.certs
            .iter()
            .filter(move |c| c.matches(issuer, subject))
    }
}
