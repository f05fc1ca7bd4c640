//! Certificate validity dates: `cert-expired` from the log alone, `cert-expiring-soon`.

use std::collections::BTreeMap;

use hybridlab_artefacts::certs::ExchangeService;

use crate::model::{Ev, Model, norm_thumb};
use crate::rules::{Draft, MAX_OCCURRENCES, count, day, fill, when};
use crate::{FindingId, Options};

/// cert-expired from the log alone: a hybrid session presented a certificate whose logged
/// `Not after` is before the session.
pub(super) fn expired_in_log(m: &Model<'_>) -> Vec<Draft> {
    let mut seen: BTreeMap<String, Draft> = BTreeMap::new();
    for s in m.sessions.iter().rev() {
        let hybrid = m.connector_of(s).is_some_and(|c| c.hybrid) || s.to_eop;
        let Some(ci) = s.sending_cert else {
            continue;
        };
        let Some(cert) = s.cert(ci) else {
            continue;
        };
        if !hybrid {
            continue;
        }
        let (na, from_log) = if s.cert_dates_logged(ci) {
            (Some(cert.not_after), true)
        } else {
            (
                m.store.get(&cert.thumbprint).and_then(|x| x.not_after),
                false,
            )
        };
        let Some(na) = na else {
            continue;
        };
        let at = s.at(ci);
        if na >= at {
            continue;
        }
        let thumb = norm_thumb(&cert.thumbprint);
        let cname = m
            .connector_of(s)
            .map_or_else(|| s.ps.session.connector_id.clone(), |c| c.name.clone());
        let d = seen.entry(thumb.clone()).or_insert_with(|| {
            let mut d = Draft::new(FindingId::CertExpired, format!("{cname}|{thumb}"));
            d.connector = s.connector;
            d.explanation = format!(
                "The send connector \"{cname}\" presents certificate {thumb} ({}), which expired on {}{}. EOP \
                 cannot use an expired certificate to recognise your organisation, and the transport logs event \
                 12016. Install the renewed certificate and point the connectors at it.",
                cert.subject,
                day(na),
                if from_log { "" } else { " (per the store listing)" },
            );
            let server = m.server_name();
            d.fix = fill(
                FIX_EXPIRED,
                &[
                    ("SERVER", &server),
                    ("CONNECTOR", &cname),
                    ("EXPIRED_THUMBPRINT", &thumb),
                ],
            );
            d
        });
        if d.sessions.len() < MAX_OCCURRENCES {
            d.evidence.push(s.ev(ci));
        }
        d.sessions.push(s.id().to_string());
    }
    seen.into_values().collect()
}

