//! `starttls-load`: a STARTTLS load client that is not the bottleneck (loopback only).
//!
//! The same session shape and JSON line as the peers kit's `starttls_load.py`, in Rust
//! (tokio current-thread runtime, tokio-rustls with ring), so one pinned core drives several
//! thousand full handshakes per second:
//!
//! ```text
//! connect, 220, EHLO, STARTTLS, 220, full TLS handshake (no resumption), EHLO,
//! [MAIL, RCPT, DATA, <--size bytes>, "." ] x --msgs-per-conn, QUIT
//! ```
//!
//! Each command waits for its reply (no pipelining), as the Python client does. `--mode plain`
//! skips STARTTLS and the handshake (the control). The server chain is verified against
//! `--cafile` (the name checked is `--server-name`, default the host address, so the kit's
//! `server.crt` with `IP:127.0.0.1` verifies); without `--cafile` any chain is accepted but the
//! handshake signature is still checked. `--cert`/`--key` present a client certificate.
//!
//! ```text
//! starttls-load --port 2531 --count 5000 --concurrency 20 [--size 1000] [--mode starttls|plain]
//!               [--cafile ca.crt] [--server-name NAME] [--cert client.crt --key client.key]
//!               [--tls-max 1.2|1.3] [--msgs-per-conn 1] [--max-seconds 120] [--label TEXT]
//! ```
//!
//! It prints one JSON line: `sessions_ok`, `sessions_failed`, `msgs`, `wall_s`, `sessions_per_s`,
//! `msgs_per_s`, `handshake_ms_p50/p99`, `session_ms_p50/p99` (the Python client's percentile
//! rule), `client_cpu_s` (user + system CPU of this process over the load, from
//! `/proc/self/stat`), `timed_out`, and the first five `errors`. Exit status 0 when the run
//! finished (failed sessions are data), 2 on a usage error.

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use hybridlab_labkit::clock::LabClock;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Starttls,
    Plain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TlsMax {
    #[value(name = "1.2")]
    V12,
    #[value(name = "1.3")]
    V13,
}

#[derive(Debug, Parser)]
#[command(
    name = "starttls-load",
    about = "STARTTLS load client (loopback only); prints one JSON line"
)]
struct Args {
    /// Server address (loopback only).
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Server port (required for a load run).
    #[arg(long, required_unless_present = "sign_cost")]
    port: Option<u16>,
    /// Total sessions.
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// Sessions in flight at once.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Message bytes (about); 0 = no mail transaction.
    #[arg(long, default_value_t = 1000)]
    size: usize,
    /// Messages per session.
    #[arg(long, default_value_t = 1)]
    msgs_per_conn: u32,
    /// starttls or plain (the same session without TLS).
    #[arg(long, value_enum, default_value = "starttls")]
    mode: Mode,
    /// Verify the server chain against this CA file (PEM); default: accept any chain.
    #[arg(long, value_name = "FILE")]
    cafile: Option<PathBuf>,
    /// Name verified in the server certificate (default: the host address).
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,
    /// Client certificate chain (PEM), presented in every handshake; needs --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// Private key (PEM) for --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// Highest TLS version offered.
    #[arg(long, value_enum, default_value = "1.3")]
    tls_max: TlsMax,
    /// Stop starting sessions after this many seconds.
    #[arg(long, default_value_t = 120.0)]
    max_seconds: f64,
    /// Copied into the JSON line.
    #[arg(long, default_value = "")]
    label: String,
    /// Instead of a load run: time the TLS 1.3 handshake signature with this server key (PEM)
    /// through rustls' ring provider (the floor of a ring server's full-handshake cost) and print
    /// one JSON line. `--port` is ignored.
    #[arg(long, value_name = "KEYFILE")]
    sign_cost: Option<PathBuf>,
}

