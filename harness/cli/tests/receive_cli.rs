//! `hybridlab receive --listen 127.0.0.1:0`: the process prints its bound address and the CA
//! path (read from stdout, no sleeps); a Rust client sees Exchange's banner and EHLO list, runs
//! STARTTLS verifying `mail.contoso.com` with the CA from `--ca-out`, presents the Exchange Online
//! client certificate from `--client-cert-out` and delivers a message; after SIGINT the RECV log
//! and listings are in `--out`. openssl and swaks checks run when the tools are installed (and
//! are required when `CI=1`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

struct Server {
    child: Child,
    addr: String,
    ca: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `hybridlab receive` and reads its start-up lines.
fn start(dir: &Path) -> Server {
    let ca = dir.join("ca.pem");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hybridlab"))
        .args(["receive", "--listen", "127.0.0.1:0", "--ca-out"])
        .arg(&ca)
        .arg("--out")
        .arg(dir.join("out"))
        .arg("--client-cert-out")
        .arg(dir.join("client"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .strip_prefix("hybridlab receive listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    let second = lines.next().unwrap().unwrap();
    assert_eq!(second, format!("lab CA: {}", ca.display()));
    // Keep reading in the background so the process never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, addr, ca }
}

/// Reads one (possibly multi-line) SMTP reply.
fn reply(r: &mut impl BufRead) -> String {
    let mut all = String::new();
    for _ in 0..64 {
        let mut line = String::new();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "connection closed after {all:?}"
        );
        all.push_str(&line);
        if line.as_bytes().get(3) == Some(&b' ') {
            return all;
        }
    }
    panic!("reply too long: {all}");
}

fn pem_certs(path: &Path) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_file_iter(path)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn rust_client_gets_banner_ehlo_and_starttls_with_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&server.ca), 0o644);
        assert_eq!(mode(&dir.path().join("client/exo-client.key")), 0o600);
    }
    let tcp = TcpStream::connect(&server.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut r = BufReader::new(tcp.try_clone().unwrap());
    let mut w = tcp.try_clone().unwrap();
    let banner = reply(&mut r);
    assert!(
        banner.starts_with("220 mail.contoso.com Microsoft ESMTP MAIL Service ready at "),
        "{banner}"
    );
    w.write_all(b"EHLO NAM12-DM6-obe.outbound.protection.outlook.com\r\n")
        .unwrap();
    let ehlo = reply(&mut r);
    assert!(
        ehlo.starts_with("250-mail.contoso.com Hello [127.0.0.1]\r\n250-SIZE 37748736\r\n"),
        "{ehlo}"
    );
    for k in [
        "250-STARTTLS\r\n",
        "250-X-ANONYMOUSTLS\r\n",
        "250-X-EXPS GSSAPI NTLM\r\n",
        "250 XRDST\r\n",
    ] {
        assert!(ehlo.contains(k), "{k} missing in {ehlo}");
    }
    w.write_all(b"STARTTLS\r\n").unwrap();
    assert_eq!(reply(&mut r), "220 2.0.0 SMTP server ready\r\n");

    let mut roots = rustls::RootCertStore::empty();
    for c in pem_certs(&server.ca) {
        roots.add(c).unwrap();
    }
    let client_chain = pem_certs(&dir.path().join("client/exo-client.pem"));
    let key = {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::PrivateKeyDer::from_pem_file(dir.path().join("client/exo-client.key"))
            .unwrap()
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(client_chain, key)
        .unwrap();
    let conn =
        rustls::ClientConnection::new(Arc::new(config), "mail.contoso.com".try_into().unwrap())
            .unwrap();
    drop(r);
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"EHLO NAM12-DM6-obe.outbound.protection.outlook.com\r\n")
        .unwrap();
    let mut tr = BufReader::new(tls);
    let ehlo2 = reply(&mut tr);
    assert!(!ehlo2.contains("STARTTLS"), "{ehlo2}");
    assert!(
        ehlo2.ends_with("250 XOORG\r\n"),
        "the EXO certificate earns XOORG: {ehlo2}"
    );
    let msg = "MAIL FROM:<alice@contoso.com>\r\nRCPT TO:<bob@contoso.com>\r\nDATA\r\n";
    tr.get_mut().write_all(msg.as_bytes()).unwrap();
    assert_eq!(reply(&mut tr), "250 2.1.0 Sender OK\r\n");
    assert_eq!(reply(&mut tr), "250 2.1.5 Recipient OK\r\n");
    assert!(reply(&mut tr).starts_with("354 "));
    tr.get_mut()
        .write_all(b"X-MS-Exchange-CrossPremises-AuthAs: Internal\r\nSubject: hi\r\n\r\nhello\r\n.\r\nQUIT\r\n")
        .unwrap();
    assert!(reply(&mut tr).starts_with("250 2.6.0 <"));
    assert_eq!(
        reply(&mut tr),
        "221 2.0.0 Service closing transmission channel\r\n"
    );

    stop(&mut server);
    let out = dir.path().join("out");
    let log = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("RECV"))
        .expect("a RECV log");
    let text = std::fs::read_to_string(log).unwrap();
    assert!(text.contains("#Log-type: SMTP Receive Protocol Log"));
    assert!(text.contains("EXCH01\\Default Frontend EXCH01"));
    assert!(text.contains("TlsDomainCapabilities='AcceptCloudServicesMail'; Status='Success'; Domain='mail.protection.outlook.com'"), "{text}");
    let listing = std::fs::read_to_string(out.join("Get-ReceiveConnector.txt")).unwrap();
    // Format-List wraps long values under the value column: join the wrapped lines.
    let listing: String = listing.split_whitespace().collect();
    assert!(
        listing.contains("{mail.protection.outlook.com:AcceptCloudServicesMail}"),
        "{listing}"
    );
    let messages = std::fs::read_to_string(out.join("messages.json")).unwrap();
    assert!(
        messages.contains("\"cross_premises\": \"honoured\""),
        "{messages}"
    );
}

