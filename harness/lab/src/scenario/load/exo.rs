//! Validation of an `exo-to-onprem` scenario: `[receive]` (PKI, servers, connectors, perimeter),
//! `[eop]` with an outbound connector for every recipient, `[[messages]]`, `[run]`, the
//! `[[changes]]` that apply to a receive side, and `[expect]` (a `top_finding` may be an id the
//! diagnosis does not know yet: [`crate::scenario::exo::PENDING_FINDINGS`]).

use std::collections::BTreeSet;

use super::locate::ScenarioError;
use super::preprocess::Preprocessed;
use super::validate::{Validator, authority_cycle, names};
use crate::scenario::exo::PENDING_FINDINGS;
use crate::scenario::exo::model::ReceiveSpec;
use crate::scenario::model::{ChangeAction, Scenario};

/// The action keys a `[[changes]]` entry of this direction may have.
const ACTIONS: &str = "remove_certificate = \"name\", install_certificate = \"name\", \
     set_receive_connector = { server = \"...\", ... } or restart_transport = true";

impl Validator<'_, '_, '_> {
    /// Every check of an `exo-to-onprem` scenario, in the order a reader meets the tables.
    pub(super) fn validate_exo(
        &self,
        s: &mut Scenario,
        pre: &Preprocessed,
    ) -> Result<(), ScenarioError> {
        self.identity(s)?;
        if s.onprem.send_connector.is_some() {
            return Err(self.err(
                "onprem.send_connector",
                "[onprem.send_connector] belongs to the onprem-to-exo direction; an exo-to-onprem \
                 scenario describes the receive side in [receive]",
            ));
        }
        let Some(mut receive) = s.receive.take() else {
            return Err(self.err(
                "scenario.direction",
                "direction = \"exo-to-onprem\" needs a [receive] table with at least one \
                 [[receive.servers]] entry",
            ));
        };
        let r = self.receive(&mut receive, pre);
        s.receive = Some(receive);
        r?;
        self.exo_routes(s)?;
        self.messages_and_run(s)?;
        self.exo_changes(s, pre)?;
        self.exo_expectations(s)
    }

    fn receive(&self, r: &mut ReceiveSpec, pre: &Preprocessed) -> Result<(), ScenarioError> {
        for (name, a) in r.authorities.iter_mut() {
            if !a.name.is_empty() && &a.name != name {
                return Err(self.err(
                    &format!("receive.authorities.{name}.name"),
                    format!(
                        "field `name`: {:?} differs from the table key {name:?}",
                        a.name
                    ),
                ));
            }
            a.name = name.clone();
        }
        for (name, a) in &r.authorities {
            if let Some(p) = &a.issuer
                && !r.authorities.contains_key(p)
            {
                return Err(self.err(
                    &format!("receive.authorities.{name}.issuer"),
                    format!(
                        "field `issuer`: no authority named {p:?}; expected one of {}",
                        names(r.authorities.keys())
                    ),
                ));
            }
        }
        if let Some(c) = authority_cycle(&r.authorities) {
            return Err(self.err(
                &format!("receive.authorities.{c}.issuer"),
                format!("field `issuer`: authority {c:?} is its own ancestor"),
            ));
        }
        let mut certs = BTreeSet::new();
        for (i, c) in r.certificates.iter().enumerate() {
            if !certs.insert(c.name.clone()) {
                return Err(self.err(
                    &format!("receive.certificates[{i}].name"),
                    format!("field `name`: duplicate certificate name {:?}", c.name),
                ));
            }
            if let Some(iss) = &c.issuer
                && !r.authorities.contains_key(iss)
            {
                return Err(self.err(
                    &format!("receive.certificates[{i}].issuer"),
                    format!(
                        "field `issuer`: no authority named {iss:?}; expected \"self-signed\" or one of {}",
                        names(r.authorities.keys())
                    ),
                ));
            }
        }
        let cert_list = || names(r.certificates.iter().map(|c| &c.name));
        if r.servers.is_empty() {
            return Err(self.err(
                "receive",
                "[receive] needs at least one [[receive.servers]] entry",
            ));
        }
        let mut servers = BTreeSet::new();
        for (i, sv) in r.servers.iter().enumerate() {
            if !servers.insert(sv.name.to_ascii_uppercase()) {
                return Err(self.err(
                    &format!("receive.servers[{i}].name"),
                    format!("field `name`: duplicate server {:?}", sv.name),
                ));
            }
            for n in sv.certificates.iter().flatten() {
                if !certs.contains(n) {
                    return Err(self.err(
                        &format!("receive.servers[{i}].certificates"),
                        format!(
                            "field `certificates`: no certificate named {n:?}; expected one of {}",
                            cert_list()
                        ),
                    ));
                }
            }
        }
        let server_list = || names(r.servers.iter().map(|s| &s.name));
        for (i, c) in r.connectors.iter().enumerate() {
            if !servers.contains(&c.server.to_ascii_uppercase()) {
                return Err(self.err(
                    &format!("receive.connectors[{i}].server"),
                    format!(
                        "field `server`: no server named {:?} in [[receive.servers]]; expected one of {}",
                        c.server,
                        server_list()
                    ),
                ));
            }
        }
        for (n, span) in pre.receive_cert_refs.values() {
            if !certs.contains(n) {
                return Err(self.sources.error_span(
                    Some(span.clone()),
                    format!(
                        "field `cert`: no certificate named {n:?} in [[receive.certificates]]; expected one of {}",
                        cert_list()
                    ),
                ));
            }
        }
        if let Some(d) = &r.perimeter.tls_device
            && !certs.contains(&d.certificate)
        {
            return Err(self.err(
                "receive.perimeter.tls_device.certificate",
                format!(
                    "field `certificate`: no certificate named {:?}; expected one of {}",
                    d.certificate,
                    cert_list()
                ),
            ));
        }
        Ok(())
    }

    /// `[eop]` as the mock validates it, and an enabled outbound connector for every recipient.
    fn exo_routes(&self, s: &Scenario) -> Result<(), ScenarioError> {
        if let Err(inv) = s.eop.validate() {
            return Err(self.err(
                &format!("eop.{}", inv.path),
                format!("eop.{}: {}", inv.path, inv.message),
            ));
        }
        let tenant = match crate::scenario::exo::sending_tenant(s) {
            Ok(t) => t,
            Err(m) => return Err(self.err("eop", m)),
        };
        for (i, m) in s.messages.iter().enumerate() {
            for to in &m.to {
                if let Err(e) = mock_eop::exo::Route::for_recipient(tenant, to) {
                    return Err(self.err(
                        &format!("messages[{i}].to"),
                        format!(
                            "field `to`: {e}; add it to an outbound connector's recipient_domains"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn exo_changes(&self, s: &Scenario, pre: &Preprocessed) -> Result<(), ScenarioError> {
        let Some(r) = &s.receive else { return Ok(()) };
        let server_known = |n: &str| r.servers.iter().any(|x| x.name.eq_ignore_ascii_case(n));
        let cert_known = |n: &str| r.certificates.iter().any(|x| x.name == n);
        let cert_list = || names(r.certificates.iter().map(|c| &c.name));
        let server_list = || names(r.servers.iter().map(|s| &s.name));
        let mut connectors = crate::scenario::exo::initial_connectors(r);
        let mut order: Vec<usize> = (0..s.changes.len()).collect();
        order.sort_by_key(|&i| s.changes[i].at.0);
        for i in order {
            let c = &s.changes[i];
            let keys = c.action_keys();
            match keys.as_slice() {
                [] => {
                    return Err(self.err(
                        &format!("changes[{i}]"),
                        format!(
                            "[[changes]] entry {i}: no action; expected exactly one of {ACTIONS}"
                        ),
                    ));
                }
                [k] if matches!(*k, "set_send_connector" | "retry_queue") => {
                    return Err(self.err(
                        &format!("changes[{i}].{k}"),
                        format!(
                            "field `{k}`: not an action of an exo-to-onprem scenario; expected one of {ACTIONS}"
                        ),
                    ));
                }
                [_] => {}
                [first, second, ..] => {
                    return Err(self.err(
                        &format!("changes[{i}].{second}"),
                        format!(
                            "field `{second}`: one action per [[changes]] entry (`{first}` is already set)"
                        ),
                    ));
                }
            }
            if c.restart_transport == Some(false) {
                return Err(self.err(
                    &format!("changes[{i}].restart_transport"),
                    "field `restart_transport`: expected true",
                ));
            }
            if c.at.0 > s.run.duration.0 {
                return Err(self.err(
                    &format!("changes[{i}].at"),
                    format!(
                        "field `at`: {} is after the end of the run ([run] duration = {})",
                        c.at, s.run.duration
                    ),
                ));
            }
            if let Some(n) = &c.server
                && !server_known(n)
            {
                return Err(self.err(
                    &format!("changes[{i}].server"),
                    format!(
                        "field `server`: no server named {n:?}; expected one of {}",
                        server_list()
                    ),
                ));
            }
            for (key, name) in [
                ("remove_certificate", &c.remove_certificate),
                ("install_certificate", &c.install_certificate),
            ] {
                if let Some(n) = name
                    && !cert_known(n)
                {
                    return Err(self.err(
                        &format!("changes[{i}].{key}"),
                        format!(
                            "field `{key}`: no certificate named {n:?}; expected one of {}",
                            cert_list()
                        ),
                    ));
                }
            }
            if let Some((n, span)) = pre.change_receive_cert_refs.get(&i)
                && !cert_known(n)
            {
                return Err(self.sources.error_span(
                    Some(span.clone()),
                    format!(
                        "field `cert`: no certificate named {n:?}; expected one of {}",
                        cert_list()
                    ),
                ));
            }
            if let Some(ChangeAction::SetReceiveConnector(rc)) = c.action() {
                let path = format!("changes[{i}].set_receive_connector");
                let Some(server) = rc.server() else {
                    return Err(self.err(
                        &path,
                        format!(
                            "set_receive_connector needs `server`, one of {}",
                            server_list()
                        ),
                    ));
                };
                if !server_known(server) {
                    return Err(self.err(
                        &format!("{path}.server"),
                        format!(
                            "field `server`: no server named {server:?}; expected one of {}",
                            server_list()
                        ),
                    ));
                }
                let Some(slot) =
                    crate::scenario::exo::find_connector(&connectors, server, rc.name())
                else {
                    return Err(self.err(
                        &format!("{path}.name"),
                        format!(
                            "field `name`: server {server} has no receive connector {:?}",
                            rc.name().unwrap_or("")
                        ),
                    ));
                };
                match rc.apply(&connectors[slot]) {
                    Ok(after) => connectors[slot] = after,
                    Err(m) => {
                        return Err(self.err(
                            &path,
                            format!("Set-ReceiveConnector would refuse this: {m}"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn exo_expectations(&self, s: &Scenario) -> Result<(), ScenarioError> {
        let e = &s.expect;
        if e.is_empty() {
            return Err(self.err(
                "expect",
                "[expect] states no expectation, so the scenario could never fail; expected at \
                 least one key: `delivered`, `trace_status`, `trace_detail`, `recv_log`... \
                 (scenarios/README.md)",
            ));
        }
        if let Some(id) = &e.top_finding
            && id.parse::<hybridlab_diagnose::FindingId>().is_err()
            && !PENDING_FINDINGS.contains(&id.as_str())
        {
            return Err(self.err(
                "expect.top_finding",
                format!(
                    "field `top_finding`: unknown finding id {id:?}, expected one of docs/findings.md: {}, or one of the receive-side ids the diagnosis will use: {}",
                    hybridlab_diagnose::catalogue::FindingId::ALL
                        .iter()
                        .map(|f| f.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    PENDING_FINDINGS.join(", ")
                ),
            ));
        }
        if e.no_other_error_finding && e.top_finding.is_none() {
            return Err(self.err(
                "expect.no_other_error_finding",
                "field `no_other_error_finding`: needs `top_finding`",
            ));
        }
        Ok(())
    }
}
