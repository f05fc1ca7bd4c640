//! `reliability`: repeats issue 12's attacks against the release `mock-eop serve` binary on
//! loopback and prints each result, with the memory and latency figures benches/README.md
//! records. Run by hand (it takes about a minute and 300 MB of loopback traffic):
//!
//! ```text
//! cargo build --release -p mock-eop -p benches
//! target/release/reliability [--bin target/release/mock-eop] [--sessions 1000]
//! ```
//!
//! Each step starts its own server (port 0, a temporary folder for the records and the CA) and
//! measures its RSS from `/proc/PID/status`; the fast checks of the same attacks are regular
//! tests in `mock-eop/tests` (durability, hostile, session_props).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const MB: usize = 1 << 20;

struct Server {
    child: Child,
    addr: SocketAddr,
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(bin: &Path, config: &str, records: bool) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let cfg = dir.path().join("eop.toml");
        std::fs::write(
            &cfg,
            format!("{}\n{config}", mock_eop::config::CONTOSO_TOML),
        )?;
        let ca = dir.path().join("ca.pem");
        let mut cmd = Command::new(bin);
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--seed",
            "1",
            "--config",
        ])
        .arg(&cfg)
        .arg("--ca-out")
        .arg(&ca)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
        if records {
            cmd.arg("--records").arg(dir.path().join("records.jsonl"));
        }
        let mut child = cmd.spawn().with_context(|| format!("{}", bin.display()))?;
        let out = child.stdout.take().context("stdout")?;
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line)?;
        let addr = line
            .trim()
            .strip_prefix("mock-eop listening on ")
            .with_context(|| format!("unexpected first line {line:?}"))?
            .parse()?;
        Ok(Self {
            child,
            addr,
            ca,
            _dir: dir,
        })
    }

    /// (VmRSS, VmHWM) in KiB.
    fn rss(&self) -> anyhow::Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok((field("VmRSS:"), field("VmHWM:")))
    }
}