/// cert-expiring-soon: the connector's certificate, a presented one, or one enabled for SMTP.
pub(super) fn expiring_soon(m: &Model<'_>, opts: &Options) -> Vec<Draft> {
    let Some(as_of) = m.as_of else {
        return Vec::new();
    };
    let horizon = as_of + opts.expiry_warning;
    struct Cand {
        not_after: time::OffsetDateTime,
        subject: String,
        uses: Vec<String>,
        ev: Vec<Ev>,
        connector: Option<usize>,
    }
    let mut cands: BTreeMap<String, Cand> = BTreeMap::new();
    let mut add = |thumb: &str,
                   na: Option<time::OffsetDateTime>,
                   subject: &str,
                   use_: String,
                   ev: Option<Ev>,
                   connector: Option<usize>| {
        let Some(na) = na else { return };
        if !(as_of < na && na <= horizon) {
            return;
        }
        let c = cands.entry(thumb.to_string()).or_insert_with(|| Cand {
            not_after: na,
            subject: subject.to_string(),
            uses: Vec::new(),
            ev: Vec::new(),
            connector,
        });
        if !c.uses.contains(&use_) {
            c.uses.push(use_);
        }
        if let Some(e) = ev
            && c.ev.len() < 4
            && !c.ev.contains(&e)
        {
            c.ev.push(e);
        }
        if c.connector.is_none() {
            c.connector = connector;
        }
    };
    for (ci, c) in m.connectors.iter().enumerate() {
        if let Some(name) = &c.tls_name {
            for x in m
                .store
                .matching(&name.issuer, &name.subject)
                .filter(|x| x.valid_at(Some(as_of)))
            {
                add(
                    &x.thumbprint,
                    x.not_after,
                    &x.subject,
                    format!("the send connector \"{}\" names it", c.name),
                    x.ev_not_after.clone().or_else(|| x.ev()),
                    Some(ci),
                );
            }
        }
    }
    for s in m.sessions.iter().rev() {
        let Some(ci) = s.sending_cert else { continue };
        let Some(cert) = s.cert(ci) else { continue };
        let store = m.store.get(&cert.thumbprint);
        let logged = s.cert_dates_logged(ci);
        let na = if logged {
            Some(cert.not_after)
        } else {
            store.and_then(|x| x.not_after)
        };
        // Most sessions present a certificate far from expiry: decide before formatting.
        if !na.is_some_and(|na| as_of < na && na <= horizon) {
            continue;
        }
        let t = norm_thumb(&cert.thumbprint);
        let ev = if logged {
            Some(s.ev(ci))
        } else {
            store
                .and_then(|x| x.ev_not_after.clone())
                .or_else(|| Some(s.thumbprint_ev(ci)))
        };
        let cname = m
            .connector_of(s)
            .map_or_else(|| s.ps.session.connector_id.clone(), |c| c.name.clone());
        let use_ = format!("the transport presents it on \"{cname}\"");
        add(&t, na, &cert.subject, use_.clone(), ev, s.connector);
        // The store's date line too, when the log carried the date.
        if let Some(x) = store {
            add(
                &t,
                na,
                &cert.subject,
                use_,
                x.ev_not_after.clone(),
                s.connector,
            );
        }
    }
    for x in m.store.certs.iter().filter(|x| x.in_ems) {
        if x.services
            .as_ref()
            .is_some_and(|s| s.contains(&ExchangeService::Smtp))
        {
            add(
                &x.thumbprint,
                x.not_after,
                &x.subject,
                "Get-ExchangeCertificate shows it enabled for SMTP".to_string(),
                x.ev_not_after.clone().or_else(|| x.ev()),
                None,
            );
        }
    }
    cands
        .into_iter()
        .map(|(t, c)| {
            let days = (c.not_after - as_of).whole_days();
            let mut d = Draft::new(FindingId::CertExpiringSoon, t.clone());
            d.connector = c.connector;
            d.evidence.extend(c.ev);
            d.explanation = format!(
                "{} ({t}) expires on {} ({} after the reference time {}); {}. After that hybrid mail stops: renew it \
                 now and point the connectors at the renewal.",
                c.subject,
                day(c.not_after),
                count(days.max(0) as usize, "day"),
                when(as_of),
                c.uses.join("; "),
            );
            d.fix = fill(FIX_EXPIRING, &[("THUMBPRINT", &t)]);
            d
        })
        .collect()
}

pub(super) const FIX_EXPIRED: &str = "Import-ExchangeCertificate -Server <SERVER> -FileData ([System.IO.File]::ReadAllBytes('\\\\<SERVER>\\c$\\Temp\\renewed.pfx')) -Password (Read-Host 'PFX password' -AsSecureString)
# answer N to \"overwrite the existing default SMTP certificate?\"
Enable-ExchangeCertificate -Server <SERVER> -Thumbprint <NEW_THUMBPRINT> -Services SMTP
$c = Get-ExchangeCertificate -Thumbprint <NEW_THUMBPRINT>
Set-SendConnector \"<CONNECTOR>\" -TlsCertificateName \"<I>$($c.Issuer)<S>$($c.Subject)\"
Restart-Service MSExchangeTransport
Get-Queue | Where Status -eq Retry | Retry-Queue
# afterwards: Remove-ExchangeCertificate -Thumbprint <EXPIRED_THUMBPRINT>";

const FIX_EXPIRING: &str = "Get-ExchangeCertificate -Thumbprint <THUMBPRINT> | New-ExchangeCertificate -GenerateRequest -RequestFile C:\\Temp\\renewal.req
# after the CA has issued it: Import-ExchangeCertificate, Enable-ExchangeCertificate -Services SMTP,
# then update TlsCertificateName on the connectors (or re-run the Hybrid Configuration Wizard)";
