//! A self-contained SVG sequence diagram of a replay: the on-premises sender, a firewall lane when
//! an ESMTP-inspecting device is part of the scenario, and the mock EOP; an arrow per command and
//! reply, a box for the TLS handshake, the failure in red, and the queue's LastError (or the
//! delivery) as a note at the bottom. Plain SVG text, no external resources.

use std::fmt::Write as _;

use mock_eop::fault::FaultAction;

use super::explain::pair_sessions;
use crate::scenario::Scenario;
use crate::scenario::runner::Replay;
use hybridlab_artefacts::protocol_log::{CertRole, SessionEvent};
use hybridlab_onprem::sender::SessionReport;

/// Escapes text for SVG (XML) content and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let t: String = s.chars().take(n.saturating_sub(1)).collect();
        format!("{t}…")
    }
}

pub(crate) const W: i32 = 1000;
pub(crate) const ROW: i32 = 24;
pub(crate) const RED: &str = "#c62828";
pub(crate) const GREEN: &str = "#2e7d32";
pub(crate) const INK: &str = "#263238";
pub(crate) const GREY: &str = "#78909c";

pub(crate) struct Canvas {
    pub(crate) body: String,
    pub(crate) y: i32,
    pub(crate) left: i32,
    pub(crate) mid: Option<i32>,
    pub(crate) right: i32,
}

impl Canvas {
    pub(crate) fn text(&mut self, x: i32, y: i32, anchor: &str, color: &str, size: i32, s: &str) {
        let _ = writeln!(
            self.body,
            r#"<text x="{x}" y="{y}" text-anchor="{anchor}" fill="{color}" font-size="{size}">{}</text>"#,
            xml_escape(s)
        );
    }

    pub(crate) fn arrow(&mut self, from: i32, to: i32, label: &str, color: &str) {
        let y = self.y;
        let _ = writeln!(
            self.body,
            r#"<line x1="{from}" y1="{y}" x2="{to}" y2="{y}" stroke="{color}" stroke-width="1.5" marker-end="url(#{})"/>"#,
            if color == RED { "headred" } else { "head" }
        );
        let x = (from + to) / 2;
        let room = ((from - to).unsigned_abs() / 7).max(12) as usize;
        self.text(x, y - 5, "middle", color, 12, &clip(label, room));
        self.y += ROW;
    }

    pub(crate) fn note(&mut self, x: i32, w: i32, label: &str, stroke: &str, fill: &str) {
        let y = self.y - 14;
        let _ = writeln!(
            self.body,
            r#"<rect x="{}" y="{y}" width="{w}" height="20" rx="3" fill="{fill}" stroke="{stroke}"/>"#,
            x - w / 2
        );
        self.text(
            x,
            y + 14,
            "middle",
            stroke,
            11,
            &clip(label, (w / 6) as usize),
        );
        self.y += ROW;
    }

    pub(crate) fn band(&mut self, label: &str) {
        let y = self.y - 10;
        let _ = writeln!(
            self.body,
            r##"<line x1="20" y1="{y}" x2="{}" y2="{y}" stroke="#b0bec5" stroke-dasharray="2 3"/>"##,
            W - 20
        );
        self.text(24, y + 14, "start", GREY, 11, label);
        self.y += ROW;
    }
}

fn session(c: &mut Canvas, rep: &Replay, s: &SessionReport, masked: bool) {
    let (l, r) = (c.left, c.right);
    let mut in_handshake = false;
    for e in &s.log.events {
        match &e.event {
            SessionEvent::AttemptingConnect => {}
            SessionEvent::Connected => c.arrow(l, r, "TCP connect", INK),
            SessionEvent::Sent { line } => {
                let color = if line.starts_with("STARTTLS") {
                    "#1565c0"
                } else {
                    INK
                };
                c.arrow(l, r, line, color);
                if line.starts_with("STARTTLS") {
                    in_handshake = true;
                }
            }
            SessionEvent::Received { reply } => {
                let text = reply.exchange_log_text();
                let bad = reply.code >= 400;
                let rewritten = masked && (text.contains("XXXXXXX") || text.contains("****"));
                if rewritten && let Some(m) = c.mid {
                    c.arrow(r, m, "EOP's reply", INK);
                    let what = if text.contains("XXXXXXX") {
                        "rewritten: EHLO reply with XXXXXXXA where STARTTLS was".to_string()
                    } else if text.contains("****") {
                        "rewritten: banner masked (220 ****...)".to_string()
                    } else {
                        format!("rewritten: {text}")
                    };
                    c.arrow(m, l, &what, RED);
                } else {
                    c.arrow(r, l, &text, if bad { RED } else { INK });
                }
            }
            SessionEvent::ReceivedLine { line } => c.arrow(r, l, line, RED),
            SessionEvent::Certificate { role, cert } => {
                let who = match role {
                    CertRole::Sending => l + 170,
                    _ => r - 170,
                };
                let short = &cert.thumbprint[..8.min(cert.thumbprint.len())];
                let known = rep
                    .certificates
                    .iter()
                    .find(|x| x.facts.thumbprint == cert.thumbprint);
                let label = match (role, known) {
                    (CertRole::Sending, Some(x)) => format!(
                        "Sending certificate '{}' {short}… ({})",
                        x.name,
                        if !x.has_private_key {
                            "NO private key"
                        } else if !x.key_readable {
                            "key not readable"
                        } else {
                            "with key"
                        }
                    ),
                    _ => format!(
                        "{}: {} {short}…",
                        role.log_text(),
                        cert.common_names
                            .first()
                            .map(String::as_str)
                            .unwrap_or(&cert.subject)
                    ),
                };
                let bad = label.contains("NO private key") || label.contains("not readable");
                c.note(
                    who,
                    330,
                    &label,
                    if bad { RED } else { "#5d4037" },
                    if bad { "#ffebee" } else { "#efebe9" },
                );
            }
            SessionEvent::TlsNegotiated { text } => {
                let _ = text;
                let proto = text.split_whitespace().nth(2).unwrap_or("TLS");
                c.note(
                    (l + r) / 2,
                    r - l - 40,
                    &format!("TLS handshake completed ({proto})"),
                    GREEN,
                    "#e8f5e9",
                );
                in_handshake = false;
            }
            SessionEvent::TlsFailed { status } => {
                let x = if status.is_local() {
                    l + 150
                } else {
                    (l + r) / 2
                };
                let w = if status.is_local() { 290 } else { r - l - 40 };
                c.note(x, w, &status.log_text(), RED, "#ffebee");
                in_handshake = false;
            }
            SessionEvent::Info { context, .. } => {
                if context.contains("failed") {
                    c.note(l + 150, 290, context, RED, "#ffebee");
                }
            }
            SessionEvent::Disconnected { reason } => {
                let local = matches!(reason, hybridlab_model::exchange::DisconnectReason::Local);
                let failed = s.failure.is_some();
                c.note(
                    l,
                    150,
                    &format!("disconnect ({reason})"),
                    if failed || !local { RED } else { GREY },
                    "#fafafa",
                );
            }
        }
    }
    if in_handshake {
        c.note(
            (l + r) / 2,
            r - l - 40,
            "TLS handshake did not complete",
            RED,
            "#ffebee",
        );
    }
}