/// A line-oriented SMTP client over any stream.
struct Smtp<S>(BufReader<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> Smtp<S> {
    async fn reply(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        loop {
            line.clear();
            let n = tokio::time::timeout(Duration::from_secs(60), self.0.read_line(&mut line))
                .await
                .context("reply timed out")??;
            if n == 0 {
                bail!("connection closed");
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(line.trim_end().to_string());
            }
        }
    }

    async fn cmd(&mut self, text: &str) -> anyhow::Result<String> {
        self.0.get_mut().write_all(text.as_bytes()).await?;
        self.reply().await
    }
}

async fn connect(addr: SocketAddr) -> anyhow::Result<Smtp<TcpStream>> {
    let mut c = Smtp(BufReader::new(TcpStream::connect(addr).await?));
    let banner = c.reply().await?;
    if !banner.starts_with("220 ") {
        bail!("banner {banner:?}");
    }
    Ok(c)
}

fn tls_connector(ca: &Path) -> anyhow::Result<tokio_rustls::TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca)? {
        roots.add(c?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
}

/// 1,000 idle sessions (after EHLO, or after STARTTLS and EHLO): RSS per session.
async fn idle_sessions(bin: &Path, n: usize, tls: bool) -> anyhow::Result<()> {
    let server = Server::start(bin, "", false)?;
    let (before, _) = server.rss()?;
    let connector = tls_connector(&server.ca)?;
    let name = ServerName::try_from("mail.protection.outlook.com")?;
    let mut plain = Vec::new();
    let mut secure = Vec::new();
    for _ in 0..n {
        let mut c = connect(server.addr).await?;
        c.cmd("EHLO bench.contoso.com\r\n").await?;
        if tls {
            let r = c.cmd("STARTTLS\r\n").await?;
            if !r.starts_with("220") {
                bail!("STARTTLS: {r}");
            }
            let stream = connector.connect(name.clone(), c.0.into_inner()).await?;
            let mut t = Smtp(BufReader::new(stream));
            t.cmd("EHLO bench.contoso.com\r\n").await?;
            secure.push(t);
        } else {
            plain.push(c);
        }
    }
    // One more round trip on the last session so the server has settled.
    let (after, _) = server.rss()?;
    let per = (after.saturating_sub(before)) as f64 / n as f64;
    println!(
        "idle {} sessions: {n} held, RSS {before} -> {after} KiB = {per:.1} KiB per session",
        if tls { "TLS" } else { "plain" }
    );
    Ok(())
}

/// A 100 MB BDAT flood against a 1 MB limit (and the wrap-around attack): RSS stays bounded.
async fn bdat_flood(bin: &Path) -> anyhow::Result<()> {
    let server = Server::start(bin, "[eop.limits]\nmax_message_size = 1048576\n", true)?;
    let mut c = connect(server.addr).await?;
    c.cmd("EHLO flood.example\r\n").await?;
    c.cmd("MAIL FROM:<a@gmail.example>\r\n").await?;
    c.cmd("RCPT TO:<bob@contoso.com>\r\n").await?;
    let r = c.cmd("BDAT 2\r\nab").await?;
    println!("BDAT 2: {r}");
    c.0.get_mut()
        .write_all(b"BDAT 18446744073709551614 LAST\r\n")
        .await?;
    let chunk = vec![b'x'; MB];
    let mut max_rss = 0;
    for _ in 0..100 {
        c.0.get_mut().write_all(&chunk).await?;
        max_rss = max_rss.max(server.rss()?.0);
    }
    let (rss, hwm) = server.rss()?;
    println!(
        "BDAT flood: 100 MB sent in a chunk declared 18446744073709551614 bytes against a 1 MB limit: RSS {rss} KiB, peak {hwm} KiB (sampled max {max_rss} KiB)"
    );
    Ok(())
}

/// Wall-clock time of a real-time measurement (this program measures real latency; no lab clock).
#[allow(clippy::disallowed_methods)]
fn wall() -> Instant {
    Instant::now()
}

/// Banner latency of new sessions while another session sends and records a 100 MB message.
async fn banner_latency(bin: &Path) -> anyhow::Result<()> {
    // Probes that end while the big record is written wait for the records file: their slots
    // stay taken until then, so the session caps are raised here.
    let limits = "[eop.limits]\nmax_message_size = 157286400\nmax_sessions = 15000\nmax_sessions_per_ip = 15000\n";
    let server = Server::start(bin, limits, true)?;
    let addr = server.addr;
    let big = tokio::spawn(async move {
        let mut c = connect(addr).await?;
        c.cmd("EHLO big.example\r\n").await?;
        c.cmd("MAIL FROM:<a@gmail.example>\r\n").await?;
        c.cmd("RCPT TO:<bob@contoso.com>\r\n").await?;
        let size = 100 * MB;
        c.0.get_mut()
            .write_all(format!("BDAT {size} LAST\r\nSubject: big\r\n\r\n").as_bytes())
            .await?;
        let line = vec![b'y'; 998];
        let mut sent = 15;
        while sent < size {
            let n = (size - sent).min(line.len());
            c.0.get_mut().write_all(&line[..n]).await?;
            sent += n;
        }
        let r = c.reply().await?;
        anyhow::Ok(r)
    });
    let mut lat = Vec::new();
    while !big.is_finished() {
        let t = wall();
        let mut c = connect(addr).await?;
        lat.push(t.elapsed());
        c.cmd("QUIT\r\n").await?;
    }
    let reply = big.await??;
    // The record of the big message is written after its 250: keep probing until it is done.
    for _ in 0..200 {
        let t = wall();
        let mut c = connect(addr).await?;
        lat.push(t.elapsed());
        c.cmd("QUIT\r\n").await?;
    }
    lat.sort();
    let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
    let (_, hwm) = server.rss()?;
    println!(
        "banner latency while a 100 MB message is received and recorded ({}): {} probes, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; server peak RSS {hwm} KiB",
        &reply[..reply.len().min(40)],
        lat.len(),
        p(0.5),
        p(0.99),
        p(1.0)
    );
    Ok(())
}

/// Smuggling: `<CRLF>.<CR><CR><LF>` does not end DATA.
async fn smuggling(bin: &Path) -> anyhow::Result<()> {
    let server = Server::start(bin, "", false)?;
    let mut c = connect(server.addr).await?;
    c.cmd("EHLO s.example\r\nMAIL FROM:<a@gmail.example>\r\n")
        .await?;
    c.reply().await?;
    c.cmd("RCPT TO:<bob@contoso.com>\r\n").await?;
    c.cmd("DATA\r\n").await?;
    let r = c
        .cmd("hi\r\n.\r\r\nMAIL FROM:<evil@gmail.example>\r\nRCPT TO:<bob@contoso.com>\r\nDATA\r\nsmuggled\r\n.\r\n")
        .await?;
    let next = c.cmd("QUIT\r\n").await?;
    println!("smuggling <CRLF>.<CR><CR><LF>: one message: {r}; then {next}");
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let bin = PathBuf::from(opt("--bin").unwrap_or_else(|| "target/release/mock-eop".into()));
    let n: usize = opt("--sessions")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1000);
    smuggling(&bin).await?;
    idle_sessions(&bin, n, false).await?;
    idle_sessions(&bin, n, true).await?;
    bdat_flood(&bin).await?;
    banner_latency(&bin).await?;
    std::io::stdout().flush()?;
    Ok(())
}
