//! Changes while the queue runs: the `[[changes]]` schema (errors with file, line and column), the
//! transport's certificate cache (FM-34) against the mock EOP on the virtual clock, and the
//! `cert-cached-after-change` / `cert-failure-recovered` rules on hand-written bundles.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::support::{self, MockLab, Net, message, pinned};
use harness::scenario::model::ChangeAction;
use harness::scenario::{ScenarioError, load};
use hybridlab_diagnose::{FindingId, Options, diagnose_paths};
use hybridlab_model::exchange::QueueStatus;
use hybridlab_onprem::certstore::{StoreDescription, fixtures};
use hybridlab_onprem::transport::{CertificateCache, Transport, TransportRecord, run_until};
use mock_eop::config::EopConfig;
use time::Duration;

// ---------------------------------------------------------------------------------------------
// The schema
// ---------------------------------------------------------------------------------------------

fn base() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/base/hybrid-cert.toml")
}

/// A scenario file extending the catalogue's base, the twins in the store, then `rest`, then an
/// expectation (a scenario without one does not load).
fn write(dir: &Path, name: &str, rest: &str) -> PathBuf {
    let text = format!(
        "extend = {:?}\n\n{TWINS}\n{rest}\n{EXPECT}",
        base().display().to_string()
    );
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const TWINS: &str = r#"[[onprem.certificates]]
name = "twin-nokey"
subject = "CN=mail.contoso.com, O=Contoso Ltd, L=Redmond, S=Washington, C=US"
issuer = "issuing"
has_private_key = false

[[onprem.certificates]]
name = "good"
subject = "CN=mail.contoso.com, O=Contoso Ltd, L=Redmond, S=Washington, C=US"
issuer = "issuing"
"#;

/// Any expectation: the schema tests only load the files.
const EXPECT: &str = "[expect]\ndelivered = 1\n";

/// The line (1-based) of the first occurrence of `needle` in the file.
fn line_of(p: &Path, needle: &str) -> usize {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("{needle:?} not in {}", p.display()))
}

fn column_of(p: &Path, needle: &str) -> usize {
    let text = std::fs::read_to_string(p).unwrap();
    let l = text.lines().find(|l| l.contains(needle)).unwrap();
    l[..l.find(needle).unwrap()].chars().count() + 1
}

fn load_err(p: &Path) -> ScenarioError {
    match load(p) {
        Ok(_) => panic!("{} loaded, but it is broken", p.display()),
        Err(e) => e,
    }
}

/// The error names this file, the line holding `needle` (and its column when `col`), and says
/// each of `says`.
fn assert_error_at(p: &Path, needle: &str, col: bool, says: &[&str]) {
    let e = load_err(p);
    let text = e.to_string();
    assert!(e.file.ends_with(p.file_name().unwrap()), "{text}");
    assert_eq!(e.line, Some(line_of(p, needle)), "{text}");
    if col {
        assert_eq!(e.column, Some(column_of(p, needle)), "{text}");
    }
    for s in says {
        assert!(text.contains(s), "{text:?} does not say {s:?}");
    }
}

#[test]
fn changes_load_in_time_order_with_the_connector_they_give() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "ok.toml",
        r#"
[[onprem.certificates]]
name = "renewed"
subject = "CN=mail.contoso.com, O=Contoso Ltd, C=US"
issuer = "issuing"
installed = false

[onprem.transport]
certificate_cache = "none"

[[changes]]
at = "40m"
set_send_connector = { tls_certificate_name = { cert = "renewed" }, tls_domain = "*.protection.outlook.com" }

[[changes]]
at = "10m"
install_certificate = "renewed"

[[changes]]
at = "00:20:00"
remove_certificate = "twin-nokey"

[[changes]]
at = "41m"
restart_transport = true

[[changes]]
at = "42m"
retry_queue = true