/// The sequence diagram of `r` as SVG text.
pub fn sequence_svg(s: &Scenario, r: &Replay) -> String {
    let masked = s.faults.iter().any(|f| {
        matches!(
            f.action,
            FaultAction::MaskStarttls | FaultAction::OmitStarttls
        )
    });
    let mut c = Canvas {
        body: String::new(),
        y: 110,
        left: 170,
        mid: masked.then_some(W / 2),
        right: W - 170,
    };
    let pairs = pair_sessions(r);
    let n = pairs.len();
    for (i, (sess, _)) in pairs.iter().enumerate() {
        if n > 2 && i > 0 && i + 1 < n {
            if i == 1 {
                c.band(&format!("… attempts 2 to {} went the same way …", n - 1));
            }
            continue;
        }
        let at = sess.log.events.first().map(|e| e.at).unwrap_or(r.start);
        let days = (at.date() - r.start.date()).whole_days();
        c.band(&format!(
            "attempt {} of {n} at {}{:02}:{:02}:{:02} to {} [{}]",
            i + 1,
            if days > 0 {
                format!("+{days}d ")
            } else {
                String::new()
            },
            at.hour(),
            at.minute(),
            at.second(),
            sess.target.host,
            sess.log.remote
        ));
        session(&mut c, r, sess, masked);
    }
    if n == 0 {
        c.band("no delivery attempt");
    }
    // the bottom note
    c.y += 6;
    let (label, stroke, fill) = match (r.last_error(), r.queue.message_count, r.ndrs().first()) {
        (Some(le), q, _) if q > 0 => (
            format!(
                "Queue {} {}: LastError {}",
                r.queue.identity, r.queue.status, le.led
            ),
            RED,
            "#ffebee",
        ),
        (_, _, Some(ndr)) => (format!("NDR: {}", ndr.one_line()), RED, "#ffebee"),
        _ => {
            let v = r
                .last_verdict()
                .map(|v| format!(" (EOP: {v})"))
                .unwrap_or_default();
            let color = if matches!(
                r.last_verdict(),
                Some(hybridlab_model::attribution::AttributionVerdict::Attributed { .. })
            ) {
                GREEN
            } else {
                "#ef6c00"
            };
            (format!("{} delivered{v}", r.delivered()), color, "#f1f8e9")
        }
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
    let title = format!("{}: {}", s.scenario.id, s.scenario.title);
    let _ = writeln!(
        out,
        r#"<text x="20" y="24" font-size="15" font-weight="bold" fill="{INK}">{}</text>"#,
        xml_escape(&clip(&title, 105))
    );
    let mut lanes = vec![(
        c.left,
        format!("{} (on-premises)", r.server.name),
        format!("{} from {}", r.server.fqdn, s.onprem.source_address),
    )];
    if let Some(m) = c.mid {
        lanes.push((m, "firewall".into(), "ESMTP inspection".into()));
    }
    lanes.push((
        c.right,
        "EOP (mock)".into(),
        clip(&s.eop.endpoint.hostname, 40),
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
            xml_escape(name)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_xml() {
        assert_eq!(
            xml_escape(r#"<I>CN=a & "b"<S>'c'"#),
            "&lt;I&gt;CN=a &amp; &quot;b&quot;&lt;S&gt;&apos;c&apos;"
        );
        assert_eq!(xml_escape("a\u{1}b"), "a b");
        assert_eq!(clip("abcdef", 4), "abc…");
    }
}
