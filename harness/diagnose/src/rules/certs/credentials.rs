//! The certificate's private key and its visibility: `cert-keyless-duplicate`,
//! `cert-missing-private-key` (NoCredentials), `cert-key-inaccessible` (UnknownCredentials),
//! `cert-invisible-to-ems`.

use std::collections::BTreeMap;

use hybridlab_artefacts::certs::ExchangeService;
use hybridlab_model::exchange::SecurityStatus;
use hybridlab_model::x509::CertFacts;

use crate::FindingId;
use crate::model::{ConnectorView, Ev, Model, SessionView, StoreCert, norm_thumb};
use crate::rules::{Draft, MAX_OCCURRENCES, count, fill, when};
use hybridlab_model::identifier::X509Identifier;

/// Sessions that failed with `status`, grouped by connector and presented thumbprint, newest
/// first within each group: (session, certificate event, failure event).
type Failures<'m, 'a> = BTreeMap<
    (Option<usize>, String, Option<String>),
    Vec<(&'m SessionView<'a>, Option<usize>, usize)>,
>;

fn failures_with<'m, 'a>(m: &'m Model<'a>, status: SecurityStatus) -> Failures<'m, 'a> {
    let mut groups: Failures<'m, 'a> = BTreeMap::new();
    for s in &m.sessions {
        let Some((st, fi)) = s.tls_failed else {
            continue;
        };
        if st != status {
            continue;
        }
        let ci = s.sending_cert.filter(|&c| c < fi);
        let thumb = ci
            .and_then(|c| s.cert(c))
            .map(|c| norm_thumb(&c.thumbprint))
            .unwrap_or_default();
        // Per server too: a key present on one server says nothing about another.
        let server = m
            .session_index(s)
            .and_then(|si| m.session_server(si))
            .map(str::to_string);
        groups
            .entry((s.connector, thumb, server))
            .or_default()
            .push((s, ci, fi));
    }
    for v in groups.values_mut() {
        v.sort_by_key(|(s, _, fi)| std::cmp::Reverse(s.at(*fi)));
    }
    groups
}

/// The identifier a failing certificate was chosen by: the logged subject and issuer, else the
/// connector's TlsCertificateName.
fn identity_of(
    logged: Option<&CertFacts>,
    name: Option<&X509Identifier>,
) -> Option<X509Identifier> {
    match logged {
        Some(c) if !c.subject.is_empty() && !c.issuer.is_empty() => Some(X509Identifier {
            issuer: c.issuer.clone(),
            subject: c.subject.clone(),
        }),
        _ => name.cloned(),
    }
}

/// NoCredentials -> cert-keyless-duplicate / cert-missing-private-key;
/// UnknownCredentials -> cert-key-inaccessible.
pub(super) fn credentials(m: &Model<'_>, status: SecurityStatus) -> Vec<Draft> {
    failures_with(m, status)
        .into_iter()
        .map(|((conn, thumb, _), fails)| {
            let f = CredentialFailure::new(m, conn, thumb, &fails);
            if status == SecurityStatus::UnknownCredentials {
                key_inaccessible(f)
            } else {
                no_credentials(m, f)
            }
        })
        .collect()
}

/// One group of sessions that failed with the same SChannel status on the same connector and
/// presented thumbprint, with what every finding about it quotes.
struct CredentialFailure<'m, 'a> {
    /// Index of the connector in `Model::connectors`.
    conn: Option<usize>,
    /// The presented certificate's thumbprint (normalised; empty when the log shows none).
    thumb: String,
    /// The connector's name (the logged connector id when no listing shows it).
    cname: String,
    /// The certificate the newest failing session logged before failing.
    logged: Option<&'a CertFacts>,
    connector: Option<&'m ConnectorView<'a>>,
    /// The issuer and subject the certificate was chosen by ([`identity_of`]).
    ident: Option<X509Identifier>,
    /// The presented certificate as the listings show it.
    store_t: Option<&'m StoreCert>,
    /// The server the sessions were logged on (when the collection names one).
    server: Option<String>,
    /// That server's certificate store (the merged one for a single server).
    store: &'m crate::model::Store,
    /// The failure lines of the newest sessions (occurrence index, line), most recent first.
    fail_ev: Vec<(usize, Ev)>,
    /// The ids of every failing session.
    sessions: Vec<String>,
    /// When the newest session failed.
    last: String,
    /// The connector's queue `LastError` lines.
    queue_ev: Vec<Ev>,
    /// The first `LastError` text of the connector's queues.
    led: Option<String>,
    /// The connector's `TlsCertificateName` line.
    tls_name_ev: Option<Ev>,
}