[run]
duration = "1h"
"#,
    );
    let s = load(&p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.changes.len(), 5);
    assert_eq!(s.onprem.not_installed, vec!["renewed".to_string()]);
    assert_eq!(s.onprem.certificate_cache, CertificateCache::Disabled);
    // an [onprem.transport] holding only certificate_cache keeps the role's defaults
    assert!(s.onprem.transport.is_none());
    match s.changes[0].action() {
        Some(ChangeAction::SetSendConnector(c)) => {
            assert_eq!(c.certificate.as_deref(), Some("renewed"));
            assert_eq!(c.connector_certificate.as_deref(), Some("renewed"));
            let conn = c.connector.as_deref().expect("resolved by the loader");
            assert_eq!(conn.tls_domain.as_deref(), Some("*.protection.outlook.com"));
            // the rest of the connector is the scenario's
            assert!(conn.require_tls);
            assert_eq!(conn.name, "Outbound to Office 365");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.changes[1].action(),
        Some(ChangeAction::InstallCertificate("renewed"))
    ));
    assert!(matches!(
        s.changes[2].action(),
        Some(ChangeAction::RemoveCertificate("twin-nokey"))
    ));
    assert!(matches!(
        s.changes[3].action(),
        Some(ChangeAction::RestartTransport)
    ));
    assert!(matches!(
        s.changes[4].action(),
        Some(ChangeAction::RetryQueue)
    ));
}

#[test]
fn extend_replaces_the_changes_of_the_base() {
    let dir = tempfile::tempdir().unwrap();
    let b = write(
        dir.path(),
        "b.toml",
        "[[changes]]\nat = \"5m\"\nremove_certificate = \"twin-nokey\"\n\n[[changes]]\nat = \"6m\"\nrestart_transport = true\n",
    );
    let top = dir.path().join("top.toml");
    std::fs::write(
        &top,
        format!(
            "extend = {:?}\n\n[[changes]]\nat = \"7m\"\nretry_queue = true\n",
            b.display().to_string()
        ),
    )
    .unwrap();
    let s = load(&top).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.changes.len(), 1);
    assert!(matches!(
        s.changes[0].action(),
        Some(ChangeAction::RetryQueue)
    ));
    // the base alone keeps its two
    assert_eq!(load(&b).unwrap().changes.len(), 2);
}

#[test]
fn unknown_key_in_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "typo.toml",
        "[[changes]]\nat = \"5m\"\nrestart_transprot = true\n",
    );
    assert_error_at(
        &p,
        "restart_transprot",
        true,
        &[
            "unknown field `restart_transprot`",
            "did you mean `restart_transport`?",
        ],
    );
}

#[test]
fn unknown_certificate_names() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "rm.toml",
        "[[changes]]\nat = \"5m\"\nremove_certificate = \"twin\"\n",
    );
    assert_error_at(
        &p,
        "remove_certificate",
        true,
        &["no certificate named \"twin\"", "\"twin-nokey\", \"good\""],
    );
    let p = write(
        dir.path(),
        "ref.toml",
        "[[changes]]\nat = \"5m\"\nset_send_connector = { tls_certificate_name = { cert = \"renewd\" } }\n",
    );
    assert_error_at(
        &p,
        "\"renewd\"",
        true,
        &["field `cert`: no certificate named \"renewd\""],
    );
}

#[test]
fn two_actions_in_one_entry_point_at_the_second() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "two.toml",
        "[[changes]]\nat = \"5m\"\nremove_certificate = \"twin-nokey\"\nrestart_transport = true\n",
    );
    assert_error_at(
        &p,
        "restart_transport",
        true,
        &[
            "one action per [[changes]] entry",
            "`remove_certificate` is already set",
        ],
    );
    let p = write(dir.path(), "none.toml", "[[changes]]\nat = \"5m\"\n");
    assert_error_at(
        &p,
        "[[changes]]",
        false,
        &["no action", "restart_transport = true"],
    );
}

