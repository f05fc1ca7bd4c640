//! Validation of a deserialized scenario against the merged tree it came from, so that every
//! error points at the offending key: identity, the on-premises side, EOP and the faults, the
//! messages and the run, the `[[changes]]` ([`super::changes`]) and the expectations.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::locate::{ScenarioError, Seg, Sources, parse_path};
use super::preprocess::Preprocessed;
use crate::scenario::model::{Expectations, OnPrem, Scenario};
use hybridlab_onprem::certstore::AuthorityDescription;

/// Checks a scenario and locates what is wrong in the merged tree.
pub(super) struct Validator<'s, 't, 'i> {
    /// The chain's files, to turn spans into file, line and column.
    pub(super) sources: &'s Sources,
    /// The merged tree the scenario was read from.
    pub(super) tree: &'t DeTable<'i>,
}

impl Validator<'_, '_, '_> {
    /// The span of the deepest existing key along `path` (the key itself when it exists).
    pub(super) fn span_of(&self, path: &str) -> Option<Range<usize>> {
        let segs = parse_path(path);
        let mut best: Option<Range<usize>> = None;
        let mut table: Option<&DeTable<'_>> = Some(self.tree);
        let mut value: Option<&Spanned<DeValue<'_>>> = None;
        for seg in segs {
            match seg {
                Seg::Key(k) => {
                    let Some(t) = table else { break };
                    let Some((key, v)) = t.get_key_value(k.as_str()) else {
                        break;
                    };
                    best = Some(key.span());
                    value = Some(v);
                }
                Seg::Index(i) => {
                    let Some(DeValue::Array(a)) = value.map(|v| v.get_ref()) else {
                        break;
                    };
                    let Some(v) = a.get(i) else { break };
                    best = Some(v.span());
                    value = Some(v);
                }
            }
            table = match value.map(|v| v.get_ref()) {
                Some(DeValue::Table(t)) => Some(t),
                _ => None,
            };
        }
        best
    }

    /// The error for `message` at the key `path` (or the deepest part of it that exists).
    pub(super) fn err(&self, path: &str, message: impl Into<String>) -> ScenarioError {
        self.sources.error_span(self.span_of(path), message)
    }

    /// The value at a key path (`changes[1].set_send_connector`).
    pub(super) fn value_at(&self, path: &str) -> Option<&Spanned<DeValue<'_>>> {
        let mut value: Option<&Spanned<DeValue<'_>>> = None;
        let mut table: Option<&DeTable<'_>> = Some(self.tree);
        for seg in parse_path(path) {
            value = match seg {
                Seg::Key(k) => table?.get(k.as_str()),
                Seg::Index(i) => match value?.get_ref() {
                    DeValue::Array(a) => a.get(i),
                    _ => None,
                },
            };
            table = match value?.get_ref() {
                DeValue::Table(t) => Some(t),
                _ => None,
            };
        }
        value
    }

    /// Every check, in the order a reader meets the tables; the first problem is the error.
    /// Fills in what validation resolves (authority names, the connectors after each change).
    pub(super) fn validate(
        &self,
        s: &mut Scenario,
        pre: &Preprocessed,
    ) -> Result<(), ScenarioError> {
        self.identity(s)?;
        if s.receive.is_some() {
            return Err(self.err(
                "receive",
                "[receive] describes the on-premises receive side of the exo-to-onprem direction; \
                 add direction = \"exo-to-onprem\" to [scenario]",
            ));
        }
        if let Some(i) = s
            .changes
            .iter()
            .position(|c| c.set_receive_connector.is_some() || c.server.is_some())
        {
            return Err(self.err(
                &format!("changes[{i}]"),
                "set_receive_connector and server apply to the exo-to-onprem direction only",
            ));
        }
        self.authorities(&mut s.onprem)?;
        let names = self.certificates(&s.onprem)?;
        self.certificate_refs(s, pre, &names)?;
        self.send_connector(&s.onprem, pre)?;
        self.eop_and_faults(s)?;
        self.messages_and_run(s)?;
        self.validate_changes(s, pre)?;
        self.expectations(&s.expect)
    }

    /// `[scenario] id`: usable as a folder name.
    pub(super) fn identity(&self, s: &Scenario) -> Result<(), ScenarioError> {
        let id = &s.scenario.id;
        super::safety::check_id(id).map_err(|m| self.err("scenario.id", m))?;
        if id
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c == '\\')
        {
            return Err(self.err(
                "scenario.id",
                format!("field `id`: {id:?} may not contain spaces or slashes"),
            ));
        }
        Ok(())
    }

    /// `source_address` on loopback; `[onprem.authorities]`: names as the keys (filled in),
    /// issuers that exist, no cycle.
    fn authorities(&self, onprem: &mut OnPrem) -> Result<(), ScenarioError> {
        match onprem.source_address {
            std::net::IpAddr::V4(v4) if v4.is_loopback() => {}
            other => {
                return Err(self.err(
                    "onprem.source_address",
                    format!(
                        "field `source_address`: {other} is not in 127.0.0.0/8 (the lab sends only from loopback)"
                    ),
                ));
            }
        }
        for (name, a) in onprem.authorities.iter_mut() {
            if !a.name.is_empty() && &a.name != name {
                return Err(self.err(
                    &format!("onprem.authorities.{name}.name"),
                    format!(
                        "field `name`: {:?} differs from the table key {name:?} (leave it out)",
                        a.name
                    ),
                ));
            }
            a.name = name.clone();
        }
        for (name, a) in &onprem.authorities {
            if let Some(parent) = &a.issuer
                && !onprem.authorities.contains_key(parent)
            {
                return Err(self.err(
                    &format!("onprem.authorities.{name}.issuer"),
                    format!(
                        "field `issuer`: no authority named {parent:?}; expected one of {}",
                        names(onprem.authorities.keys())
                    ),
                ));
            }
        }
        if let Some(cycle) = authority_cycle(&onprem.authorities) {
            return Err(self.err(
                &format!("onprem.authorities.{cycle}.issuer"),
                format!("field `issuer`: authority {cycle:?} is its own ancestor"),
            ));
        }
        Ok(())
    }

    /// `[[onprem.certificates]]`: unique names, issuers that exist, validity times that parse.
    /// Gives the names.
    fn certificates(&self, onprem: &OnPrem) -> Result<BTreeSet<String>, ScenarioError> {
        let mut seen = BTreeSet::new();
        for (i, c) in onprem.certificates.iter().enumerate() {
            if !seen.insert(c.name.clone()) {
                return Err(self.err(
                    &format!("onprem.certificates[{i}].name"),
                    format!("field `name`: duplicate certificate name {:?}", c.name),
                ));
            }
            if let Some(issuer) = &c.issuer
                && !onprem.authorities.contains_key(issuer)
            {
                return Err(self.err(
                    &format!("onprem.certificates[{i}].issuer"),
                    format!(
                        "field `issuer`: no authority named {issuer:?}; expected \"self-signed\" or one of {}",
                        names(onprem.authorities.keys())
                    ),
                ));
            }
            for (field, t) in [("not_before", &c.not_before), ("not_after", &c.not_after)] {
                if let Some(hybridlab_onprem::certstore::TimeSpec::At(v)) = t
                    && hybridlab_onprem::certstore::relative_offset(v).is_none()
                    && time::OffsetDateTime::parse(
                        v,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .is_err()
                {
                    return Err(self.err(
                        &format!("onprem.certificates[{i}].{field}"),
                        format!(
                            "field `{field}`: {v:?} is neither an offset from the run start (\"-30d\", \"+335d\", \"12h\") nor an RFC 3339 time"
                        ),
                    ));
                }
            }
        }
        Ok(seen)
    }

    /// The connector's `{ cert = "name" }` and `[expect] thumbprint_logged` name certificates
    /// of the store.
    fn certificate_refs(
        &self,
        s: &Scenario,
        pre: &Preprocessed,
        seen: &BTreeSet<String>,
    ) -> Result<(), ScenarioError> {
        let cert_names = || names(s.onprem.certificates.iter().map(|c| &c.name));
        if let Some((name, span)) = &pre.cert_ref
            && !seen.contains(name)
        {
            return Err(self.sources.error_span(
                Some(span.clone()),
                format!(
                    "field `cert`: no certificate named {name:?}; expected one of {}",
                    cert_names()
                ),
            ));
        }
        if let Some(name) = s
            .expect
            .thumbprint_logged
            .items()
            .iter()
            .find(|n| !seen.contains(*n))
        {
            return Err(self.err(
                "expect.thumbprint_logged",
                format!(
                    "field `thumbprint_logged`: no certificate named {name:?}; expected one of {}",
                    cert_names()
                ),
            ));
        }
        Ok(())
    }

    /// `[onprem.send_connector]` present and accepted by `Set-SendConnector`; `[onprem.schannel]`
    /// gives a provider and TLS versions.
    fn send_connector(&self, onprem: &OnPrem, pre: &Preprocessed) -> Result<(), ScenarioError> {
        let Some(c) = &onprem.send_connector else {
            return Err(self.err(
                "onprem",
                "missing table [onprem.send_connector] (the send connector to EOP)",
            ));
        };
        let mut c = c.clone();
        if pre.cert_ref.is_some() {
            // stands in for the resolved identifier
            c.tls_certificate_name = Some("<I>CN=x<S>CN=x".into());
        }
        if let Err(e) = c.validate() {
            return Err(self.err(
                "onprem.send_connector",
                format!("the send connector is invalid: {e}"),
            ));
        }
        if let Err(e) = onprem.schannel.provider_and_versions() {
            return Err(self.err("onprem.schannel.cipher_suites", e.to_string()));
        }
        Ok(())
    }

    /// `[eop]` as the mock validates it; every `[[faults]]` entry.
    fn eop_and_faults(&self, s: &Scenario) -> Result<(), ScenarioError> {
        if let Err(inv) = s.eop.validate() {
            return Err(self.err(
                &format!("eop.{}", inv.path),
                format!("eop.{}: {}", inv.path, inv.message),
            ));
        }
        for (i, f) in s.faults.iter().enumerate() {
            if let Err(m) = f.validate() {
                return Err(self.err(&format!("faults[{i}]"), format!("faults[{i}]: {m}")));
            }
        }
        Ok(())
    }

    /// At least one message, each with recipients, addresses and a count of 1 to 1000; a run of
    /// more than zero time and at least one step.
    pub(super) fn messages_and_run(&self, s: &Scenario) -> Result<(), ScenarioError> {
        if s.messages.is_empty() {
            return Err(self.err(
                "messages",
                "no [[messages]]: a scenario sends at least one message",
            ));
        }
        for (i, m) in s.messages.iter().enumerate() {
            if m.to.is_empty() {
                return Err(self.err(
                    &format!("messages[{i}].to"),
                    "field `to`: at least one recipient",
                ));
            }
            for addr in m.to.iter().chain(std::iter::once(&m.from)) {
                if !addr.is_empty() && !addr.contains('@') {
                    return Err(self.err(
                        &format!("messages[{i}]"),
                        format!("{addr:?} is not an address (local@domain)"),
                    ));
                }
            }
            if m.count == 0 || m.count > 1000 {
                return Err(self.err(&format!("messages[{i}].count"), "field `count`: 1 to 1000"));
            }
        }
        if s.run.duration.0.is_zero() {
            return Err(self.err("run.duration", "field `duration`: must be more than zero"));
        }
        if s.run.max_steps == 0 {
            return Err(self.err("run.max_steps", "field `max_steps`: must be at least 1"));
        }
        Ok(())
    }

    /// `[expect]`: at least one expectation (a scenario without one could never fail), the
    /// diagnosis keys consistent with each other, a known finding id.
    fn expectations(&self, e: &Expectations) -> Result<(), ScenarioError> {
        if e.is_empty() {
            const KEYS: &str =
                "`delivered`, `last_error`, `log`, `top_finding`... (scenarios/README.md)";
            return Err(match self.span_of("expect") {
                Some(span) => self.sources.error_at(
                    span.start,
                    format!(
                        "[expect] states no expectation, so the scenario could never fail; \
                         expected at least one key: {KEYS}"
                    ),
                ),
                None => self.sources.error_at_top(format!(
                    "missing table [expect]: without expectations the scenario could never fail; \
                     expected [expect] with at least one key: {KEYS}"
                )),
            });
        }
        if e.no_other_error_finding && e.top_finding.is_none() {
            return Err(self.err(
                "expect.no_other_error_finding",
                "field `no_other_error_finding`: needs `top_finding`",
            ));
        }
        if e.no_error_finding
            && let Some(id) = &e.top_finding
            && id.parse::<hybridlab_diagnose::FindingId>().is_ok_and(|f| {
                f.severity() == hybridlab_diagnose::Severity::Error && !f.can_recover()
            })
        {
            return Err(self.err(
                "expect.no_error_finding",
                format!(
                    "field `no_error_finding`: contradicts `top_finding` ({id} is of severity error; \
                     only a warning, or an error that later deliveries left behind, can rank first \
                     in a run without errors)"
                ),
            ));
        }
        if let Some(id) = &e.top_finding
            && id.parse::<hybridlab_diagnose::FindingId>().is_err()
        {
            return Err(self.err(
                "expect.top_finding",
                format!(
                    "field `top_finding`: unknown finding id {id:?}, expected one of docs/findings.md: {}",
                    hybridlab_diagnose::catalogue::FindingId::ALL
                        .iter()
                        .map(|f| f.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        Ok(())
    }
}

/// Names as a quoted, comma-separated list, or `(none defined)`.
pub(super) fn names<'a>(it: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<String> = it.map(|n| format!("{n:?}")).collect();
    if v.is_empty() {
        "(none defined)".into()
    } else {
        v.join(", ")
    }
}

/// An authority that is its own ancestor, if any.
pub(super) fn authority_cycle(auths: &BTreeMap<String, AuthorityDescription>) -> Option<String> {
    for start in auths.keys() {
        let mut cur = start;
        for _ in 0..=auths.len() {
            match auths.get(cur).and_then(|a| a.issuer.as_ref()) {
                None => break,
                Some(p) if p == start => return Some(start.clone()),
                Some(p) => cur = p,
            }
        }
    }
    None
}
