//! `mock-eop`: the mock EOP endpoint as a standalone server.
//!
//! ```text
//! mock-eop serve [--config FILE] [--listen 127.0.0.1:2525] [--records FILE] [--ca-out FILE]
//!                [--cert FILE --key FILE] [--client-ca FILE]... [--seed N] [--keep N]
//!                [--api 127.0.0.1:PORT [--api-allow-remote]]
//! ```
//!
//! Without `--config` it serves an embedded contoso-like tenant (one OnPremises inbound
//! connector, `Inbound from contoso`, TlsSenderCertificateName `mail.contoso.com`). It prints the
//! bound address and the path of the lab CA, logs one line per session verdict on stderr, and
//! with `--records` appends each session record as a JSON line (flushed per session, before the
//! session's log line; SIGTERM or Ctrl-C end the process at once). Exit status 0 on a clean stop, 2 on a usage or config error.
//!
//! With `--api` it also serves the HTTP/1.1 JSON API of [`mock_eop::api`] (the kept records,
//! counts, `GET /wait`, the lab CA, faults replaced at run time) and prints `api: http://ADDR`
//! as the last start-up line. The API has no authentication: an address that is not loopback is
//! refused unless `--api-allow-remote` is given.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::{Parser, Subcommand};
use hybridlab_labkit::clock::LabClock;
use hybridlab_model::record::SessionRecord;
use mock_eop::api::Api;
use mock_eop::config::{EopConfig, MockFile};
use mock_eop::tls::ServerIdentity;
use mock_eop::{MockEop, MockEopBuilder, MockEopHandle};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

#[derive(Debug, Parser)]
#[command(
    name = "mock-eop",
    version,
    about = "A mock Exchange Online Protection SMTP endpoint"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the mock endpoint until killed.
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// TOML file with `[eop]` tables and `[[faults]]` (the scenario format); default: an
    /// embedded contoso-like tenant.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on (loopback by default).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:2525")]
    listen: SocketAddr,
    /// Append every session record as one JSON line to this file.
    #[arg(long, value_name = "FILE")]
    records: Option<PathBuf>,
    /// Write the lab CA (PEM) a client should trust here; default: a file in the temp directory.
    #[arg(long, value_name = "FILE")]
    ca_out: Option<PathBuf>,
    /// Serve this PEM certificate chain (leaf first) instead of generating one; needs --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// The private key (PEM) for --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// PEM file with roots client certificates must chain to (repeatable).
    #[arg(long = "client-ca", value_name = "FILE")]
    client_ca: Vec<PathBuf>,
    /// Seed for probabilistic faults and ids (default: from the start time).
    #[arg(long)]
    seed: Option<u64>,
    /// Finished sessions kept in memory (the records file gets all of them).
    #[arg(long, default_value_t = 10_000)]
    keep: usize,
    /// Also serve the HTTP JSON API (records, counts, waits, CA, faults) on this address.
    #[arg(long, value_name = "ADDR")]
    api: Option<SocketAddr>,
    /// Allow --api on an address that is not loopback (the API has no authentication).
    #[arg(long, requires = "api")]
    api_allow_remote: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let Command::Serve(args) = cli.command;
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mock-eop: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let (config, faults) = match &args.config {
        Some(path) => {
            let f = MockFile::from_path(path)?;
            (f.eop, f.faults)
        }
        None => (EopConfig::contoso(), Vec::new()),
    };
    let roots = client_roots(&args.client_ca)?;
    check_addresses(&args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let api_listener = match args.api {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("--api: cannot listen on {addr}"))?,
            ),
            None => None,
        };
        let mut builder = MockEop::builder()
            .config(config)
            .faults(faults)
            .trust_roots(roots)
            .listener(listener);
        builder = configure(builder, &args)?;
        let handle = Arc::new(builder.start().await?);
        let mut lines = startup_lines(&handle, &args)?;
        let api = match api_listener {
            Some(l) => {
                lines.push(format!("api: http://{}", l.local_addr()?));
                let mut api = Api::new(Arc::clone(&handle));
                if let Some(cert) = &args.cert {
                    api = api.without_lab_ca(format!(
                        "serving {}; clients trust its issuer",
                        cert.display()
                    ));
                }
                Some(api.serve(l))
            }
            None => None,
        };
        announce(&lines);
        // Serve until the process is killed.
        match api {
            Some(api) => api.await.context("the API server stopped")?,
            None => std::future::pending::<()>().await,
        }
        drop(handle);
        anyhow::Ok(())
    })
}

/// The roots client certificates must chain to: every certificate of every `--client-ca` file.
fn client_roots(files: &[PathBuf]) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let mut roots = Vec::new();
    for path in files {
        let pem =
            std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
        for c in CertificateDer::pem_slice_iter(&pem) {
            roots.push(c.with_context(|| format!("{}: invalid PEM", path.display()))?);
        }
    }
    Ok(roots)
}