#[test]
fn at_beyond_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "late.toml",
        "[[changes]]\nat = \"2h\"\nrestart_transport = true\n\n[run]\nduration = \"1h\"\n",
    );
    assert_error_at(
        &p,
        "at = \"2h\"",
        true,
        &["field `at`", "after the end of the run", "01:00:00"],
    );
    let p = write(
        dir.path(),
        "false.toml",
        "[[changes]]\nat = \"5m\"\nretry_queue = false\n",
    );
    assert_error_at(&p, "retry_queue", true, &["expected true"]);
}

#[test]
fn certificates_must_be_where_the_change_expects_them() {
    let dir = tempfile::tempdir().unwrap();
    // installing a certificate that is already in the store
    let p = write(
        dir.path(),
        "inst.toml",
        "[[changes]]\nat = \"5m\"\ninstall_certificate = \"good\"\n",
    );
    assert_error_at(
        &p,
        "install_certificate",
        true,
        &["already in the store", "installed = false"],
    );
    // removing twice
    let p = write(
        dir.path(),
        "twice.toml",
        "[[changes]]\nat = \"5m\"\nremove_certificate = \"twin-nokey\"\n\n[[changes]]\nat = \"9m\"\nremove_certificate = \"twin-nokey\"\n",
    );
    let e = load_err(&p);
    assert_eq!(e.line, Some(line_of(&p, "at = \"9m\"") + 1), "{e}");
    assert_eq!(e.column, Some(1), "{e}");
    assert!(
        e.to_string().contains("not in the store at 00:09:00"),
        "{e}"
    );
    // `installed` must be a boolean, `certificate_cache` one of two words
    let p = write(
        dir.path(),
        "inst-kind.toml",
        "[[onprem.certificates]]\nname = \"x\"\nsubject = \"CN=x\"\ninstalled = \"no\"\n",
    );
    assert_error_at(&p, "\"no\"", true, &["field `installed`"]);
    let p = write(
        dir.path(),
        "cache.toml",
        "[onprem.transport]\ncertificate_cache = \"sometimes\"\n",
    );
    assert_error_at(
        &p,
        "sometimes",
        false,
        &["field `certificate_cache`", "until_restart"],
    );
}

#[test]
fn impossible_connector_after_a_change() {
    let dir = tempfile::tempdir().unwrap();
    // the base's connector keeps TlsAuthLevel DomainValidation: RequireTLS false is refused
    let p = write(
        dir.path(),
        "conn.toml",
        "[[changes]]\nat = \"5m\"\nset_send_connector = { require_tls = false }\n",
    );
    assert_error_at(
        &p,
        "set_send_connector",
        true,
        &[
            "changes[0].set_send_connector",
            "TlsAuthLevel can only be specified when RequireTLS is set to $true.",
        ],
    );
    // a misspelt connector key points at itself
    let p = write(
        dir.path(),
        "conn-typo.toml",
        "[[changes]]\nat = \"5m\"\nset_send_connector = { tls_domian = \"x\" }\n",
    );
    assert_error_at(
        &p,
        "tls_domian",
        true,
        &["unknown field `tls_domian`", "did you mean `tls_domain`?"],
    );
    // each change applies on top of the earlier ones: clearing TlsAuthLevel first makes it valid
    let p = write(
        dir.path(),
        "conn-ok.toml",
        "[[changes]]\nat = \"5m\"\nset_send_connector = { tls_auth_level = \"\", tls_domain = \"\" }\n\n\
         [[changes]]\nat = \"6m\"\nset_send_connector = { require_tls = false }\n",
    );
    let s = load(&p).unwrap_or_else(|e| panic!("{e}"));
    let Some(ChangeAction::SetSendConnector(c)) = s.changes[1].action() else {
        panic!()
    };
    let conn = c.connector.as_deref().unwrap();
    assert!(!conn.require_tls && conn.tls_auth_level.is_none() && conn.tls_domain.is_none());
    // the reference to the original certificate is kept through a change that does not touch it
    assert_eq!(c.connector_certificate.as_deref(), Some("good"));
}