impl<'m, 'a> CredentialFailure<'m, 'a> {
    fn new(
        m: &'m Model<'a>,
        conn: Option<usize>,
        thumb: String,
        fails: &[(&'m SessionView<'a>, Option<usize>, usize)],
    ) -> Self {
        let (s0, c0, _) = fails[0];
        let si = m.session_index(s0);
        let server = si.and_then(|i| m.session_server(i)).map(str::to_string);
        let store = si.map_or(&m.store, |i| m.store_for_session(i));
        let logged = c0.and_then(|c| s0.cert(c));
        let connector = conn.map(|i| &m.connectors[i]);
        let mut fail_ev = Vec::new();
        for (k, (s, ci, fi)) in fails.iter().take(MAX_OCCURRENCES).enumerate() {
            if let Some(ci) = ci {
                fail_ev.push((k, s.thumbprint_ev(*ci)));
            }
            fail_ev.push((k, s.ev(*fi)));
        }
        Self {
            conn,
            cname: connector.map_or_else(|| s0.ps.session.connector_id.clone(), |c| c.name.clone()),
            logged,
            connector,
            ident: identity_of(logged, connector.and_then(|c| c.tls_name.as_ref())),
            store_t: (!thumb.is_empty()).then(|| store.get(&thumb)).flatten(),
            server,
            store,
            thumb,
            fail_ev,
            sessions: fails.iter().map(|(s, _, _)| s.id().to_string()).collect(),
            last: when(s0.at(fails[0].2)),
            queue_ev: m.queue_evs(conn, &[]),
            led: conn
                .and_then(|ci| m.queues_of(ci).next())
                .map(|q| q.led().to_string()),
            tls_name_ev: connector.and_then(|c| c.prop("TlsCertificateName")),
        }
    }

    /// A draft of `id` with the connector, the sessions and the failure lines.
    fn draft(&mut self, id: FindingId) -> Draft {
        let mut d = Draft::new(id, format!("{}|{}", self.cname, self.thumb));
        d.connector = self.conn;
        d.sessions = self.sessions.clone();
        for (k, e) in std::mem::take(&mut self.fail_ev) {
            d.occurrence(k, e);
        }
        d
    }

    /// `1 session` / `n sessions`.
    fn count(&self) -> String {
        count(self.sessions.len(), "session")
    }

    /// The thumbprint, or the `<THUMBPRINT>` placeholder when the log showed none.
    fn thumb_or_placeholder(&self) -> String {
        if self.thumb.is_empty() {
            "<THUMBPRINT>".to_string()
        } else {
            self.thumb.clone()
        }
    }
}

/// cert-key-inaccessible: UnknownCredentials, the key is there but the transport may not open it.
fn key_inaccessible(mut f: CredentialFailure<'_, '_>) -> Draft {
    let mut d = f.draft(FindingId::CertKeyInaccessible);
    let mut services_note = String::new();
    if let Some(t) = f.store_t {
        if t.is_keyed() {
            d.evidence.push_opt(t.ev());
        }
        if let Some(sv) = &t.services
            && !sv.contains(&ExchangeService::Smtp)
        {
            d.evidence.push_opt(t.ev_services.clone());
            services_note = format!(
                " Get-ExchangeCertificate shows it with its key but enabled only for {} (not SMTP).",
                if sv.is_empty() {
                    "no service".to_string()
                } else {
                    hybridlab_artefacts::certs::services_text(sv)
                }
            );
        }
    }
    d.evidence.extend(std::mem::take(&mut f.queue_ev));
    let t = f.thumb_or_placeholder();
    d.explanation = format!(
        "The send connector \"{cname}\" presents certificate {t} ({subject}), and SChannel answers \
         UnknownCredentials ({sessions}, the last at {last}): the certificate and its key are there, \
         but the transport (running as NETWORK SERVICE) is not allowed to open the key.{services_note} \
         The certificate was imported but never enabled for SMTP, or its key sits in a provider SChannel \
         cannot use. `Enable-ExchangeCertificate -Services SMTP` grants the access.{queue}",
        cname = f.cname,
        last = f.last,
        subject = f
            .logged
            .map_or("subject not logged", |c| c.subject.as_str()),
        sessions = f.count(),
        queue = f
            .led
            .as_ref()
            .map(|l| format!(" The queue's \"{l}\" is this failure seen from further away."))
            .unwrap_or_default(),
    );
    d.fix = fill(FIX_KEY_INACCESSIBLE, &[("THUMBPRINT", &t)]);
    d
}

