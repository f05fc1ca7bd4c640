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
//! with `--records` appends a JSON line per accepted message **before** its `250` (fsynced unless
//! `--no-fsync`) and each complete session record when the session ends ([`mock_eop::records`]; a
//! torn last line left by a crash is cut at start, with a warning). SIGTERM or SIGINT stop it
//! cleanly: no new connections, `421 4.3.2` to idle sessions, sessions in DATA/BDAT finish their
//! message (within `limits.shutdown_grace`), records flushed, then `stopped` on stdout and exit 0.
//! Without `--ca-out` the lab CA goes to a fresh private (0700) directory, removed on a clean
//! stop. Exit status 0 on a clean stop, 2 on a usage or config error.
//!
//! ```text
//! mock-eop deliver --to HOST:PORT --from A --rcpt B [--config FILE] [--connector NAME]
//!                  [--tls-domain D] [--trust PEM]... [--subject S] [--records FILE]
//!                  [--retry-for DURATION [--retry-interval DURATION]] [--source IP]
//!                  [--client-ca-out FILE] [--seed N] [-v]
//! ```
//!
//! `deliver` sends one message as Exchange Online would through the named (or only, or first
//! OnPremises) outbound connector of the config (default: the embedded contoso tenant with the
//! connector HCW creates: smart host `mail.contoso.com`, DomainValidation, TlsDomain
//! `mail.contoso.com`), to HOST:PORT instead of the connector's smart hosts (HOST: an address or
//! `localhost`; names are not resolved). `--tls-domain` overrides TlsDomain (and sets
//! DomainValidation); `--trust` gives the trust anchors for certificate validation (default: the
//! system bundle `/etc/ssl/certs/ca-certificates.crt` when present). It prints the message trace
//! events after `Submit` the way `Get-MessageTraceDetail` shows them (`<date>  Deliver  The
//! message was successfully delivered.`, or `<date>  Defer  Reason: [{LED=450 4.4.317 ...}]...`)
//! and exits 0 when delivered, 1 when deferred or failed, 2 on a usage error. One attempt unless
//! `--retry-for` keeps retrying (real time). `-v` prints each attempt's transcript on stderr.
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
use hybridlab_model::timespan::TimeSpan;
use hybridlab_model::trace::{TraceEventKind, TraceStatus};
use mock_eop::api::Api;
use mock_eop::config::{EopConfig, MockFile};
use mock_eop::exo::standalone::{self, DeliverOptions};
use mock_eop::exo::trace_line;
use mock_eop::records::{RecordsFile, write_file_nofollow};
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
    /// Deliver one message as Exchange Online would, through an outbound connector.
    Deliver(DeliverArgs),
}

