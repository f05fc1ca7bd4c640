//! The checks serde cannot do: one per concern (TLS and limits, the server certificate, each
//! tenant, each connector), each naming the key at fault by its path under `[eop]`.

use super::{ConnectorType, EopConfig, InboundConnector, Invalid, Tenant};

impl EopConfig {
    /// Cross-field checks serde cannot do: unique names, at least one TLS version, a connector
    /// that can be matched at all, sane limits.
    ///
    /// # Errors
    /// The first check that fails, with the path of the key concerned (relative to `[eop]`).
    pub fn validate(&self) -> Result<(), Invalid> {
        self.validate_tls_and_limits()?;
        // (tenant, domain) of every accepted domain so far: a domain belongs to one tenant.
        let mut domains: Vec<(&str, &str)> = Vec::new();
        for (ti, t) in self.tenants.iter().enumerate() {
            validate_tenant(
                t,
                &self.tenants[..ti],
                &format!("tenants[{ti}]"),
                &mut domains,
            )?;
        }
        Ok(())
    }

    fn validate_tls_and_limits(&self) -> Result<(), Invalid> {
        if !self.tls.tls12 && !self.tls.tls13 {
            return Err(Invalid::new(
                "tls.tls13",
                "at least one of tls12 and tls13 must be enabled",
            ));
        }
        if self.limits.max_line_length < 64 {
            return Err(Invalid::new(
                "limits.max_line_length",
                "must be at least 64 bytes",
            ));
        }
        let e = &self.endpoint;
        for (key, v) in [
            ("endpoint.hostname", &e.hostname),
            ("endpoint.backend_host", &e.backend_host),
            ("endpoint.reject_host", &e.reject_host),
            ("endpoint.region", &e.region),
        ] {
            if v.chars().any(char::is_control) || v.contains(' ') {
                return Err(Invalid::new(
                    key,
                    format!("{v:?} holds a space or a control character (it goes into replies)"),
                ));
            }
        }
        let l = &self.limits;
        let spans = [
            ("limits.idle_timeout", Some(l.idle_timeout)),
            ("limits.session_timeout", l.session_timeout),
            ("limits.shutdown_grace", Some(l.shutdown_grace)),
            ("tls.handshake_timeout", Some(self.tls.handshake_timeout)),
        ];
        for (key, span) in spans {
            if let Some(s) = span
                && s.0 > super::MAX_DURATION
            {
                return Err(Invalid::new(
                    key,
                    format!("{s} is longer than the longest duration the mock takes (365 days)"),
                ));
            }
        }
        if l.max_sessions == 0 || l.max_sessions_per_ip == 0 {
            return Err(Invalid::new(
                "limits.max_sessions",
                "max_sessions and max_sessions_per_ip must be at least 1",
            ));
        }
        if l.max_transcript_bytes < 1024 {
            return Err(Invalid::new(
                "limits.max_transcript_bytes",
                "must be at least 1024 bytes",
            ));
        }
        if self.limits.idle_timeout.0.is_zero() {
            return Err(Invalid::new(
                "limits.idle_timeout",
                "must be more than zero",
            ));
        }
        let sc = &self.tls.server_certificate;
        if sc.not_after_days <= sc.not_before_days {
            return Err(Invalid::new(
                "tls.server_certificate.not_after_days",
                "must be later than not_before_days",
            ));
        }
        if sc.cert_file.is_some() != sc.key_file.is_some() {
            return Err(Invalid::new(
                "tls.server_certificate.cert_file",
                "cert_file and key_file go together",
            ));
        }
        Ok(())
    }
}