/// NoCredentials: cert-keyless-duplicate when a keyed twin with the same issuer and subject is in
/// the store (and the presented one is not proven keyed), else cert-missing-private-key.
fn no_credentials(m: &Model<'_>, f: CredentialFailure<'_, '_>) -> Draft {
    let thumb = f.thumb.as_str();
    let t_proven_keyed = f.store_t.is_some_and(|t| t.in_ems);
    let ident = f.ident.clone();
    let twin: Option<&StoreCert> = ident.as_ref().and_then(|id| {
        f.store
            .matching(&id.issuer, &id.subject)
            .filter(|c| c.thumbprint != thumb && c.is_keyed() && c.valid_at(m.as_of))
            .max_by_key(|c| c.not_after)
    });
    let keyless_line = f
        .store_t
        .filter(|t| t.is_keyless())
        .and_then(|t| t.ev_key.clone());
    let absent_from_ems = f.store.ems_listed && !f.store_t.is_some_and(|t| t.in_ems);
    let proof = if keyless_line.is_some() {
        format!(
            "Cert:\\LocalMachine\\My lists {thumb} with HasPrivateKey False{}",
            if absent_from_ems {
                " and Get-ExchangeCertificate does not list it"
            } else {
                ""
            }
        )
    } else if absent_from_ems {
        format!(
            "{thumb} is missing from the Get-ExchangeCertificate listing, which shows only certificates that have a private key"
        )
    } else if !f.store.listed() {
        "no certificate listing was provided to confirm it".to_string()
    } else {
        format!("the listings do not show a key for {thumb}")
    };
    let said = NoCredentialsText {
        proof,
        subject: f
            .ident
            .as_ref()
            .map_or_else(|| "(subject not logged)".to_string(), |i| i.subject.clone()),
        queue_phrase: f.led.as_deref().map_or_else(
            || "\"421 4.4.1 Connection timed out\"".to_string(),
            |l| format!("\"{l}\""),
        ),
        keyless_line,
    };
    match twin.filter(|_| !t_proven_keyed && !thumb.is_empty()) {
        Some(t2) => keyless_duplicate(f, t2, said),
        None => missing_private_key(m, f, said),
    }
}

/// What both NoCredentials findings say about the presented certificate.
struct NoCredentialsText {
    /// Why the presented certificate has no key: the listing lines that show it.
    proof: String,
    /// The subject it was chosen by.
    subject: String,
    /// The queue's LastError, quoted (or the canned `421 4.4.1 Connection timed out`).
    queue_phrase: String,
    /// The `HasPrivateKey False` line of the certificate provider listing.
    keyless_line: Option<Ev>,
}

/// cert-keyless-duplicate: the transport took the key-less one of two certificates with the same
/// issuer and subject; `t2` is the keyed twin.
fn keyless_duplicate(
    mut f: CredentialFailure<'_, '_>,
    t2: &StoreCert,
    said: NoCredentialsText,
) -> Draft {
    let mut d = f.draft(FindingId::CertKeylessDuplicate);
    let thumb = f.thumb.as_str();
    d.evidence.push_opt(said.keyless_line);
    if let Some(t) = f.store_t {
        d.evidence.push_opt(t.ev());
    }
    d.evidence.push_opt(t2.ev());
    d.evidence.push_opt(f.tls_name_ev.take());
    d.evidence.extend(std::mem::take(&mut f.queue_ev));
    d.explanation = format!(
        "The send connector \"{cname}\" asks for its certificate by issuer and subject \
         (TlsCertificateName), not by thumbprint. Two certificates in Cert:\\LocalMachine\\My carry \
         that issuer and subject ({subject}): {t2} with its private key (the one Get-ExchangeCertificate \
         shows) and {thumb} without one ({proof}), typically a re-issued or re-imported .cer. The \
         transport took {thumb}, the first match; without a private key SChannel cannot complete the \
         handshake (TLS negotiation failed with error NoCredentials, {sessions}, the last at {last}) and \
         Exchange records the failure as {queue_phrase} although nothing timed out. \
         Get-ExchangeCertificate lists only certificates with a key, which is why it looks \
         absent. Remove {thumb}; the transport then finds {t2}. Never remove {t2}.",
        cname = f.cname,
        subject = said.subject,
        proof = said.proof,
        last = f.last,
        queue_phrase = said.queue_phrase,
        t2 = t2.thumbprint,
        sessions = f.count(),
    );
    let mut fix = fill(FIX_KEYLESS, &[("KEYLESS_THUMBPRINT", thumb)]);
    if f.connector.is_some_and(|c| c.frontend_proxy()) {
        let at = fix
            .iter()
            .position(|l| l.starts_with("Restart-Service MSExchangeTransport"))
            .map_or(fix.len(), |i| i + 1);
        fix.insert(
            at,
            "Restart-Service MSExchangeFrontEndTransport".to_string(),
        );
    }
    d.fix = fix;
    d
}