/// What a failed session or setup step says.
#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("EOF waiting for {0}")]
    Eof(&'static str),
    #[error("expected {expect} got {got:?}")]
    Unexpected { expect: &'static str, got: String },
    #[error("{0} bytes arrived after the STARTTLS 220")]
    Buffered(usize),
}

#[derive(Debug, Default)]
struct Stats {
    ok: u64,
    failed: u64,
    msgs: u64,
    handshake: Vec<f64>,
    session: Vec<f64>,
    errors: Vec<String>,
}

struct Plan {
    addr: SocketAddr,
    name: ServerName<'static>,
    tls: Option<TlsConnector>,
    body: Vec<u8>,
    msgs: u32,
    clock: LabClock,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("starttls-load: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    if let Some(key) = &args.sign_cost {
        return sign_cost(key);
    }
    println!("{}", load(&args)?);
    Ok(())
}

/// One load run; the JSON line's object.
fn load(args: &Args) -> anyhow::Result<serde_json::Value> {
    if !args.host.is_loopback() {
        bail!("loopback only: {} is not a loopback address", args.host);
    }
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let Some(port) = args.port else {
        bail!("--port is required");
    };
    let tls = match args.mode {
        Mode::Starttls => Some(TlsConnector::from(Arc::new(client_config(args)?))),
        Mode::Plain => None,
    };
    let name = match &args.server_name {
        Some(n) => ServerName::try_from(n.clone()).with_context(|| format!("--server-name {n}"))?,
        None => ServerName::IpAddress(args.host.into()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    // Durations only: the lab clock on a fixed epoch reads tokio's monotonic clock.
    let clock = LabClock::starting_at(OffsetDateTime::UNIX_EPOCH);
    let plan = Rc::new(Plan {
        addr: SocketAddr::new(args.host, port),
        name,
        tls,
        body: body(args.size),
        msgs: if args.size > 0 { args.msgs_per_conn } else { 0 },
        clock: clock.clone(),
    });
    let stats = Rc::new(RefCell::new(Stats::default()));
    let cpu0 = cpu_seconds();
    let t0 = clock.now();
    let deadline = t0 + Duration::from_secs_f64(args.max_seconds.max(0.0));
    let remaining = Rc::new(RefCell::new(args.count));
    let timed_out = runtime.block_on(async {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let mut workers = Vec::with_capacity(args.concurrency);
                for _ in 0..args.concurrency {
                    let (plan, stats, remaining) =
                        (Rc::clone(&plan), Rc::clone(&stats), Rc::clone(&remaining));
                    workers.push(tokio::task::spawn_local(async move {
                        worker(&plan, &stats, &remaining, deadline).await
                    }));
                }
                let mut timed_out = false;
                for w in workers {
                    timed_out |= w.await.unwrap_or(true);
                }
                timed_out
            })
            .await
    });
    let wall = (clock.now() - t0).as_seconds_f64();
    let cpu = cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
    let s = stats.borrow();
    Ok(serde_json::json!({
        "label": args.label,
        "client": "starttls-load (rust)",
        "mode": match args.mode { Mode::Starttls => "starttls", Mode::Plain => "plain" },
        "tls_max": match args.tls_max { TlsMax::V12 => "1.2", TlsMax::V13 => "1.3" },
        "port": port,
        "concurrency": args.concurrency,
        "size": args.size,
        "msgs_per_conn": args.msgs_per_conn,
        "sessions_ok": s.ok,
        "sessions_failed": s.failed,
        "msgs": s.msgs,
        "wall_s": round(wall, 3),
        "sessions_per_s": round(s.ok as f64 / wall, 1),
        "msgs_per_s": round(s.msgs as f64 / wall, 1),
        "handshake_ms_p50": pct(&s.handshake, 50.0),
        "handshake_ms_p99": pct(&s.handshake, 99.0),
        "session_ms_p50": pct(&s.session, 50.0),
        "session_ms_p99": pct(&s.session, 99.0),
        "client_cpu_s": cpu.map(|c| round(c, 3)),
        "timed_out": timed_out,
        "errors": s.errors,
    }))
}

/// Runs sessions until none are left or the deadline passed; `true` when stopped by the deadline.
async fn worker(
    plan: &Plan,
    stats: &RefCell<Stats>,
    remaining: &RefCell<u64>,
    deadline: OffsetDateTime,
) -> bool {
    loop {
        if plan.clock.now() >= deadline {
            return *remaining.borrow() > 0;
        }
        {
            let mut r = remaining.borrow_mut();
            if *r == 0 {
                return false;
            }
            *r -= 1;
        }
        let t0 = plan.clock.now();
        let result = session(plan, stats).await;
        let took = (plan.clock.now() - t0).as_seconds_f64();
        let mut s = stats.borrow_mut();
        match result {
            Ok(hs) => {
                s.ok += 1;
                s.handshake.push(hs);
                s.session.push(took);
            }
            Err(e) => {
                s.failed += 1;
                if s.errors.len() < 5 {
                    s.errors.push(e.to_string());
                }
            }
        }
    }
}

/// One session; returns the handshake time in seconds (0 in plain mode).
async fn session(plan: &Plan, stats: &RefCell<Stats>) -> Result<f64, LoadError> {
    let stream = TcpStream::connect(plan.addr).await?;
    stream.set_nodelay(true)?;
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    reply(&mut r, &mut line, "220").await?;
    command(&mut r, &mut line, b"EHLO loadgen.example\r\n", "250").await?;
    let Some(connector) = &plan.tls else {
        transactions(plan, stats, &mut r, &mut line).await?;
        return Ok(0.0);
    };
    command(&mut r, &mut line, b"STARTTLS\r\n", "220").await?;
    if !r.buffer().is_empty() {
        return Err(LoadError::Buffered(r.buffer().len()));
    }
    let th = plan.clock.now();
    let tls = connector.connect(plan.name.clone(), r.into_inner()).await?;
    let hs = (plan.clock.now() - th).as_seconds_f64();
    let mut r = BufReader::new(tls);
    command(&mut r, &mut line, b"EHLO loadgen.example\r\n", "250").await?;
    transactions(plan, stats, &mut r, &mut line).await?;
    Ok(hs)
}

/// The mail transactions and QUIT; closes the stream (TLS: close_notify first).
async fn transactions<S: AsyncRead + AsyncWrite + Unpin>(
    plan: &Plan,
    stats: &RefCell<Stats>,
    r: &mut BufReader<S>,
    line: &mut String,
) -> Result<(), LoadError> {
    for _ in 0..plan.msgs {
        command(r, line, b"MAIL FROM:<load@example.org>\r\n", "250").await?;
        command(r, line, b"RCPT TO:<sink@example.com>\r\n", "250").await?;
        command(r, line, b"DATA\r\n", "354").await?;
        command(r, line, &plan.body, "250").await?;
        stats.borrow_mut().msgs += 1;
    }
    command(r, line, b"QUIT\r\n", "221").await?;
    let _ = r.get_mut().shutdown().await;
    Ok(())
}

async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    r: &mut BufReader<S>,
    line: &mut String,
    bytes: &[u8],
    expect: &'static str,
) -> Result<(), LoadError> {
    let w = r.get_mut();
    w.write_all(bytes).await?;
    w.flush().await?;
    reply(r, line, expect).await
}