/// SIGINT, then wait (bounded) for the process to write its files and exit 0.
fn stop(server: &mut Server) {
    let ok = Command::new("kill")
        .args(["-INT", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    for _ in 0..600 {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            let mut err = String::new();
            if let Some(mut e) = server.child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            assert!(err.contains("wrote"), "stderr: {err}");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("hybridlab receive did not exit within 30 s of SIGINT");
}

fn tool(name: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CI").ok().as_deref() != Some("1")
                && std::env::var("CI").ok().as_deref() != Some("true"),
            "{name} is required in CI"
        );
        eprintln!("skipped: {name} is not installed");
    }
    found
}

#[test]
fn openssl_sees_the_mail_contoso_com_certificate() {
    if !tool("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &server.addr,
            "-starttls",
            "smtp",
            "-verify_hostname",
            "mail.contoso.com",
            "-CAfile",
        ])
        .arg(&server.ca)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("CN = mail.contoso.com"), "{text}");
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
}

#[test]
fn swaks_delivers_over_tls() {
    if !tool("swaks") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let (host, port) = server.addr.rsplit_once(':').unwrap();
    let out = Command::new("swaks")
        .args([
            "--server",
            host,
            "--port",
            port,
            "--tls",
            "--tls-verify",
            "--tls-ca-path",
        ])
        .arg(&server.ca)
        .args([
            "--tls-sni",
            "mail.contoso.com",
            "--from",
            "alice@contoso.com",
            "--to",
            "bob@contoso.com",
            "--timeout",
            "30",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("220 mail.contoso.com Microsoft ESMTP MAIL Service ready at"),
        "{text}"
    );
    assert!(text.contains("250 2.6.0"), "{text}");
}

#[test]
fn non_loopback_listen_and_unknown_scenario_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_hybridlab"))
        .args(["receive", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-remote"));
    let out = Command::new(env!("CARGO_BIN_EXE_hybridlab"))
        .args([
            "receive",
            "--listen",
            "127.0.0.1:0",
            "--scenario",
            "no-such-scenario",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-scenario"), "{err}");
}