/// cert-missing-private-key: the only certificate with that issuer and subject has no key.
fn missing_private_key(
    m: &Model<'_>,
    mut f: CredentialFailure<'_, '_>,
    said: NoCredentialsText,
) -> Draft {
    let mut d = f.draft(FindingId::CertMissingPrivateKey);
    d.evidence.push_opt(said.keyless_line);
    if let Some(t) = f.store_t {
        d.evidence.push_opt(t.ev());
    }
    d.evidence.push_opt(f.tls_name_ev.take());
    d.evidence.extend(std::mem::take(&mut f.queue_ev));
    let serial = f
        .logged
        .map(|c| c.serial.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| f.store_t.and_then(|t| t.serial.clone()))
        .unwrap_or_else(|| "<SERIAL>".to_string());
    let t = f.thumb_or_placeholder();
    let partial = !f.store.provider_listed;
    let only = if partial {
        "No listing here shows another certificate with the same issuer and subject, but only \
         Get-ChildItem Cert:\\LocalMachine\\My lists key-less certificates, and it was not collected: a \
         key-less twin of a keyed certificate (cert-keyless-duplicate, where the fix is removing this one) \
         cannot be ruled out. Collect that listing before repairing anything."
    } else {
        "No other time-valid certificate with the same issuer and subject has a key, so removing it \
         would not help: it is the only one. Re-attach the key or import the PFX with the key."
    };
    d.explanation = format!(
        "The send connector \"{cname}\"{on} presents certificate {t} ({subject}), and SChannel fails with \
         NoCredentials ({sessions}, the last at {last}): the certificate is installed without its private \
         key ({proof}), typically a .cer imported on this server while the request was completed on \
         another one, or the key was deleted. {only} The queue shows {queue_phrase}, a misleading timeout.",
        cname = f.cname,
        on = m.on_server(f.server.as_deref()),
        subject = said.subject,
        proof = said.proof,
        last = f.last,
        queue_phrase = said.queue_phrase,
        sessions = f.count(),
    );
    let server = m.server_name_for(f.server.as_deref());
    d.fix = fill(
        FIX_MISSING_KEY,
        &[("SERIAL", &serial), ("THUMBPRINT", &t), ("SERVER", &server)],
    );
    if partial {
        let subject = f.ident.as_ref().map_or("<SUBJECT>", |i| i.subject.as_str());
        let mut first = vec![
            "# first: list every certificate with that subject (key-less ones included)"
                .to_string(),
            format!(
                "Get-ChildItem Cert:\\LocalMachine\\My | Where-Object {{ $_.Subject -eq '{subject}' }} | Format-List Thumbprint,Issuer,HasPrivateKey,NotBefore,NotAfter"
            ),
            format!(
                "# if another one has HasPrivateKey True: remove {t} instead (Get-ChildItem Cert:\\LocalMachine\\My\\{t} | Remove-Item; Restart-Service MSExchangeTransport); otherwise:"
            ),
        ];
        first.append(&mut d.fix);
        d.fix = first;
    }
    d
}

