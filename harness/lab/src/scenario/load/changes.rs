//! Validation of `[[changes]]`: one action each, within the run, naming certificates that exist
//! and are (or are not) in the store at that time; every `set_send_connector` gives a connector
//! `Set-SendConnector` would accept, applied in time order, each on top of the earlier ones.

use std::collections::BTreeSet;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::chain::merge_tables;
use super::locate::{ScenarioError, with_suggestion};
use super::preprocess::Preprocessed;
use super::validate::Validator;
use crate::scenario::model::{ChangeAction, ChangeSpec, Scenario};
use hybridlab_onprem::connector::SendConnector;

/// Every action key of a `[[changes]]` entry, for the error that finds none.
const ACTIONS: &str = "remove_certificate = \"name\", install_certificate = \"name\", \
     set_send_connector = { ... }, restart_transport = true or retry_queue = true";

/// Stands in for a `TlsCertificateName` resolved at run time when the connector is validated.
const RESOLVED_LATER: &str = "<I>CN=x<S>CN=x";

/// The store and the send connector as the admin's changes leave them, change by change.
struct Timeline<'t> {
    /// Scenario-local names of the certificates in the store.
    in_store: BTreeSet<String>,
    /// The connector's keys as written so far (`[onprem.send_connector]` and every patch).
    conn_table: DeTable<'t>,
    /// The certificate the connector's `TlsCertificateName` refers to, when it is a reference.
    conn_ref: Option<String>,
    /// Change index -> the whole connector after it and its certificate reference.
    results: Vec<(usize, SendConnector, Option<String>)>,
}

