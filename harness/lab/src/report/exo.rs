//! Reports of the Exchange Online -> on-premises direction: the narration (`hybridlab explain`,
//! `transcript.txt`), the sequence diagram with Exchange Online on the left, and the output
//! folder of `hybridlab run --out`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hybridlab_model::delivery::{DeliveryAttempt, Direction};

use super::explain::{Style, day_hms, expectations_section, title, wrap_words};
use super::svg::{Canvas, GREEN, GREY, INK, RED, W, clip, xml_escape};
use crate::scenario::exo::ExoReplay;
use crate::scenario::{Check, Scenario};

/// Writes every file of `r` (and the narration and `svg`) into `dir`; gives the files written.
///
/// # Errors
/// A file cannot be written.
pub fn write_scenario_dir(
    dir: &Path,
    s: &Scenario,
    r: &ExoReplay,
    svg: &str,
) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut put = |name: &str, text: &str| -> std::io::Result<()> {
        let p = dir.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, text)?;
        written.push(p);
        Ok(())
    };
    for f in &r.files {
        put(&f.name, &f.content)?;
    }
    put("transcript.txt", &narrate(s, r, &[], &Style::plain()))?;
    put("sequence.svg", svg)?;
    Ok(written)
}

/// The narration, ending with the expectation checks when given.
pub fn narrate(s: &Scenario, r: &ExoReplay, checks: &[Check], st: &Style) -> String {
    let mut o = String::new();
    title(&mut o, s, st);
    sender_section(&mut o, s, r, st);
    receive_section(&mut o, s, r, st);
    attempts_section(&mut o, r, st);
    admin_section(&mut o, r, st);
    diagnosis_section(&mut o, s, r, st);
    if !checks.is_empty() {
        expectations_section(&mut o, checks, st);
    }
    o
}

fn sender_section(o: &mut String, s: &Scenario, r: &ExoReplay, st: &Style) {
    let _ = writeln!(o, "\n{}", st.bold("1. Exchange Online (the sender)"));
    let _ = writeln!(
        o,
        "  tenant {}; sessions from {}; client certificate {} (issuer {})",
        r.tenant.initial_domain(),
        s.exo
            .sources
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        r.exo_certificate.subject,
        r.exo_certificate.issuer
    );
    for c in &r.tenant.outbound_connectors {
        let _ = writeln!(
            o,
            "  Outbound connector \"{}\": {} TlsSettings={} TlsDomain={} RecipientDomains={} CloudServicesMailEnabled={}",
            c.name,
            if c.use_mx_record {
                "UseMXRecord".to_string()
            } else {
                format!(
                    "SmartHosts={}",
                    c.smart_hosts
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                )
            },
            c.tls_settings,
            c.tls_domain.as_deref().unwrap_or("-"),
            c.recipient_domains
                .iter()
                .map(|d| d.0.as_str())
                .collect::<Vec<_>>()
                .join(","),
            c.cloud_services_mail_enabled
        );
    }
    let d = &s.eop.delivery;
    let _ = writeln!(
        o,
        "  retries: first after {}, then every {}; expiry after {}",
        d.first_retry, d.retry_interval, d.expiry
    );
}

fn receive_section(o: &mut String, s: &Scenario, r: &ExoReplay, st: &Style) {
    let _ = writeln!(o, "\n{}", st.bold("2. The on-premises receive side"));
    if let Some(rs) = &s.receive {
        let p = &rs.perimeter;
        let mut parts = Vec::new();
        if !p.allow.is_empty() {
            parts.push(format!(
                "firewall allow-list {} (others {})",
                p.allow
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                super::words::refusal(p.refusal)
            ));
        }
        if let Some(n) = p.nat {
            parts.push(format!("source NAT to {n}"));
        }
        if p.smtp_inspection {
            parts.push("SMTP inspection (masks STARTTLS)".into());
        }
        if let (Some(d), Some(c)) = (&p.tls_device, &r.device_certificate) {
            parts.push(format!(
                "TLS-terminating device {} presenting {} (thumbprint {}, valid until {})",
                d.hostname,
                c.subject,
                c.thumbprint,
                c.not_after.date()
            ));
        }
        if !parts.is_empty() {
            let _ = writeln!(o, "  perimeter: {}", parts.join("; "));
        }
        let _ = writeln!(o, "  mail.contoso.com resolves to {}", rs.address);
    }
    for sv in &r.servers {
        let _ = writeln!(o, "  {} ({})", st.bold(&sv.name), sv.fqdn);
        for e in sv.store.my() {
            let _ = writeln!(
                o,
                "    #{} {:<12} {} | issuer {} | {} .. {} | {}",
                e.enumeration_index,
                e.name,
                e.facts.subject,
                e.facts.issuer,
                e.facts.not_before.date(),
                e.facts.not_after.date(),
                st.dim(&e.facts.thumbprint)
            );
        }
        for c in &sv.connectors {
            let _ = writeln!(
                o,
                "    \"{}\": Fqdn={} RequireTLS={} TlsCertificateName={} TlsDomainCapabilities={}",
                c.name,
                c.fqdn.as_deref().unwrap_or("-"),
                c.require_tls,
                c.tls_certificate_name
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "(empty)".into()),
                if c.tls_domain_capabilities.is_empty() {
                    "(empty)".to_string()
                } else {
                    c.tls_domain_capabilities
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                }
            );
        }
        for (name, story, cert) in &sv.selections {
            let verdict = match cert {
                Some(c) => st.green(&format!("STARTTLS with {} ({})", c.subject, c.thumbprint)),
                None => st.red("no certificate: STARTTLS is not offered"),
            };
            let _ = writeln!(o, "    selection for {name}: {verdict}");
            for l in story {
                let _ = writeln!(o, "      {}", st.dim(l));
            }
        }
    }
    for (server, e) in &r.site.events {
        let _ = writeln!(
            o,
            "  event {} {} on {server}: {}",
            e.id,
            e.level,
            clip(e.message.lines().next().unwrap_or(""), 110)
        );
    }
}