// ---------------------------------------------------------------------------------------------
// The transport's certificate cache
// ---------------------------------------------------------------------------------------------

fn peer() -> SocketAddr {
    "10.0.0.5:27436".parse().unwrap()
}

/// The twins (key-less first) and a keyed certificate with another subject ("other").
fn twins_and_other() -> StoreDescription {
    let mut d = fixtures::classic_twins(true);
    let mut other = fixtures::contoso("other");
    other.subject = "CN=mail.contoso.com, O=Contoso Ltd, C=US".parse().unwrap();
    d.certificates.push(other);
    d
}

async fn lab() -> MockLab {
    support::start_with(
        EopConfig::contoso(),
        Vec::new(),
        &twins_and_other(),
        Net::Memory,
        true,
    )
    .await
}

/// The thumbprint of the `Sending certificate` block of each session.
fn presented(t: &Transport) -> Vec<String> {
    t.sessions()
        .iter()
        .map(|s| {
            s.selection
                .as_ref()
                .and_then(|sel| match &sel.outcome {
                    hybridlab_onprem::selection::SelectionOutcome::Selected {
                        thumbprint, ..
                    } => Some(thumbprint.clone()),
                    _ => None,
                })
                .unwrap_or_default()
        })
        .collect()
}

fn delivered(t: &Transport) -> usize {
    t.finished()
        .iter()
        .filter(|(_, r)| matches!(r, TransportRecord::Delivered { .. }))
        .count()
}