/// Reads one (possibly multi-line) reply and checks its code.
async fn reply<S: AsyncRead + Unpin>(
    r: &mut BufReader<S>,
    line: &mut String,
    expect: &'static str,
) -> Result<(), LoadError> {
    loop {
        line.clear();
        // A reply line is short; read_line on a well-behaved server never buffers much, and the
        // mock and the peers bound their lines.
        if r.read_line(line).await? == 0 {
            return Err(LoadError::Eof(expect));
        }
        if line.len() < 4 || line.as_bytes()[3] != b'-' {
            break;
        }
    }
    if !line.starts_with(expect) {
        return Err(LoadError::Unexpected {
            expect,
            got: line.chars().take(80).collect(),
        });
    }
    Ok(())
}

/// The message: the Python client's body, byte for byte (headers, 76-character lines, ".").
fn body(size: usize) -> Vec<u8> {
    let mut b = b"From: load@example.org\r\nTo: sink@example.com\r\nSubject: load\r\n\r\n".to_vec();
    let (n, rem) = (size / 78, size % 78);
    for _ in 0..n {
        b.extend_from_slice(&[b'x'; 76]);
        b.extend_from_slice(b"\r\n");
    }
    if rem > 0 {
        b.extend(std::iter::repeat_n(b'y', rem.saturating_sub(2)));
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(b".\r\n");
    b
}

fn client_config(args: &Args) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let versions: &[&rustls::SupportedProtocolVersion] = match args.tls_max {
        TlsMax::V12 => &[&rustls::version::TLS12],
        TlsMax::V13 => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .context("TLS versions")?;
    let builder = match &args.cafile {
        Some(path) => {
            let pem = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&pem) {
                let c = c.with_context(|| format!("{}: invalid PEM", path.display()))?;
                roots
                    .add(c)
                    .with_context(|| format!("{}: not a CA certificate", path.display()))?;
            }
            if roots.is_empty() {
                bail!("{}: no CERTIFICATE block", path.display());
            }
            builder.with_root_certificates(roots)
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyChain(algorithms))),
    };
    let mut cfg = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => {
            let pem = std::fs::read(cert).with_context(|| format!("{}", cert.display()))?;
            let chain = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("{}: invalid PEM", cert.display()))?;
            let key_der = PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("{}: no usable private key", key.display()))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .context("client certificate")?
        }
        _ => builder.with_no_client_auth(),
    };
    // A full handshake every session, as the Python client does.
    cfg.resumption = rustls::client::Resumption::disabled();
    Ok(cfg)
}