/// One tenant at path `tp`: a name none of the `earlier` tenants has, accepted domains that are
/// domains and belong to no other tenant (`domains` collects them), connectors with unique names
/// that can be matched.
fn validate_tenant<'a>(
    t: &'a Tenant,
    earlier: &[Tenant],
    tp: &str,
    domains: &mut Vec<(&'a str, &'a str)>,
) -> Result<(), Invalid> {
    if t.name.trim().is_empty() {
        return Err(Invalid::new(format!("{tp}.name"), "must not be empty"));
    }
    if earlier.iter().any(|o| o.name.eq_ignore_ascii_case(&t.name)) {
        return Err(Invalid::new(
            format!("{tp}.name"),
            format!("duplicate tenant name {:?}", t.name),
        ));
    }
    for (di, d) in t.accepted_domains.iter().enumerate() {
        let path = format!("{tp}.accepted_domains[{di}].domain");
        if !is_domain(&d.domain) {
            return Err(Invalid::new(
                path,
                format!("{:?} is not a domain name", d.domain),
            ));
        }
        if let Some((owner, _)) = domains
            .iter()
            .find(|(_, dom)| dom.eq_ignore_ascii_case(&d.domain))
        {
            return Err(Invalid::new(
                path,
                format!(
                    "{:?} is already an accepted domain of tenant {owner:?}",
                    d.domain
                ),
            ));
        }
        domains.push((&t.name, &d.domain));
    }
    crate::exo::validate_outbound_connectors(t, tp)?;
    for (ci, c) in t.inbound_connectors.iter().enumerate() {
        let cp = format!("{tp}.inbound_connectors[{ci}]");
        validate_connector(c, &t.inbound_connectors[..ci], &t.name, &cp)?;
    }
    Ok(())
}

/// One inbound connector of tenant `tenant` at path `cp`: what Exchange Online's
/// New-InboundConnector would refuse, and a name none of the tenant's `earlier` connectors has.
fn validate_connector(
    c: &InboundConnector,
    earlier: &[InboundConnector],
    tenant: &str,
    cp: &str,
) -> Result<(), Invalid> {
    let err = |key: &str, message: String| Err(Invalid::new(format!("{cp}.{key}"), message));
    if c.name.trim().is_empty() {
        return err("name", "must not be empty".into());
    }
    if earlier.iter().any(|o| o.name.eq_ignore_ascii_case(&c.name)) {
        return err(
            "name",
            format!("duplicate connector name {:?} in tenant {tenant:?}", c.name),
        );
    }
    if let Some(n) = &c.tls_sender_certificate_name {
        let bare = n.strip_prefix("*.").unwrap_or(n);
        if !is_domain(bare) {
            return err(
                "tls_sender_certificate_name",
                format!("{n:?} is not a domain or *.domain"),
            );
        }
    }
    if c.tls_sender_certificate_name.is_none() && c.sender_ip_addresses.is_empty() {
        return err(
            "tls_sender_certificate_name",
            "a connector needs tls_sender_certificate_name or sender_ip_addresses \
             (Exchange Online refuses one with neither)"
                .into(),
        );
    }
    if c.connector_type == ConnectorType::OnPremises
        && (c.restrict_domains_to_certificate || c.restrict_domains_to_ip_addresses)
    {
        return err(
            "restrict_domains_to_certificate",
            "RestrictDomainsTo* apply to Partner connectors only".into(),
        );
    }
    if c.restrict_domains_to_certificate && c.tls_sender_certificate_name.is_none() {
        return err(
            "restrict_domains_to_certificate",
            "needs tls_sender_certificate_name".into(),
        );
    }
    if c.restrict_domains_to_ip_addresses && c.sender_ip_addresses.is_empty() {
        return err(
            "restrict_domains_to_ip_addresses",
            "needs sender_ip_addresses".into(),
        );
    }
    for (si, s) in c.sender_domains.iter().enumerate() {
        if s.0 != "*" && !is_domain(s.0.strip_prefix("*.").unwrap_or(&s.0)) {
            return err(
                &format!("sender_domains[{si}]"),
                format!("{:?} is not *, a domain or *.domain", s.0),
            );
        }
    }
    Ok(())
}

/// Whether `s` is a DNS name: labels of letters, digits, `-` and `_`, at most 63 bytes each,
/// 253 in all.
fn is_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}