fn attempt_lines(o: &mut String, r: &ExoReplay, a: &DeliveryAttempt, st: &Style) {
    let src = a.source.map(|s| s.ip().to_string()).unwrap_or("-".into());
    let _ = writeln!(
        o,
        "  {} attempt {} from {src} to {} ({})",
        st.dim(&day_hms(r.start, a.started)),
        a.number,
        a.target_host,
        a.target.map(|t| t.to_string()).unwrap_or("-".into())
    );
    for l in &a.transcript {
        let who = match l.direction {
            Direction::Sent => st.cyan("EXO ->"),
            Direction::Received => st.yellow("<- on-prem"),
            Direction::Info => st.dim("   *"),
        };
        let _ = writeln!(o, "      {who} {}", l.text);
    }
    match &a.outcome {
        o2 if o2.is_delivered() => {
            let _ = writeln!(o, "      {}", st.green("delivered"));
        }
        other => {
            if let Some(led) = other.led() {
                let _ = writeln!(o, "      {} {}", st.red("LED"), led);
            }
        }
    }
}

fn attempts_section(o: &mut String, r: &ExoReplay, st: &Style) {
    let _ = writeln!(
        o,
        "\n{}",
        st.bold("3. Delivery attempts (Exchange Online's side)")
    );
    for d in &r.records {
        let _ = writeln!(
            o,
            "  message {} to {}: {}",
            d.trace.message_id, d.trace.recipient_address, d.trace.status
        );
        let n = d.attempts.len();
        for (i, a) in d.attempts.iter().enumerate() {
            if n > 3 && i > 0 && i + 1 < n {
                if i == 1 {
                    let _ = writeln!(
                        o,
                        "  {}",
                        st.dim(&format!("... attempts 2 to {} ...", n - 1))
                    );
                }
                continue;
            }
            attempt_lines(o, r, a, st);
        }
    }
    for x in &r.site.refused {
        let _ = writeln!(
            o,
            "  {} refused {} ({})",
            st.dim(&day_hms(r.start, x.at)),
            x.peer,
            x.reason
        );
    }
    for m in &r.site.messages {
        let _ = writeln!(
            o,
            "  on {}: accepted {} from {} (cross-premises headers {})",
            m.server,
            m.message_id,
            m.peer,
            super::words::cross_premises(m.cross_premises)
        );
    }
}

fn admin_section(o: &mut String, r: &ExoReplay, st: &Style) {
    let _ = writeln!(o, "\n{}", st.bold("4. What the admins see"));
    for (at, cmd) in &r.admin {
        let _ = writeln!(o, "  {} admin: {}", st.dim(&day_hms(r.start, *at)), cmd);
    }
    for (i, d) in r.records.iter().enumerate() {
        let defers = d
            .trace
            .events
            .iter()
            .filter(|e| e.event == hybridlab_model::trace::TraceEventKind::Defer)
            .count();
        let _ = writeln!(
            o,
            "  Get-MessageTrace {}: Status {} ({defers} Defer events)",
            d.trace.recipient_address, d.trace.status
        );
        if i == 0
            && let Some(reason) = d.trace.last_reason()
        {
            let _ = writeln!(o, "  Get-MessageTraceDetail, last reason:");
            for l in wrap_words(&reason.to_string(), 96) {
                let _ = writeln!(o, "    {l}");
            }
        }
    }
    let _ = writeln!(o, "  {}", crate::scenario::exo_admin_sees(r));
}

fn diagnosis_section(o: &mut String, s: &Scenario, r: &ExoReplay, st: &Style) {
    let _ = writeln!(o, "\n{}", st.bold("5. Diagnosis"));
    match r.diagnosis.top() {
        Some(f) => {
            let _ = writeln!(
                o,
                "  {} {}: {}",
                st.red(f.severity.as_str()),
                st.bold(f.id.as_str()),
                f.title
            );
            for l in &f.fix {
                let _ = writeln!(o, "    fix: {}", st.bold(l));
            }
        }
        None => {
            let _ = writeln!(o, "  no findings on the files of both sides");
        }
    }
    if let Some(id) = &s.expect.top_finding
        && id.parse::<hybridlab_diagnose::FindingId>().is_err()
    {
        let _ = writeln!(
            o,
            "  {} the scenario expects {} (diagnosis pending: not in the catalogue yet)",
            st.yellow("~"),
            st.bold(id)
        );
    }
}