/// cert-invisible-to-ems: a presented thumbprint that Get-ExchangeCertificate does not list.
pub(super) fn invisible_to_ems(m: &Model<'_>) -> Vec<Draft> {
    if !m.store.ems_listed {
        return Vec::new();
    }
    let mut by_thumb: BTreeMap<String, Vec<(&SessionView<'_>, usize)>> = BTreeMap::new();
    for s in &m.sessions {
        if let Some(ci) = s.sending_cert
            && let Some(c) = s.cert(ci)
        {
            if c.thumbprint.trim().is_empty()
                || m.store.get(&c.thumbprint).is_some_and(|x| x.in_ems)
            {
                continue;
            }
            let t = norm_thumb(&c.thumbprint);
            by_thumb.entry(t).or_default().push((s, ci));
        }
    }
    let mut out = Vec::new();
    for (t, mut v) in by_thumb {
        v.sort_by_key(|(s, ci)| std::cmp::Reverse(s.at(*ci)));
        let (s0, c0) = v[0];
        let subject = s0.cert(c0).map_or("", |c| c.subject.as_str()).to_string();
        let mut connectors: Vec<String> = v
            .iter()
            .map(|(s, _)| {
                m.connector_of(s)
                    .map_or_else(|| s.ps.session.connector_id.clone(), |c| c.name.clone())
            })
            .collect();
        connectors.dedup();
        let mut d = Draft::new(FindingId::CertInvisibleToEms, t.clone());
        d.connector = s0.connector;
        d.sessions = v.iter().map(|(s, _)| s.id().to_string()).collect();
        for (k, (s, ci)) in v.iter().take(MAX_OCCURRENCES).enumerate() {
            d.occurrence(k, s.thumbprint_ev(*ci));
        }
        let store_t = m.store.get(&t);
        let confirm = match store_t {
            Some(x) if x.is_keyless() => {
                d.evidence.push_opt(x.ev_key.clone());
                " The certificate provider listing confirms it: HasPrivateKey False."
            }
            _ => "",
        };
        d.explanation = format!(
            "The send log shows the transport presenting {t} ({subject}) in {} of \"{}\", but the \
             Get-ExchangeCertificate listing does not contain it. Get-ExchangeCertificate lists only certificates \
             that have a private key, so this certificate most likely has none.{confirm} By itself this does not \
             say why mail fails; look at the certificate findings next to it.",
            count(v.len(), "session"),
            connectors.join("\", \""),
        );
        d.fix = fill(FIX_INVISIBLE, &[("THUMBPRINT", &t)]);
        out.push(d);
    }
    out
}

const FIX_KEYLESS: &str = "# optional: keep a copy of the key-less certificate before removing it
Export-Certificate -Cert Cert:\\LocalMachine\\My\\<KEYLESS_THUMBPRINT> -FilePath C:\\Temp\\<KEYLESS_THUMBPRINT>.cer
Get-ChildItem Cert:\\LocalMachine\\My\\<KEYLESS_THUMBPRINT> | Remove-Item
Restart-Service MSExchangeTransport
Get-Queue | Where Status -eq Retry | Retry-Queue";

const FIX_MISSING_KEY: &str = "# if the key is still in this server's key store, re-attach it (the serial number is in the evidence)
certutil -repairstore My <SERIAL>
Get-ChildItem Cert:\\LocalMachine\\My\\<THUMBPRINT> | Format-List Subject,Thumbprint,HasPrivateKey
# otherwise import the PFX (with key) exported from the server where the request was completed
Import-ExchangeCertificate -Server <SERVER> -FileData ([System.IO.File]::ReadAllBytes('\\\\<SERVER>\\c$\\Temp\\certificate.pfx')) -Password (Read-Host 'PFX password' -AsSecureString)
# let the transport read the key; answer N to \"overwrite the existing default SMTP certificate?\"
Enable-ExchangeCertificate -Server <SERVER> -Thumbprint <THUMBPRINT> -Services SMTP
Restart-Service MSExchangeTransport
Get-Queue | Where Status -eq Retry | Retry-Queue";

const FIX_KEY_INACCESSIBLE: &str = "# answer N when asked to overwrite the existing default SMTP certificate
Enable-ExchangeCertificate -Thumbprint <THUMBPRINT> -Services SMTP
Restart-Service MSExchangeTransport
Get-Queue | Where Status -eq Retry | Retry-Queue
# if it still fails, the key is in a CNG provider: re-import the PFX into the legacy SChannel provider
# certutil -csp \"Microsoft RSA SChannel Cryptographic Provider\" -importpfx My C:\\Temp\\certificate.pfx";

const FIX_INVISIBLE: &str = "Get-ChildItem Cert:\\LocalMachine\\My | Format-List Subject,Issuer,Thumbprint,HasPrivateKey,NotAfter
certutil -store My <THUMBPRINT>";