#[derive(Debug, clap::Args)]
struct DeliverArgs {
    /// The receiving server, HOST:PORT (an IP address or localhost).
    #[arg(long, value_name = "HOST:PORT")]
    to: String,
    /// TOML file with `[eop]` tables (outbound connectors, `[eop.delivery]`); default: the
    /// embedded contoso tenant.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The outbound connector to use; default: the only or first OnPremises one.
    #[arg(long, value_name = "NAME")]
    connector: Option<String>,
    /// Override TlsDomain (implies TlsSettings DomainValidation).
    #[arg(long, value_name = "DOMAIN")]
    tls_domain: Option<String>,
    /// PEM file of trust anchors for certificate validation (repeatable).
    #[arg(long, value_name = "PEM")]
    trust: Vec<PathBuf>,
    /// Envelope sender.
    #[arg(long, value_name = "ADDRESS")]
    from: String,
    /// Recipient.
    #[arg(long, value_name = "ADDRESS")]
    rcpt: String,
    /// Subject.
    #[arg(long, default_value = "mock-eop deliver")]
    subject: String,
    /// Append the message's record (trace and attempts) as one JSON line to this file.
    #[arg(long, value_name = "FILE")]
    records: Option<PathBuf>,
    /// Keep retrying for this long (`30s`, `5m`, `00:10:00`); default: one attempt.
    #[arg(long, value_name = "DURATION")]
    retry_for: Option<TimeSpan>,
    /// Time between retries (default: the config's `[eop.delivery]`).
    #[arg(long, value_name = "DURATION", requires = "retry_for")]
    retry_interval: Option<TimeSpan>,
    /// Connect from this loopback address (127.0.0.x).
    #[arg(long, value_name = "IP")]
    source: Option<std::net::IpAddr>,
    /// Write the root of EOP's client certificate (PEM) here, for the receiver to trust.
    #[arg(long, value_name = "FILE")]
    client_ca_out: Option<PathBuf>,
    /// Seed for GUIDs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print each attempt's transcript on stderr.
    #[arg(short, long)]
    verbose: bool,
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
    /// Message bytes kept in memory at most (oldest records dropped first; `--records` gets all).
    #[arg(long, value_name = "BYTES", default_value_t = 256 << 20)]
    keep_bytes: u64,
    /// Do not fsync the records file after each line (faster; a power loss may lose records).
    #[arg(long, requires = "records")]
    no_fsync: bool,
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
    let result = match cli.command {
        Command::Serve(args) => serve(args).map(|()| ExitCode::SUCCESS),
        Command::Deliver(args) => deliver(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mock-eop: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The system's CA bundle, used when `deliver` gets no `--trust`.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

fn read_pem_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    CertificateDer::pem_slice_iter(&pem)
        .map(|c| c.with_context(|| format!("{}: invalid PEM", path.display())))
        .collect()
}

/// `mock-eop deliver`: exit 0 delivered, 1 deferred or failed; errors are usage errors (2).
fn deliver(args: DeliverArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => MockFile::from_path(path)?.eop,
        None => EopConfig::contoso(),
    };
    let mut trust = Vec::new();
    for path in &args.trust {
        trust.extend(read_pem_certs(path)?);
    }
    if args.trust.is_empty() && Path::new(SYSTEM_BUNDLE).is_file() {
        trust = read_pem_certs(Path::new(SYSTEM_BUNDLE)).unwrap_or_default();
    }
    let opts = DeliverOptions {
        to: args.to.clone(),
        connector: args.connector.clone(),
        tls_domain: args.tls_domain.clone(),
        trust,
        from: args.from.clone(),
        rcpt: args.rcpt.clone(),
        subject: args.subject.clone(),
        retry_for: args.retry_for,
        retry_interval: args.retry_interval,
        source_ip: args.source,
        seed: args.seed,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let (record, identity) = runtime
        .block_on(async { standalone::deliver(&config, &opts, &LabClock::system()).await })?;
    if let Some(path) = &args.client_ca_out {
        std::fs::write(path, identity.trust_anchor_pem())
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    if args.verbose {
        for a in &record.attempts {
            eprintln!(
                "attempt {} ({} session {}):",
                a.number, a.target_host, a.session_id
            );
            for l in &a.transcript {
                eprintln!("  {l}");
            }
        }
    }
    if let Some(path) = &args.records {
        let w = open_records(path)?;
        let mut w = w.lock().unwrap_or_else(|p| p.into_inner());
        let line = serde_json::to_string(&record).context("the record")?;
        writeln!(w, "{line}")
            .and_then(|()| w.flush())
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    for e in record
        .trace
        .events
        .iter()
        .skip_while(|e| matches!(e.event, TraceEventKind::Receive | TraceEventKind::Submit))
    {
        let _ = writeln!(out, "{}", trace_line(e));
    }
    Ok(if record.trace.status == TraceStatus::Delivered {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
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
    check_fd_limit(config.limits.max_sessions);
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
        let mut ca_dir = None;
        let mut lines = startup_lines(&handle, &args, &mut ca_dir)?;
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
        let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("SIGTERM handler")?;
        announce(&lines);
        // Serve until SIGTERM or SIGINT (or the API server fails).
        let api = async {
            match api {
                Some(api) => api.await,
                None => std::future::pending().await,
            }
        };
        let signal = tokio::select! {
            r = api => {
                r.context("the API server stopped")?;
                "the API server ended"
            }
            _ = sigterm.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        };
        tracing::info!("{signal}: stopping (no new sessions; sessions in DATA finish)");
        handle.stop().await;
        drop(ca_dir);
        announce(&["stopped".to_string()]);
        anyhow::Ok(())
    })
}

/// The roots client certificates must chain to: every certificate of every `--client-ca` file.
fn client_roots(files: &[PathBuf]) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let mut roots = Vec::new();
    for path in files {
        let pem =
            std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
        let before = roots.len();
        for c in CertificateDer::pem_slice_iter(&pem) {
            roots.push(c.with_context(|| format!("{}: invalid PEM", path.display()))?);
        }
        if roots.len() == before {
            anyhow::bail!(
                "{}: --client-ca: no certificate in the file (every client certificate would be \
                 unknown_issuer)",
                path.display()
            );
        }
    }
    Ok(roots)
}

/// Warns when `max_sessions` sessions would exhaust the file descriptors (the soft limit of
/// `/proc/self/limits`): the cap must come first, or the accept loop (and the API) meet EMFILE.
fn check_fd_limit(max_sessions: u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(soft) = soft
        && max_sessions.saturating_add(64) > soft
    {
        tracing::warn!(
            "limits.max_sessions = {max_sessions} but only {soft} file descriptors are allowed \
             (ulimit -n): lower max_sessions or raise the limit, or new connections will fail \
             with EMFILE before the cap answers 421"
        );
    }
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
        Some(path) => {
            let (file, torn) = RecordsFile::open(path, !args.no_fsync)?;
            if let Some(t) = torn {
                tracing::warn!(
                    file = %path.display(),
                    "the last line was cut off ({} bytes, a crash?): truncated to {} bytes",
                    t.bytes,
                    t.kept
                );
            }
            Some(Arc::new(file))
        }
        None => None,
    };
    let clock = LabClock::system();
    let seed = args.seed.unwrap_or_else(|| {
        let ns = clock.epoch().unix_timestamp_nanos();
        (ns as u64) ^ ((ns >> 64) as u64)
    });
    let mut builder = builder
        .seed(seed)
        .clock(clock)
        .retain_sessions(args.keep)
        .retain_bytes(args.keep_bytes);
    if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
        builder = builder.server_identity(ServerIdentity::from_pem_files(cert, key)?);
    }
    if let Some(w) = records.clone() {
        // Before each 250: the message, durable.
        builder = builder.on_message(move |snapshot| {
            if let Err(e) = w.append(snapshot) {
                tracing::error!(error = %e, file = %w.path().display(), "cannot write the message record");
            }
        });
    }
    Ok(builder.on_session(move |r| {
        // The record is written (and its headers parsed) after the session has ended, before
        // its log line, so a reader that has seen the log line finds the record in the file.
        if let Some(w) = &records {
            let mut r = r.clone();
            r.ensure_parsed();
            if let Err(e) = w.append(&r) {
                tracing::error!(error = %e, file = %w.path().display(), "cannot write the session record");
            }
        }
        log_session(r);
    }))
}

/// The start-up lines: the address, the lab CA (written to `--ca-out` or a temp file), the
/// server certificate, the records file.
fn startup_lines(
    handle: &MockEopHandle,
    args: &ServeArgs,
    ca_dir: &mut Option<tempfile::TempDir>,
) -> anyhow::Result<Vec<String>> {
    let addr = handle.local_addr();
    let mut lines = vec![format!("mock-eop listening on {addr}")];
    if let Some(cert) = &args.cert {
        lines.push(format!(
            "lab CA: none (serving {}; clients trust its issuer)",
            cert.display()
        ));
    } else {
        let ca_path = match &args.ca_out {
            Some(p) => {
                if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
                }
                write_file_nofollow(p, handle.ca_pem().as_bytes(), false).with_context(|| {
                    format!("{}: cannot write (a symlink is refused)", p.display())
                })?;
                p.clone()
            }
            None => {
                // A fresh private directory (0700, created new: nothing of another user's is
                // written through), removed on a clean stop.
                let dir = tempfile::Builder::new()
                    .prefix("mock-eop-")
                    .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
                    .tempdir()
                    .context("a private directory for the lab CA")?;
                let p = dir.path().join("lab-ca.pem");
                write_file_nofollow(&p, handle.ca_pem().as_bytes(), true)
                    .with_context(|| format!("{}: cannot write", p.display()))?;
                *ca_dir = Some(dir);
                p
            }
        };
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

/// The records file of `deliver`, opened for appending.
fn open_records(path: &Path) -> anyhow::Result<Mutex<std::io::BufWriter<std::fs::File>>> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("{}: cannot open for writing", path.display()))?;
    Ok(Mutex::new(std::io::BufWriter::new(file)))
}