/// Accepts any server chain (no `--cafile`), but still checks the handshake signature so the
/// client does the same work per handshake.
#[derive(Debug)]
struct AnyChain(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyChain {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// Signs a handshake-sized message with `key` for about a second (the scheme a TLS 1.3 server
/// would pick: RSA-PSS-SHA256 or ECDSA-P256-SHA256) and prints the cost per signature.
fn sign_cost(key: &std::path::Path) -> anyhow::Result<()> {
    let der = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("{}: no usable private key", key.display()))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&der)
        .with_context(|| format!("{}: key type not supported by ring", key.display()))?;
    let offered = [
        SignatureScheme::ECDSA_NISTP256_SHA256,
        SignatureScheme::ECDSA_NISTP384_SHA384,
        SignatureScheme::ED25519,
        SignatureScheme::RSA_PSS_SHA256,
    ];
    let signer = signing
        .choose_scheme(&offered)
        .context("no TLS 1.3 signature scheme for this key")?;
    let message = [0x20u8; 130]; // 64 spaces, the context string, a SHA-384 transcript hash
    let clock = LabClock::starting_at(OffsetDateTime::UNIX_EPOCH);
    let cpu0 = cpu_seconds();
    let t0 = clock.now();
    let mut n = 0u64;
    while n < 3 || (clock.now() - t0).as_seconds_f64() < 1.0 {
        let sig = signer.sign(&message).context("signing failed")?;
        std::hint::black_box(sig);
        n += 1;
    }
    let wall = (clock.now() - t0).as_seconds_f64();
    let cpu = cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
    let out = serde_json::json!({
        "key": key.display().to_string(),
        "scheme": format!("{:?}", signer.scheme()),
        "signatures": n,
        "wall_us_per_signature": round(wall * 1e6 / n as f64, 1),
        "cpu_us_per_signature": cpu.map(|c| round(c * 1e6 / n as f64, 1)),
    });
    println!("{out}");
    Ok(())
}