impl Validator<'_, '_, '_> {
    /// `[[changes]]`: each entry on its own, then the timeline in time order; fills in the
    /// connector after each `set_send_connector`.
    pub(super) fn validate_changes(
        &self,
        s: &mut Scenario,
        pre: &Preprocessed,
    ) -> Result<(), ScenarioError> {
        for (i, c) in s.changes.iter().enumerate() {
            self.change_entry(s, pre, i, c)?;
        }
        let results = self.timeline(s, pre)?;
        for (i, conn, r) in results {
            if let Some(cc) = s.changes[i].set_send_connector.as_mut() {
                cc.connector = Some(Box::new(conn));
                cc.connector_certificate = r;
            }
        }
        Ok(())
    }

    /// Entry `i` on its own: exactly one action, `true` flags, within the run, certificate names
    /// that exist.
    fn change_entry(
        &self,
        s: &Scenario,
        pre: &Preprocessed,
        i: usize,
        c: &ChangeSpec,
    ) -> Result<(), ScenarioError> {
        match c.action_keys().as_slice() {
            [] => {
                return Err(self.err(
                    &format!("changes[{i}]"),
                    format!("[[changes]] entry {i}: no action; expected exactly one of {ACTIONS}"),
                ));
            }
            [_] => {}
            [first, second, ..] => {
                return Err(self.err(
                    &format!("changes[{i}].{second}"),
                    format!(
                        "field `{second}`: one action per [[changes]] entry (`{first}` is already set); \
                         add another [[changes]] entry with the same `at`"
                    ),
                ));
            }
        }
        for (key, v) in [
            ("restart_transport", c.restart_transport),
            ("retry_queue", c.retry_queue),
        ] {
            if v == Some(false) {
                return Err(self.err(
                    &format!("changes[{i}].{key}"),
                    format!("field `{key}`: expected true (leave the entry out rather than false)"),
                ));
            }
        }
        if c.at.0 > s.run.duration.0 {
            return Err(self.err(
                &format!("changes[{i}].at"),
                format!(
                    "field `at`: {} is after the end of the run ([run] duration = {}); expected a time from the run start up to {}",
                    c.at, s.run.duration, s.run.duration
                ),
            ));
        }
        self.change_certificates(s, pre, i, c)
    }

    /// The certificate names entry `i` uses exist in `[[onprem.certificates]]`.
    fn change_certificates(
        &self,
        s: &Scenario,
        pre: &Preprocessed,
        i: usize,
        c: &ChangeSpec,
    ) -> Result<(), ScenarioError> {
        let known = |n: &str| s.onprem.certificates.iter().any(|x| x.name == n);
        let cert_list = || super::validate::names(s.onprem.certificates.iter().map(|c| &c.name));
        for (key, name) in [
            ("remove_certificate", &c.remove_certificate),
            ("install_certificate", &c.install_certificate),
        ] {
            if let Some(n) = name
                && !known(n)
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
        if let Some((n, span)) = pre.change_cert_refs.get(&i)
            && !known(n)
        {
            return Err(self.sources.error_span(
                Some(span.clone()),
                format!(
                    "field `cert`: no certificate named {n:?}; expected one of {}",
                    cert_list()
                ),
            ));
        }
        Ok(())
    }

    /// The changes in time order (as listed for equal times): certificates removed only while in
    /// the store and installed only while not; each `set_send_connector` applied on the
    /// connector as the earlier changes left it. Gives the connector after each of them.
    fn timeline(
        &self,
        s: &Scenario,
        pre: &Preprocessed,
    ) -> Result<Vec<(usize, SendConnector, Option<String>)>, ScenarioError> {
        let mut order: Vec<usize> = (0..s.changes.len()).collect();
        order.sort_by_key(|&i| s.changes[i].at.0);
        let mut tl = Timeline {
            in_store: s
                .onprem
                .certificates
                .iter()
                .map(|c| c.name.clone())
                .filter(|n| !s.onprem.not_installed.contains(n))
                .collect(),
            conn_table: match self.value_at("onprem.send_connector").map(|v| v.get_ref()) {
                Some(DeValue::Table(t)) => t.clone(),
                _ => DeTable::default(),
            },
            conn_ref: s.source.tls_certificate_ref.clone(),
            results: Vec::new(),
        };
        for &i in &order {
            let c = &s.changes[i];
            let at = c.at;
            match c.action() {
                Some(ChangeAction::RemoveCertificate(n)) => {
                    if !tl.in_store.remove(n) {
                        return Err(self.err(
                            &format!("changes[{i}].remove_certificate"),
                            format!(
                                "field `remove_certificate`: {n:?} is not in the store at {at} (declared with installed = false and not installed yet, or already removed)"
                            ),
                        ));
                    }
                }
                Some(ChangeAction::InstallCertificate(n)) => {
                    if !tl.in_store.insert(n.to_string()) {
                        return Err(self.err(
                            &format!("changes[{i}].install_certificate"),
                            format!(
                                "field `install_certificate`: {n:?} is already in the store at {at}; declare it with installed = false in [[onprem.certificates]]"
                            ),
                        ));
                    }
                }
                Some(ChangeAction::SetSendConnector(_)) => {
                    self.set_send_connector(pre, i, &mut tl)?;
                }
                Some(
                    ChangeAction::RestartTransport
                    | ChangeAction::RetryQueue
                    | ChangeAction::SetReceiveConnector(_),
                )
                | None => {}
            }
        }
        Ok(tl.results)
    }

    /// Change `i`, a `set_send_connector`: its keys merged onto the connector so far, the
    /// certificate reference followed, the result deserialized and validated.
    fn set_send_connector<'v>(
        &'v self,
        pre: &Preprocessed,
        i: usize,
        tl: &mut Timeline<'v>,
    ) -> Result<(), ScenarioError> {
        let path = format!("changes[{i}].set_send_connector");
        let Some(v) = self.value_at(&path) else {
            return Ok(());
        };
        let (DeValue::Table(patch), span) = (v.get_ref(), v.span()) else {
            return Err(self.err(
                &path,
                "field `set_send_connector`: expected a table of [onprem.send_connector] keys ({ tls_domain = \"...\" })",
            ));
        };
        let literal = patch
            .get("tls_certificate_name")
            .map(|v| match v.get_ref() {
                DeValue::String(s) => s.trim().is_empty(),
                _ => false,
            });
        merge_tables(&mut tl.conn_table, patch.clone());
        if pre.change_cert_refs.contains_key(&i) {
            tl.conn_ref = pre.change_cert_refs.get(&i).map(|(n, _)| n.clone());
            tl.conn_table.remove("tls_certificate_name");
        } else if let Some(empty) = literal {
            tl.conn_ref = None;
            if empty {
                tl.conn_table.remove("tls_certificate_name");
            }
        }
        let mut conn = SendConnector::deserialize(toml::de::Deserializer::from(Spanned::new(
            span,
            tl.conn_table.clone(),
        )))
        .map_err(|e| {
            self.sources.error_span(
                e.span(),
                format!("{path}: {}", with_suggestion(e.message().trim())),
            )
        })?;
        let mut check = conn.clone();
        if tl.conn_ref.is_some() {
            check.tls_certificate_name = Some(RESOLVED_LATER.into());
        }
        if let Err(e) = check.validate() {
            return Err(self.err(
                &path,
                format!("{path}: after this change the send connector is invalid: {e}"),
            ));
        }
        if tl.conn_ref.is_some() {
            conn.tls_certificate_name = None;
        }
        tl.results.push((i, conn, tl.conn_ref.clone()));
        Ok(())
    }
}
