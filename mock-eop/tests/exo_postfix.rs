//! Interop of `mock-eop deliver` (Exchange Online's sending side) with Postfix as the receiving
//! server: a private instance (own config, queue and log under a temporary directory) listens on
//! a loopback port and discards what it accepts. With STARTTLS (a lab certificate for
//! `mail.contoso.com`, asking for a client certificate): delivered with the right TlsDomain,
//! SubjectMismatch with a wrong one. Without STARTTLS: `451 5.7.3` under DomainValidation,
//! delivered in clear through an opportunistic connector.
//!
//! Needs root (a Postfix instance with its own config directory). Skips with a notice when
//! Postfix is missing or the test is not root, unless CI is set. The system-wide Postfix is never
//! touched: every command gets `-c <dir>`. `postfix start` returns once the master daemon has
//! bound its listeners, so no readiness polling is needed.

mod common;
mod exo_stub;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{have_program, run_program, write_file};
use exo_stub::OnPremPki;

const BIN: &str = env!("CARGO_BIN_EXE_mock-eop");

/// Stops the instance when the test ends, however it ends.
struct Instance {
    conf: PathBuf,
    log: PathBuf,
    port: u16,
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

fn master_cf(port: u16) -> String {
    format!(
        "\
127.0.0.1:{port} inet n - n - - smtpd
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
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"
    )
}

fn main_cf(dir: &Path, tls: bool) -> String {
    let d = dir.display();
    let tls = if tls {
        format!(
            "smtpd_tls_security_level = may\nsmtpd_tls_cert_file = {d}/server.pem\nsmtpd_tls_key_file = {d}/server.key\nsmtpd_tls_ask_ccert = yes\nsmtpd_tls_loglevel = 1\n"
        )
    } else {
        "smtpd_tls_security_level = none\n".to_string()
    };
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
syslog_name = postfix-hybridlab-exo
maillog_file = {d}/postfix.log
maillog_file_prefixes = /var, /dev/stdout, {d}
myhostname = mail.contoso.com
mydomain = contoso.com
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relay_domains = contoso.com
relay_recipient_maps =
relay_transport = discard:
default_transport = discard:
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtputf8_enable = no
biff = no
{tls}"
    )
}

async fn postfix(args: &[&str], conf: &Path) -> std::process::Output {
    let mut v: Vec<String> = vec!["postfix".into(), "-c".into(), conf.display().to_string()];
    v.extend(args.iter().map(|s| s.to_string()));
    run_program(v, 60).await
}

/// A started private Postfix on a free loopback port.
async fn start(pki: &OnPremPki, tls: bool) -> Instance {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    // The Postfix daemons (user postfix) must be able to traverse the directory.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let d = dir.path().to_path_buf();
    let conf = d.join("etc");
    for sub in ["etc", "queue", "data"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    write_file(&d.join("server.pem"), &pki.leaf.cert_pem(), false);
    write_file(&d.join("server.key"), &pki.leaf.key_pem(), true);
    write_file(&conf.join("main.cf"), &main_cf(&d, tls), false);
    write_file(&conf.join("master.cf"), &master_cf(port), false);
    let instance = Instance {
        conf: conf.clone(),
        log: d.join("postfix.log"),
        port,
        _dir: dir,
    };
    let _ = postfix(&["set-permissions", "create-missing"], &conf).await;
    let check = postfix(&["check"], &conf).await;
    assert!(check.status.success(), "postfix check: {check:?}");
    let started = postfix(&["start"], &conf).await;
    assert!(started.status.success(), "postfix start: {started:?}");
    instance
}

async fn deliver(args: Vec<String>) -> (Option<i32>, String) {
    let mut v = vec![BIN.to_string(), "deliver".into()];
    v.extend(args);
    v.extend(["--from", "alice@contoso.com", "--rcpt", "bob@contoso.com"].map(String::from));
    let out = run_program(v, 60).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

fn skip() -> bool {
    if !have_program("postfix") {
        return true;
    }
    if !is_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the Postfix interop test needs root under CI"
        );
        eprintln!("SKIP: the Postfix interop test needs root (a private Postfix instance)");
        return true;
    }
    false
}

#[tokio::test]
async fn deliver_to_postfix_with_starttls_and_a_wrong_name() {
    if skip() {
        return;
    }
    let pki = OnPremPki::new("mail.contoso.com");
    let pf = start(&pki, true).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.root_pem()).unwrap();
    let to = format!("127.0.0.1:{}", pf.port);
    let base = |domain: &str| {
        vec![
            "--to".to_string(),
            to.clone(),
            "--trust".into(),
            ca.display().to_string(),
            "--tls-domain".into(),
            domain.into(),
            "-v".into(),
        ]
    };
    let (code, out) = deliver(base("mail.contoso.com")).await;
    let log = std::fs::read_to_string(&pf.log).unwrap_or_default();
    assert_eq!(code, Some(0), "{out}\npostfix log:\n{log}");
    assert!(
        out.contains("  Deliver  The message was successfully delivered."),
        "{out}"
    );
    assert!(out.contains("> STARTTLS"), "{out}");
    assert!(
        out.contains("< 250 2.0.0 Ok: ") && out.contains("queued as"),
        "{out}"
    );

    let (code, out) = deliver(base("wrong.contoso.com")).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "[Message=SubjectMismatch Expected Subject: wrong.contoso.com. Presented Subject: CN=mail.contoso.com, O=Contoso Ltd, L=Redmond, S=Washington, C=US. Thumbprint: {}.]",
            pki.leaf.facts.thumbprint
        )),
        "{out}"
    );
    drop(pf);
}

#[tokio::test]
async fn deliver_to_postfix_without_starttls() {
    if skip() {
        return;
    }
    let pki = OnPremPki::new("mail.contoso.com");
    let pf = start(&pki, false).await;
    let to = format!("127.0.0.1:{}", pf.port);
    let (code, out) = deliver(vec!["--to".into(), to.clone()]).await;
    let log = std::fs::read_to_string(&pf.log).unwrap_or_default();
    assert_eq!(code, Some(1), "{out}\npostfix log:\n{log}");
    assert!(
        out.contains("[Message=451 5.7.3 STARTTLS is required to send mail] [LastAttemptedServerName=127.0.0.1]"),
        "{out}"
    );

    // an opportunistic connector delivers in clear
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("eop.toml");
    std::fs::write(
        &cfg,
        r#"
[[eop.tenants]]
name = "contoso"
accepted_domains = [{ domain = "contoso.com", type = "internal_relay" }]
[[eop.tenants.outbound_connectors]]
name = "Outbound to opportunistic"
smart_hosts = ["mail.contoso.com"]
tls_settings = "none"
recipient_domains = ["contoso.com"]
"#,
    )
    .unwrap();
    let (code, out) = deliver(vec![
        "--to".into(),
        to,
        "--config".into(),
        cfg.display().to_string(),
        "-v".into(),
    ])
    .await;
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("> STARTTLS"), "{out}");
    // Postfix offers CHUNKING: BDAT
    assert!(out.contains("> BDAT "), "{out}");
}