/// User + system CPU seconds of this process (`/proc/self/stat`, clock ticks of 1/100 s unless
/// the kernel says otherwise; Linux only).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// The Python client's percentile: sorted, index `min(n - 1, int(p / 100 * n))`, in ms.
fn pct(v: &[f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let i = ((p / 100.0 * v.len() as f64) as usize).min(v.len() - 1);
    Some(round(v[i] * 1000.0, 3))
}

fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_matches_the_python_client() {
        // _n, _rem = divmod(1000, 78) = (12, 64): 12 lines of 76 x, 62 y, then "."
        let b = body(1000);
        let head = b"From: load@example.org\r\nTo: sink@example.com\r\nSubject: load\r\n\r\n";
        assert!(b.starts_with(head));
        assert_eq!(b.len(), head.len() + 12 * 78 + 64 + 3);
        assert!(b.ends_with(b"yy\r\n.\r\n"));
        assert_eq!(body(78).len(), head.len() + 78 + 3);
    }

    /// Runs the client against the in-process mock (its generated EOP certificate, its lab CA).
    fn against_mock(extra: &[&str], ca_pem: Option<&str>) -> serde_json::Value {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let mock = rt.block_on(async {
            mock_eop::MockEop::builder()
                .config(
                    mock_eop::config::MockFile::from_toml(
                        include_str!("../compare/eop-bench.toml"),
                        "eop-bench.toml",
                    )
                    .unwrap()
                    .eop,
                )
                .seed(1)
                .start()
                .await
                .unwrap()
        });
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, ca_pem.map_or_else(|| mock.ca_pem(), str::to_string)).unwrap();
        let port = mock.local_addr().port().to_string();
        let mut argv = vec![
            "starttls-load",
            "--port",
            &port,
            "--count",
            "6",
            "--concurrency",
            "3",
            "--max-seconds",
            "60",
            "--cafile",
            ca.to_str().unwrap(),
            "--server-name",
            "mail.protection.outlook.com",
        ];
        argv.extend_from_slice(extra);
        let mut out = load(&Args::try_parse_from(argv).unwrap()).unwrap();
        // The mock's view: every session ended (bounded wait), and how many messages it took.
        let counts = rt.block_on(async {
            let wait = mock.wait_for_sessions(6);
            let counts = tokio::time::timeout(Duration::from_secs(30), wait).await;
            mock.shutdown().await;
            counts.expect("the mock saw six sessions end")
        });
        out["mock_messages"] = counts.messages.into();
        out
    }

    #[test]
    fn full_sessions_against_the_mock() {
        for extra in [&[][..], &["--tls-max", "1.2"], &["--mode", "plain"]] {
            let out = against_mock(extra, None);
            assert_eq!(out["sessions_ok"], 6, "{extra:?}: {out}");
            assert_eq!(out["sessions_failed"], 0, "{extra:?}: {out}");
            assert_eq!(out["msgs"], 6, "{extra:?}: {out}");
            assert_eq!(out["mock_messages"], 6, "{extra:?}: {out}");
            assert_eq!(out["timed_out"], false);
            let hs = out["handshake_ms_p50"].as_f64().unwrap();
            assert_eq!(hs > 0.0, extra != ["--mode", "plain"], "{extra:?}: {out}");
        }
    }

    #[test]
    fn an_untrusted_chain_fails_every_session() {
        // Any other CA: the mock's chain does not verify, so every session fails.
        let other = hybridlab_labkit::pki::CertAuthority::root(
            &hybridlab_labkit::pki::CertSpec::authority(
                "CN=Some Other Root".parse().unwrap(),
                time::macros::datetime!(2026-05-02 06:30:00 UTC),
            ),
        )
        .unwrap();
        let pem = hybridlab_labkit::pki::pem_encode("CERTIFICATE", &other.cert.der);
        let out = against_mock(&[], Some(&pem));
        assert_eq!(out["sessions_ok"], 0, "{out}");
        assert_eq!(out["sessions_failed"], 6, "{out}");
        assert_eq!(out["mock_messages"], 0, "{out}");
        assert!(
            out["errors"][0].as_str().unwrap().contains("UnknownIssuer"),
            "{out}"
        );
    }

    #[test]
    fn percentiles_follow_the_python_rule() {
        let v: Vec<f64> = (1..=100).map(|i| f64::from(i) / 1000.0).collect();
        assert_eq!(pct(&v, 50.0), Some(51.0));
        assert_eq!(pct(&v, 99.0), Some(100.0));
        assert_eq!(pct(&[], 50.0), None);
    }
}