/// Refuses `--api` on a non-loopback address without `--api-allow-remote`; warns about
/// non-loopback addresses that are allowed.
fn check_addresses(args: &ServeArgs) -> anyhow::Result<()> {
    if let Some(api) = args.api
        && !api.ip().is_loopback()
    {
        if !args.api_allow_remote {
            anyhow::bail!(
                "--api {api} is not a loopback address: the API has no authentication and can \
                 clear records and change faults; use 127.0.0.1, or add --api-allow-remote"
            );
        }
        tracing::warn!(api = %api, "serving the API on a non-loopback address");
    }
    if !args.listen.ip().is_loopback() {
        tracing::warn!(listen = %args.listen, "listening on a non-loopback address");
    }
    Ok(())
}

/// The rest of the builder from the arguments: the clock and seed, how many sessions to keep,
/// the served certificate, and the hook that writes records and logs each session.
fn configure(builder: MockEopBuilder, args: &ServeArgs) -> anyhow::Result<MockEopBuilder> {
    let records = match &args.records {
        Some(path) => Some(open_records(path)?),
        None => None,
    };
    let clock = LabClock::system();
    let seed = args.seed.unwrap_or_else(|| {
        let ns = clock.epoch().unix_timestamp_nanos();
        (ns as u64) ^ ((ns >> 64) as u64)
    });
    let mut builder = builder.seed(seed).clock(clock).retain_sessions(args.keep);
    if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
        builder = builder.server_identity(ServerIdentity::from_pem_files(cert, key)?);
    }
    Ok(builder.on_session(move |r| {
        // The record is written (and its headers parsed) after the session has ended, before
        // its log line, so a reader that has seen the log line finds the record in the file.
        if let Some(w) = &records {
            let mut r = r.clone();
            r.ensure_parsed();
            let mut w = w.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = writeln!(w, "{}", r.to_json_line()).and_then(|()| w.flush()) {
                tracing::error!(error = %e, "cannot write the session record");
            }
        }
        log_session(r);
    }))
}

/// The start-up lines: the address, the lab CA (written to `--ca-out` or a temp file), the
/// server certificate, the records file.
fn startup_lines(handle: &MockEopHandle, args: &ServeArgs) -> anyhow::Result<Vec<String>> {
    let addr = handle.local_addr();
    let mut lines = vec![format!("mock-eop listening on {addr}")];
    if let Some(cert) = &args.cert {
        lines.push(format!(
            "lab CA: none (serving {}; clients trust its issuer)",
            cert.display()
        ));
    } else {
        let ca_path = args.ca_out.clone().unwrap_or_else(|| {
            std::env::temp_dir()
                .join(format!("mock-eop-{}", addr.port()))
                .join("lab-ca.pem")
        });
        if let Some(dir) = ca_path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
        }
        std::fs::write(&ca_path, handle.ca_pem())
            .with_context(|| format!("{}: cannot write", ca_path.display()))?;
        lines.push(format!("lab CA: {}", ca_path.display()));
    }
    lines.push(format!(
        "server certificate: {} (thumbprint {})",
        handle.server_certificate().subject,
        handle.server_certificate().thumbprint
    ));
    if let Some(p) = &args.records {
        lines.push(format!("records: {}", p.display()));
    }
    Ok(lines)
}

/// Prints the start-up lines on stdout. A reader that has gone away (a closed pipe: a test that read
/// the address and stopped reading, `mock-eop serve | head -1`) must not stop the server, so write
/// errors are logged, not returned.
fn announce(lines: &[String]) {
    let mut out = std::io::stdout().lock();
    let result = lines
        .iter()
        .try_for_each(|l| writeln!(out, "{l}"))
        .and_then(|()| out.flush());
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot write the start-up lines to stdout; serving anyway");
    }
}

/// One line per session on stderr: peer, TLS, client certificate, verdict, messages, close.
fn log_session(r: &SessionRecord) {
    // The strings below cost more than the check (RUST_LOG=warn in load tests).
    if !tracing::enabled!(tracing::Level::INFO) {
        return;
    }
    let tls = r.tls.as_ref().map(|t| t.version.as_str()).unwrap_or("none");
    let cert = r
        .tls
        .as_ref()
        .and_then(|t| t.client_certificate.as_ref())
        .map(|c| format!("{} ({})", c.leaf.subject, c.verdict))
        .unwrap_or_else(|| "none".into());
    let verdict = r
        .attribution
        .as_ref()
        .map(|v| v.to_string())
        .unwrap_or_else(|| "none".into());
    tracing::info!(
        "session {} from {} tls={} client_cert={} verdict={} messages={} close={:?}",
        r.session_id,
        r.peer,
        tls,
        cert,
        verdict,
        r.messages.len(),
        r.close_reason
    );
}

/// The records file, opened for appending.
fn open_records(path: &Path) -> anyhow::Result<Mutex<std::io::BufWriter<std::fs::File>>> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("{}: cannot open for writing", path.display()))?;
    Ok(Mutex::new(std::io::BufWriter::new(file)))
}
