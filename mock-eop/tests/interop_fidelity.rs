//! Fidelity with the real EOP MX, checked with real clients against `mock-eop serve`:
//! - openssl completes a TLS 1.2 handshake with `ECDHE-RSA-AES256-GCM-SHA384` and sees an
//!   RSA-2048 certificate (EOP's suites and key: the domain reference, sections 4.3 and 11.6;
//!   <https://learn.microsoft.com/en-us/purview/technical-reference-details-about-encryption>);
//!   an ECDSA-only cipher list and a TLS 1.3-only client fail, as they would against EOP;
//! - swaks greeting with HELO (`--protocol SMTP`) gets `250 <host> Hello [ip]`, and a bare `HELO`
//!   without an argument gets the same (swaks always sends an argument, so the bare form is
//!   checked over a plain socket).
//!
//! The tool checks skip (with a notice) when a tool is missing, unless CI is set.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::have_program;

const BIN: &str = env!("CARGO_BIN_EXE_mock-eop");

/// `mock-eop serve` on a loopback port; killed when dropped, however the test ends.
struct Serve {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `mock-eop serve` with the embedded contoso tenant and reads its address from stdout.
fn serve() -> Serve {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--seed", "3"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let mut addr = None;
    for _ in 0..100 {
        line.clear();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(a) = line.trim().strip_prefix("mock-eop listening on ") {
            addr = Some(a.parse().unwrap());
            break;
        }
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = out.read_to_end(&mut sink);
    });
    Serve {
        child,
        addr: addr.expect("mock-eop announced its address"),
    }
}

/// `openssl s_client -starttls smtp` with `extra` arguments; stdout and stderr together.
fn s_client(addr: SocketAddr, extra: &[&str]) -> (bool, String) {
    let out = Command::new("timeout")
        .args(["-k", "5", "30", "openssl", "s_client", "-connect"])
        .arg(addr.to_string())
        .args([
            "-starttls",
            "smtp",
            "-servername",
            "mail.protection.outlook.com",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn openssl_ecdhe_rsa_tls12_handshake_sees_an_rsa_2048_certificate() {
    if !have_program("openssl") {
        return;
    }
    let s = serve();
    let (ok, text) = s_client(
        s.addr,
        &["-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384"],
    );
    assert!(ok, "{text}");
    assert!(
        text.contains("Cipher is ECDHE-RSA-AES256-GCM-SHA384"),
        "{text}"
    );
    assert!(text.contains("Server public key is 2048 bit"), "{text}");
    assert!(text.contains("CN = mail.protection.outlook.com"), "{text}");

    // What EOP refuses, the mock refuses: an ECDSA-only list (the certificate is RSA) and TLS
    // 1.3 (off by default, as Microsoft's encryption reference says).
    let (ok, text) = s_client(
        s.addr,
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"],
    );
    assert!(!ok || !text.contains("Cipher is ECDHE"), "{text}");
    let (ok, text) = s_client(s.addr, &["-tls1_3"]);
    assert!(!ok || !text.contains("TLSv1.3"), "{text}");
    assert!(!text.contains("Server public key is"), "{text}");
}

#[test]
fn swaks_helo_gets_250() {
    if !have_program("swaks") {
        return;
    }
    let s = serve();
    let out = Command::new("timeout")
        .args(["-k", "5", "30", "swaks", "--server", "127.0.0.1", "--port"])
        .arg(s.addr.port().to_string())
        .args([
            "--protocol",
            "SMTP",
            "--helo",
            "edge01.contoso.com",
            "--quit-after",
            "helo",
            "--timeout",
            "15",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains(" -> HELO edge01.contoso.com"), "{text}");
    assert!(
        text.contains("<-  250 AMS0EPF0000019A.mail.protection.outlook.com Hello [127.0.0.1]"),
        "{text}"
    );
}

#[test]
fn bare_helo_and_unbracketed_mail_from_are_accepted() {
    let s = serve();
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut line = String::new();
    let mut read = |r: &mut BufReader<TcpStream>| {
        line.clear();
        r.read_line(&mut line).unwrap();
        line.trim_end().to_string()
    };
    assert!(read(&mut r).starts_with("220 "));
    c.write_all(b"HELO\r\n").unwrap();
    assert_eq!(
        read(&mut r),
        "250 AMS0EPF0000019A.mail.protection.outlook.com Hello [127.0.0.1]"
    );
    c.write_all(b"MAIL FROM: alice@contoso.com\r\n").unwrap();
    assert_eq!(read(&mut r), "250 2.1.0 Sender OK");
    c.write_all(b"XYZZY\r\n").unwrap();
    assert_eq!(read(&mut r), "500 5.3.3 Unrecognized command 'XYZZY'");
    c.write_all(b"QUIT\r\n").unwrap();
    assert!(read(&mut r).starts_with("221 2.0.0"));
}