#[tokio::test(start_paused = true)]
async fn store_change_without_restart_keeps_the_cached_selection() {
    let lab = lab().await;
    let twin = lab
        .store
        .entry("twin-nokey")
        .unwrap()
        .facts
        .thumbprint
        .clone();
    let keyed = lab.store.entry("keyed").unwrap().facts.thumbprint.clone();
    let clock = lab.clock.clone();
    let resolver = lab.resolver_as("104.47.10.36:25".parse().unwrap());
    let mut d = lab.memory(peer());
    let mut t = lab.transport(pinned());
    t.submit(message(1));
    let t0 = support::t0();

    // the first attempt selects (and caches) the key-less twin; so do the glitch retries
    run_until(
        &mut t,
        &resolver,
        &mut d,
        &clock,
        t0 + Duration::minutes(2),
        10,
    )
    .await;
    assert_eq!(presented(&t), vec![twin.clone(); 3]);
    assert_eq!(t.cached_certificates().len(), 1);
    assert_eq!(t.cached_certificates()[0].thumbprint, twin);

    // the admin removes the twin: the store changes, the transport does not
    let now = clock.now();
    assert!(t.remove_certificate(&twin, now).is_some());
    assert!(t.store().by_thumbprint(&twin).is_none());
    run_until(
        &mut t,
        &resolver,
        &mut d,
        &clock,
        t0 + Duration::minutes(4),
        10,
    )
    .await;
    let after: Vec<String> = presented(&t)[3..].to_vec();
    assert_eq!(after, vec![twin.clone(); 2]);
    assert_eq!(delivered(&t), 0);
    assert_eq!(t.snapshot().status, QueueStatus::Retry);
    let notes: Vec<_> = t
        .records()
        .iter()
        .filter_map(|r| match &r.record {
            TransportRecord::CachedCertificate {
                session,
                cached,
                current,
                ..
            } => Some((*session, cached.clone(), current.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        notes,
        vec![
            (3, twin.clone(), Some(keyed.clone())),
            (4, twin.clone(), Some(keyed.clone()))
        ]
    );

    // Retry-Queue alone changes nothing
    let now = clock.now();
    t.retry_queue(now);
    run_until(&mut t, &resolver, &mut d, &clock, now, 10).await;
    assert_eq!(presented(&t).len(), 6);
    assert_eq!(presented(&t).last(), Some(&twin));

    // the restart empties the cache: the next attempt (at once) presents the keyed certificate
    let now = clock.now();
    t.restart(now);
    assert!(t.cached_certificates().is_empty());
    assert_eq!(t.snapshot().status, QueueStatus::Ready);
    assert!(t.snapshot().last_error.is_none());
    run_until(&mut t, &resolver, &mut d, &clock, now, 10).await;
    assert_eq!(presented(&t).len(), 7);
    assert_eq!(presented(&t).last(), Some(&keyed));
    assert_eq!(delivered(&t), 1);
    let commands: Vec<String> = t
        .records()
        .iter()
        .filter_map(|r| match &r.record {
            TransportRecord::AdminChange { command } => Some(command.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        commands,
        vec![
            format!("Remove-Item Cert:\\LocalMachine\\My\\{twin}"),
            "Retry-Queue -Identity EDGE01\\3".to_string(),
            "Restart-Service MSExchangeTransport".to_string(),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_cache_the_store_change_takes_effect_at_the_next_retry() {
    let lab = lab().await;
    let twin = lab
        .store
        .entry("twin-nokey")
        .unwrap()
        .facts
        .thumbprint
        .clone();
    let keyed = lab.store.entry("keyed").unwrap().facts.thumbprint.clone();
    let clock = lab.clock.clone();
    let resolver = lab.resolver_as("104.47.10.36:25".parse().unwrap());
    let mut d = lab.memory(peer());
    let mut t = lab.transport(pinned());
    t.config_mut().certificate_cache = CertificateCache::Disabled;
    t.submit(message(1));
    let t0 = support::t0();
    run_until(&mut t, &resolver, &mut d, &clock, t0, 10).await;
    assert_eq!(presented(&t), vec![twin.clone()]);
    assert!(t.cached_certificates().is_empty());
    t.remove_certificate(&twin, t0 + Duration::seconds(30));
    run_until(
        &mut t,
        &resolver,
        &mut d,
        &clock,
        t0 + Duration::minutes(2),
        10,
    )
    .await;
    assert_eq!(presented(&t), vec![twin, keyed]);
    assert_eq!(delivered(&t), 1);
}

#[tokio::test(start_paused = true)]
async fn a_new_tls_certificate_name_bypasses_the_cache() {
    let lab = lab().await;
    let twin = lab
        .store
        .entry("twin-nokey")
        .unwrap()
        .facts
        .thumbprint
        .clone();
    let other = lab.store.entry("other").unwrap();
    let (other_thumb, other_id) = (other.facts.thumbprint.clone(), other.x509_identifier());
    let clock = lab.clock.clone();
    let resolver = lab.resolver_as("104.47.10.36:25".parse().unwrap());
    let mut d = lab.memory(peer());
    let mut t = lab.transport(pinned());
    t.submit(message(1));
    let t0 = support::t0();
    run_until(&mut t, &resolver, &mut d, &clock, t0, 10).await;

    // the twin is removed and the connector "updated" with the same identifier: still cached
    t.remove_certificate(&twin, t0 + Duration::seconds(20));
    let same = pinned();
    t.set_send_connector(same, "Set-SendConnector (same value)".into(), t0);
    run_until(
        &mut t,
        &resolver,
        &mut d,
        &clock,
        t0 + Duration::minutes(1),
        10,
    )
    .await;
    assert_eq!(presented(&t).last(), Some(&twin));

    // a new identifier is a new cache key: selected from the store as it is now
    let mut c = pinned();
    c.tls_certificate_name = Some(other_id.clone());
    let now = clock.now();
    t.set_send_connector(
        c,
        format!("Set-SendConnector -TlsCertificateName {other_id}"),
        now,
    );
    run_until(
        &mut t,
        &resolver,
        &mut d,
        &clock,
        t0 + Duration::minutes(2),
        10,
    )
    .await;
    assert_eq!(presented(&t).last(), Some(&other_thumb));
    assert_eq!(delivered(&t), 1);
    let keys: Vec<&str> = t
        .cached_certificates()
        .iter()
        .map(|c| c.identifier.as_str())
        .collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[1], other_id);
}

#[tokio::test(start_paused = true)]
async fn an_installed_certificate_is_enumerated_where_asked() {
    let lab = lab().await;
    let mut store = lab.store;
    let keyed = store.entry("keyed").unwrap().facts.thumbprint.clone();
    let e = store.remove(&keyed).unwrap();
    let mut t = Transport::new(
        hybridlab_onprem::transport::TransportConfig::new(pinned()),
        Arc::new(store),
    );
    t.install_certificate(e, 0, support::t0());
    let names: Vec<&str> = t.store().my().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, vec!["keyed", "twin-nokey", "other"]);
    assert_eq!(t.store().entry("keyed").unwrap().enumeration_index, 0);
    assert!(matches!(
        &t.records()[0].record,
        TransportRecord::AdminChange { command } if command.starts_with("Import-PfxCertificate")
    ));
}

// ---------------------------------------------------------------------------------------------
// The rules on hand-written bundles
// ---------------------------------------------------------------------------------------------

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../diagnose/tests/samples")
}

#[test]
fn cached_certificate_sample() {
    let r = diagnose_paths(
        &[samples().join("fm34-cached-certificate")],
        &Options::default(),
    )
    .unwrap();
    assert_eq!(
        r.top_id(),
        Some("cert-cached-after-change"),
        "{:?}",
        r.ids()
    );
    let f = r.top().unwrap();
    // the most recent session's thumbprint line leads the evidence
    assert_eq!(f.evidence[0].file, "SEND20190502-1.LOG");
    assert!(
        f.evidence[0]
            .text
            .contains("3D1F0A6B9C2E8D4F7A5B1C0E9D8F6A4B2C7E5D31,Certificate thumbprint")
    );
    assert!(f.evidence[0].text.starts_with("2019-05-02T07:02:14"));
    assert!(f.explanation.contains("no longer contains"));
    assert!(
        f.fix
            .iter()
            .any(|l| l == "Restart-Service MSExchangeTransport")
    );
    assert!(f.fix.iter().any(|l| l == "Retry-Queue -Identity EDGE01\\3"));
    assert!(
        f.fix
            .iter()
            .any(|l| l.contains("78E1BE82F683EE6D8CB9B9266FC1185AE0890C41"))
    );
    // "remove the twin" would be stale advice: the twin is gone
    for gone in [
        FindingId::CertKeylessDuplicate,
        FindingId::CertMissingPrivateKey,
        FindingId::CertInvisibleToEms,
        FindingId::ConnectionTimeout,
    ] {
        assert!(r.find(gone).is_none(), "{gone} in {:?}", r.ids());
    }
}

/// Never on a bundle where the presented certificate is still in the store (the classic FM-01
/// samples above all) or where nothing changed.
#[test]
fn cached_certificate_rule_stays_silent_on_every_other_sample() {
    let mut checked = 0;
    for e in std::fs::read_dir(samples()).unwrap() {
        let p = e.unwrap().path();
        if !p.join("expected.toml").is_file() || p.ends_with("fm34-cached-certificate") {
            continue;
        }
        let r = diagnose_paths(&[&p], &Options::default()).unwrap();
        for id in [
            FindingId::CertCachedAfterChange,
            FindingId::CertFailureRecovered,
        ] {
            assert!(r.find(id).is_none(), "{}: {:?}", p.display(), r.ids());
        }
        checked += 1;
    }
    assert!(checked >= 20, "{checked} samples");
    let r = diagnose_paths(
        &[samples().join("fm01-keyless-duplicate")],
        &Options::default(),
    )
    .unwrap();
    assert_eq!(r.top_id(), Some("cert-keyless-duplicate"));
}
