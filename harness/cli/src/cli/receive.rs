//! `hybridlab receive`: the on-premises receive side on a real socket, for swaks, openssl,
//! Postfix or `mock-eop deliver` to talk to.
//!
//! Without `--scenario` it serves a healthy receive side of the catalogue's contoso organisation:
//! server `EXCH01` (`EXCH01.contoso.com`) with `Default Frontend EXCH01` as the Hybrid
//! Configuration Wizard leaves it (pinned to the `mail.contoso.com` certificate, `Fqdn
//! mail.contoso.com`, `TlsDomainCapabilities mail.protection.outlook.com:AcceptCloudServicesMail`),
//! accepted domain `contoso.com`. The lab CA that issued the certificate is generated at start and
//! written to `--ca-out` (mode 0644) so a client can verify `mail.contoso.com`; the same CA issues
//! an Exchange Online client certificate (`CN=mail.protection.outlook.com`) written with
//! `--client-cert-out DIR` (key mode 0600), which the receive side trusts; `--trust-client-ca`
//! adds roots (e.g. the mock EOP's CA).
//!
//! With `--scenario ID|FILE` (an `exo-to-onprem` scenario, by file or by id under `scenarios/`) it
//! serves that scenario's receive side instead: its servers, receive connectors, certificates and
//! perimeter (the perimeter judges the real client address: an allow-list without loopback
//! refuses a local client, as the firewall would). `--ca-out` then gets the scenario's root(s);
//! `--ehlo-layout` and `--cert-block` are the scenario's own.
//!
//! It prints `hybridlab receive listening on <addr>` and `lab CA: <path>` on stdout, serves until
//! Ctrl-C (SIGINT), then stops accepting, ends the sessions in flight (`421 4.3.2`), and writes to
//! `--out`: the RECV protocol logs (`RECVyyyymmdd-N.LOG`), `Get-ReceiveConnector.txt`,
//! `Get-ExchangeCertificate.txt`, `messages.json` and `events.json` (Windows events as data).
//!
//! Exit codes: 0 after a clean stop, 2 on a usage or input error.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use hybridlab_artefacts::certs::write_exchange_certificate_list;
use hybridlab_artefacts::format_list::FlOptions;
use hybridlab_artefacts::protocol_log::CertBlockStyle;
use hybridlab_labkit::clock::LabClock;
use hybridlab_onprem::certstore::{CertDescription, CertStore, StoreDescription, fixtures};
use hybridlab_receive::perimeter::Perimeter;
use hybridlab_receive::server::{EhloLogLayout, ReceiveServer};
use hybridlab_receive::site::ReceiveSite;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Arguments of `hybridlab receive`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// An `exo-to-onprem` scenario (file, or id under scenarios/) whose receive side to serve.
    #[arg(long, value_name = "ID|FILE")]
    scenario: Option<String>,
    /// Address to listen on (`127.0.0.1:0` picks a free port; the bound address is printed).
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
    /// Allow a non-loopback `--listen` address.
    #[arg(long)]
    allow_remote: bool,
    /// Write the RECV logs, listings, messages and events here on exit.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Where to write the lab CA (default: a file in the temporary folder).
    #[arg(long, value_name = "PEM")]
    ca_out: Option<PathBuf>,
    /// Write an Exchange Online client certificate (`exo-client.pem`, `exo-client.key`) issued by
    /// the lab CA into this folder.
    #[arg(long, value_name = "DIR")]
    client_cert_out: Option<PathBuf>,
    /// Trust this PEM file's certificates as roots for client certificates (repeatable).
    #[arg(long = "trust-client-ca", value_name = "PEM")]
    trust_client_ca: Vec<PathBuf>,
    /// EHLO reply layout in the RECV log: `joined` (newer builds) or `per-keyword` (older).
    #[arg(long, value_name = "LAYOUT", default_value = "joined")]
    ehlo_layout: String,
    /// Certificate block of the RECV log: `one-line` (newer builds) or `multi-line`.
    #[arg(long, value_name = "STYLE", default_value = "one-line")]
    cert_block: String,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !args.listen.ip().is_loopback() && !args.allow_remote {
        bail!(
            "--listen {} is not a loopback address: the lab receive side accepts mail from anyone \
             who can reach it; use 127.0.0.1, or add --allow-remote",
            args.listen
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    match &args.scenario {
        Some(sc) => {
            let scenario = load_scenario(sc)?;
            rt.block_on(serve_scenario(args, scenario))
        }
        None => rt.block_on(serve(args)),
    }
}

/// The scenario named by `--scenario`: a file, or an id of the catalogue (`./scenarios`, else
/// the embedded one).
fn load_scenario(arg: &str) -> anyhow::Result<harness::scenario::Scenario> {
    use harness::scenario::load;
    let catalogue = super::catalogue::Catalogue::open(None)?;
    let path = catalogue
        .find(arg)
        .map_err(|e| anyhow::anyhow!("--scenario {arg}: {e}"))?;
    let s = load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    if !harness::scenario::exo::is_exo_to_onprem(&s) {
        bail!(
            "--scenario {arg}: {} is an onprem-to-exo scenario; only direction = \"exo-to-onprem\" scenarios have a receive side",
            path.display()
        );
    }
    Ok(s)
}

/// Serves a scenario's receive side until Ctrl-C.
async fn serve_scenario(
    args: Args,
    scenario: harness::scenario::Scenario,
) -> anyhow::Result<ExitCode> {
    let clock = LabClock::system();
    let mut client_roots = Vec::new();
    for path in &args.trust_client_ca {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        for c in CertificateDer::pem_slice_iter(&pem) {
            client_roots.push(c.with_context(|| format!("{}: invalid PEM", path.display()))?);
        }
    }
    let served = harness::scenario::exo::receive_side(&scenario, &clock, &client_roots)
        .map_err(|e| anyhow::anyhow!("{}: {e}", scenario.scenario.id))?;
    let site = Arc::new(served.site);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let ca_path = args.ca_out.clone().unwrap_or_else(|| {
        std::env::temp_dir()
            .join(format!("hybridlab-receive-{}", addr.port()))
            .join("lab-ca.pem")
    });
    let pem: String = served
        .roots
        .iter()
        .map(|r| hybridlab_labkit::pki::pem_encode("CERTIFICATE", r))
        .collect();
    write_file(&ca_path, pem.as_bytes(), 0o644)?;
    let mut lines = vec![
        format!(
            "hybridlab receive listening on {addr} (scenario {})",
            scenario.scenario.id
        ),
        format!("lab CA: {}", ca_path.display()),
    ];
    for s in site.servers() {
        for c in &s.connectors {
            lines.push(match &c.certificate {
                Some(f) => format!(
                    "{}\\{}: STARTTLS with {} (thumbprint {})",
                    s.context.name, c.connector.name, f.subject, f.thumbprint
                ),
                None => format!(
                    "{}\\{}: no certificate, STARTTLS not offered",
                    s.context.name, c.connector.name
                ),
            });
        }
    }
    for e in &site.records().events {
        lines.push(format!("event {} {} on {}", e.1.id, e.1.symbolic_name, e.0));
    }
    announce(&lines);
    let serving = tokio::spawn(Arc::clone(&site).serve_listener(listener));
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    site.shutdown();
    let _ = serving.await;
    if let Some(out) = &args.out {
        write_out(out, &site, &served.servers, &clock)?;
        eprintln!("hybridlab receive: wrote {}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The contoso store: the lab CA, `mail.contoso.com`, Exchange's self-signed certificate and the
/// Exchange Online client certificate the CA also issues.
fn contoso_store(clock: &LabClock, extra_roots: &[PathBuf]) -> anyhow::Result<CertStore> {
    let mut eop = CertDescription::new(
        "exo-client",
        "CN=mail.protection.outlook.com, O=Microsoft Corporation, L=Redmond, S=Washington, C=US",
        Some("issuing"),
    )?;
    eop.dns_names = Some(vec![
        "mail.protection.outlook.com".into(),
        "*.mail.protection.outlook.com".into(),
    ]);
    eop.services = Vec::new();
    let mut store = CertStore::build(
        &StoreDescription {
            authorities: fixtures::authorities(),
            certificates: vec![
                fixtures::exchange_self_signed("EXCH01", "EXCH01.contoso.com"),
                fixtures::contoso("hybrid"),
                eop,
            ],
        },
        clock.now(),
    )?;
    for path in extra_roots {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        for (i, c) in CertificateDer::pem_slice_iter(&pem).enumerate() {
            let der = c.with_context(|| format!("{}: invalid PEM", path.display()))?;
            store.add_trusted_root(&format!("{}#{i}", path.display()), der)?;
        }
    }
    Ok(store)
}

async fn serve(args: Args) -> anyhow::Result<ExitCode> {
    let clock = LabClock::system();
    let store = Arc::new(contoso_store(&clock, &args.trust_client_ca)?);
    let hybrid = store.entry("hybrid").context("the lab certificate")?;
    let mut server = ReceiveServer::new("EXCH01", "EXCH01.contoso.com", Arc::clone(&store));
    server.connectors[0] = server.connectors[0]
        .clone()
        .hybrid(hybrid.x509_identifier().parse()?, Some("mail.contoso.com"));
    server.settings.accepted_domains = vec!["contoso.com".into()];
    server.settings.ehlo_log_layout = match args.ehlo_layout.as_str() {
        "joined" => EhloLogLayout::Joined,
        "per-keyword" => EhloLogLayout::PerKeyword,
        other => bail!("--ehlo-layout `{other}`: use joined or per-keyword"),
    };
    server.settings.cert_block = match args.cert_block.as_str() {
        "one-line" => CertBlockStyle::OneLine,
        "multi-line" => CertBlockStyle::MultiLine,
        other => bail!("--cert-block `{other}`: use one-line or multi-line"),
    };
    let seed = clock.epoch().unix_timestamp() as u64;
    let site = Arc::new(ReceiveSite::start(
        vec![server.clone()],
        Perimeter::open(),
        clock.clone(),
        seed,
    )?);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;

    let ca_path = args.ca_out.clone().unwrap_or_else(|| {
        std::env::temp_dir()
            .join(format!("hybridlab-receive-{}", addr.port()))
            .join("lab-ca.pem")
    });
    let root = store.roots().first().context("the lab root")?;
    write_file(
        &ca_path,
        hybridlab_labkit::pki::pem_encode("CERTIFICATE", &root.der).as_bytes(),
        0o644,
    )?;
    let mut lines = vec![
        format!("hybridlab receive listening on {addr}"),
        format!("lab CA: {}", ca_path.display()),
        format!(
            "server certificate: {} (thumbprint {})",
            hybrid.facts.subject, hybrid.facts.thumbprint
        ),
    ];
    if let Some(dir) = &args.client_cert_out {
        let exo = store
            .entry("exo-client")
            .context("the client certificate")?;
        let chain: String = store
            .chain_for(exo)
            .iter()
            .map(|c| hybridlab_labkit::pki::pem_encode("CERTIFICATE", c))
            .collect();
        write_file(&dir.join("exo-client.pem"), chain.as_bytes(), 0o644)?;
        let key = exo.key_pem().context("the client key")?;
        write_file(&dir.join("exo-client.key"), key.as_bytes(), 0o600)?;
        lines.push(format!(
            "client certificate: {}",
            dir.join("exo-client.pem").display()
        ));
    }
    for e in &site.records().events {
        lines.push(format!("event {} {}", e.1.id, e.1.symbolic_name));
    }
    announce(&lines);

    let serving = tokio::spawn(Arc::clone(&site).serve_listener(listener));
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    site.shutdown();
    let _ = serving.await;
    if let Some(out) = &args.out {
        write_out(out, &site, std::slice::from_ref(&server), &clock)?;
        eprintln!("hybridlab receive: wrote {}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the RECV logs (in a folder per server when there are several), the listings, the
/// messages and the events.
fn write_out(
    out: &Path,
    site: &ReceiveSite,
    servers: &[ReceiveServer],
    clock: &LabClock,
) -> anyhow::Result<()> {
    let several = servers.len() > 1;
    let folder = |server: &str| {
        if several {
            out.join(server)
        } else {
            out.to_path_buf()
        }
    };
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (server, files) in site.protocol_log_files() {
        for f in files {
            write_file(&folder(&server).join(&f.name), f.content.as_bytes(), 0o644)?;
        }
    }
    let opts = FlOptions::default();
    write_file(
        &out.join("Get-ReceiveConnector.txt"),
        site.receive_connector_listing().as_bytes(),
        0o644,
    )?;
    for server in servers {
        write_file(
            &folder(&server.name).join("Get-ExchangeCertificate.txt"),
            write_exchange_certificate_list(&server.store.listing_rows(clock.now()), &opts)
                .as_bytes(),
            0o644,
        )?;
    }
    let records = site.records();
    write_file(
        &out.join("messages.json"),
        serde_json::to_string_pretty(&records.messages)?.as_bytes(),
        0o644,
    )?;
    write_file(
        &out.join("events.json"),
        serde_json::to_string_pretty(&records.events)?.as_bytes(),
        0o644,
    )?;
    Ok(())
}

/// Writes `bytes` to `path` (creating its folder) with Unix permissions `mode`.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    Ok(())
}

/// Prints the start-up lines; a closed stdout must not stop the server.
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
