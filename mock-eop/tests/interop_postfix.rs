//! Interop with Postfix as a sending MTA: a private instance (own config, queue and log under a
//! temporary directory, no listener of its own) relays through the in-process mock with
//! `relayhost = [127.0.0.1]:<port>`, `smtp_tls_security_level = encrypt` and a client
//! certificate; the mock must record the message as attributed to the on-prem connector.
//!
//! Needs root (a Postfix instance with its own config directory). Skips with a notice when
//! Postfix is missing or the test is not root, unless CI is set. The system-wide Postfix is never
//! touched: every command gets `-c <dir>` / `-C <dir>`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use hybridlab_model::attribution::{AttributedBy, AttributionVerdict};

/// Stops the instance when the test ends, however it ends.
struct Instance {
    conf: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = std::process::Command::new("timeout")
            .args(["-k", "5", "30", "postfix", "-c"])
            .arg(&self.conf)
            .arg("stop")
            .output();
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

const MASTER_CF: &str = "\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
";

fn main_cf(dir: &Path, port: u16) -> String {
    let d = dir.display();
    format!(
        "\
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-hybridlab-test
maillog_file = {d}/postfix.log
maillog_file_prefixes = /var, /dev/stdout, {d}
myhostname = edge01.contoso.com
mydomain = contoso.com
myorigin = $myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
biff = no
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtputf8_enable = no
relayhost = [127.0.0.1]:{port}
default_transport = smtp
relay_transport = smtp
smtp_tls_security_level = encrypt
smtp_tls_cert_file = {d}/client.pem
smtp_tls_key_file = {d}/client.key
smtp_tls_CAfile = {d}/ca.pem
smtp_tls_loglevel = 1
smtp_connect_timeout = 5s
smtp_helo_timeout = 8s
smtp_starttls_timeout = 8s
queue_run_delay = 10s
minimal_backoff_time = 10s
maximal_backoff_time = 30s
maximal_queue_lifetime = 10m
bounce_queue_lifetime = 10m
"
    )
}

async fn postfix(args: &[&str], conf: &Path) -> std::process::Output {
    let mut v: Vec<String> = vec!["postfix".into(), "-c".into(), conf.display().to_string()];
    v.extend(args.iter().map(|s| s.to_string()));
    run_program(v, 60).await
}

#[tokio::test]
async fn postfix_relays_with_encrypt_and_a_client_certificate() {
    if !have_program("postfix") {
        return;
    }
    if !is_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the Postfix interop test needs root under CI"
        );
        eprintln!("SKIP: the Postfix interop test needs root (a private Postfix instance)");
        return;
    }
    let ca = onprem_ca();
    let mock = start(lab_tenants(), vec![], vec![ca.cert.der.clone()]).await;
    let port = mock.local_addr().port();

    let dir = tempfile::tempdir().unwrap();
    // The Postfix daemons (user postfix) must be able to traverse the directory.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let d = dir.path().to_path_buf();
    let conf = d.join("etc");
    for sub in ["etc", "queue", "data"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    let cert = client_cert(&ca, "mail.contoso.com");
    write_file(&d.join("client.pem"), &cert.cert_pem(), false);
    write_file(&d.join("client.key"), &cert.key_pem(), true);
    write_file(&d.join("ca.pem"), &mock.ca_pem(), false);
    write_file(&conf.join("main.cf"), &main_cf(&d, port), false);
    write_file(&conf.join("master.cf"), MASTER_CF, false);
    let instance = Instance {
        conf: conf.clone(),
        log: d.join("postfix.log"),
        _dir: dir,
    };

    let _ = postfix(&["set-permissions", "create-missing"], &conf).await;
    let check = postfix(&["check"], &conf).await;
    assert!(check.status.success(), "postfix check: {check:?}");
    let started = postfix(&["start"], &conf).await;
    assert!(started.status.success(), "postfix start: {started:?}");

    let msg = "From: erin@contoso.com\nTo: someone@gmail.example\nSubject: postfix relay through the mock\nX-MS-Exchange-CrossPremises-AuthAs: Internal\n\nrelayed by postfix via STARTTLS + client certificate\n";
    let eml = d.join("msg.eml");
    write_file(&eml, msg, false);
    let sent = run_program(
        vec![
            "sh".into(),
            "-c".into(),
            format!(
                "sendmail -C '{}' -f erin@contoso.com someone@gmail.example < '{}'",
                conf.display(),
                eml.display()
            ),
        ],
        30,
    )
    .await;
    assert!(sent.status.success(), "sendmail: {sent:?}");

    let delivered = tokio::time::timeout(Duration::from_secs(90), mock.wait_for_messages(1)).await;
    let log = std::fs::read_to_string(&instance.log).unwrap_or_default();
    assert!(
        delivered.is_ok(),
        "no message reached the mock; postfix log:\n{log}"
    );
    let m = &mock.messages()[0];
    assert_eq!(
        m.attribution,
        AttributionVerdict::Attributed {
            tenant: "contoso".into(),
            connector: "Inbound from contoso".into(),
            by: AttributedBy::Certificate
        }
    );
    assert!(m.tls);
    assert_eq!(m.mail_from, "erin@contoso.com");
    assert_eq!(m.rcpt_to, vec!["someone@gmail.example"]);
    let parsed = m.parsed.as_ref().unwrap();
    assert_eq!(
        parsed.subject.as_deref(),
        Some("postfix relay through the mock")
    );
    assert_eq!(parsed.cross_premises.len(), 1);
    drop(instance);
    let recs = tokio::time::timeout(BOUND, mock.shutdown()).await.unwrap();
    let r = recs.iter().find(|r| !r.messages.is_empty()).unwrap();
    assert_eq!(r.helo.as_deref(), Some("edge01.contoso.com"));
    let cc = r.tls.as_ref().unwrap().client_certificate.as_ref().unwrap();
    assert!(cc.verdict.is_valid());
}