/// The sequence diagram: Exchange Online on the left, the perimeter in the middle when there is
/// one, the on-premises servers on the right; the first and last attempts of the message with
/// the most attempts.
pub fn sequence_svg(s: &Scenario, r: &ExoReplay) -> String {
    let p = s.receive.as_ref().map(|x| &x.perimeter);
    let mid_label = p.and_then(|p| {
        if let Some(d) = &p.tls_device {
            Some(("TLS device".to_string(), d.hostname.clone()))
        } else if p.smtp_inspection {
            Some(("firewall".into(), "ESMTP inspection".into()))
        } else if !p.allow.is_empty() || p.nat.is_some() {
            Some(("firewall".into(), "allow-list / NAT".into()))
        } else {
            None
        }
    });
    let mut c = Canvas {
        body: String::new(),
        y: 110,
        left: 170,
        mid: mid_label.as_ref().map(|_| W / 2),
        right: W - 170,
    };
    // the message that had the hardest time (the first one when all went alike)
    let attempts: Vec<&DeliveryAttempt> = r
        .records
        .iter()
        .rev()
        .max_by_key(|d| d.attempts.len())
        .map(|d| d.attempts.iter().collect())
        .unwrap_or_default();
    let n = attempts.len();
    for (i, a) in attempts.iter().enumerate() {
        if n > 2 && i > 0 && i + 1 < n {
            if i == 1 {
                c.band(&format!("… attempts 2 to {} went the same way …", n - 1));
            }
            continue;
        }
        c.band(&format!(
            "attempt {} of {n} at {} from {} to {}",
            i + 1,
            day_hms(r.start, a.started),
            a.source.map(|s| s.ip().to_string()).unwrap_or("-".into()),
            a.target_host
        ));
        for l in &a.transcript {
            match l.direction {
                Direction::Sent => c.arrow(c.left, c.right, &l.text, INK),
                Direction::Received => {
                    let color = if l.text.starts_with(['4', '5']) {
                        RED
                    } else {
                        INK
                    };
                    c.arrow(c.right, c.left, &l.text, color)
                }
                Direction::Info => c.note(c.left, 300, &l.text, GREY, "#fafafa"),
            }
        }
        if let Some(led) = a.outcome.led() {
            c.note(c.left + 150, 600, &led.to_string(), RED, "#ffebee");
        }
    }
    if n == 0 {
        c.band("no delivery attempt");
    }
    c.y += 6;
    let label = crate::scenario::exo_admin_sees(r);
    let ok = r.delivered() == r.records.len() && !r.records.is_empty();
    let (stroke, fill) = if ok {
        (GREEN, "#f1f8e9")
    } else {
        (RED, "#ffebee")
    };
    c.note(W / 2, W - 60, &label, stroke, fill);
    let height = c.y + 20;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" font-family="Segoe UI, Helvetica, Arial, sans-serif">"#
    );
    let _ = writeln!(
        out,
        r##"<defs><marker id="head" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#263238"/></marker><marker id="headred" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#c62828"/></marker></defs>"##
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let head = format!("{}: {}", s.scenario.id, s.scenario.title);
    let _ = writeln!(
        out,
        r#"<text x="20" y="24" font-size="15" font-weight="bold" fill="{INK}">{}</text>"#,
        xml_escape(&clip(&head, 105))
    );
    let servers: Vec<&str> = r.servers.iter().map(|s| s.name.as_str()).collect();
    let mut lanes = vec![(
        c.left,
        "Exchange Online".to_string(),
        clip(&r.tenant.initial_domain(), 40),
    )];
    if let (Some(m), Some((name, sub))) = (c.mid, mid_label) {
        lanes.push((m, name, sub));
    }
    lanes.push((
        c.right,
        format!("{} (on-premises)", servers.join(", ")),
        "mail.contoso.com".into(),
    ));
    for (x, name, sub) in &lanes {
        let _ = writeln!(
            out,
            r##"<rect x="{}" y="40" width="220" height="40" rx="4" fill="#eceff1" stroke="#90a4ae"/>"##,
            x - 110
        );
        let _ = writeln!(
            out,
            r#"<text x="{x}" y="57" text-anchor="middle" font-size="13" font-weight="bold" fill="{INK}">{}</text>"#,
            xml_escape(&clip(name, 30))
        );
        let _ = writeln!(
            out,
            r#"<text x="{x}" y="73" text-anchor="middle" font-size="11" fill="{GREY}">{}</text>"#,
            xml_escape(sub)
        );
        let _ = writeln!(
            out,
            r##"<line x1="{x}" y1="80" x2="{x}" y2="{}" stroke="#b0bec5" stroke-dasharray="4 4"/>"##,
            height - 40
        );
    }
    out.push_str(&c.body);
    out.push_str("</svg>\n");
    out
}
