//! `hybridlab send`: one Exchange-like delivery against any SMTP server.
//!
//! The certificate store comes from a description file (`--store`, TOML `[[authorities]]` /
//! `[[certificates]]`) or is generated (`--cert-subject`, optionally with a key-less twin); the send
//! connector from a TOML file (`--connector`) or from flags. Host names are never looked up in real
//! DNS: `--smarthost` takes an IP address, `localhost`, or a name mapped with `--map NAME=IP`.
//! The session's send protocol log goes to stdout, followed by the result and the queue; `--out DIR`
//! receives what a real server would give for the same attempt, in Exchange's formats
//! (`SENDyyyymmdd-N.LOG`, `CONNECTLOGyyyymmdd-1.LOG`, `Get-Queue.txt`/`.json`, `Get-Message.txt`,
//! `Get-ExchangeCertificate.txt`, `Get-ChildItem-Cert.txt`, `Get-SendConnector.txt`; see
//! `hybridlab_artefacts::bundle`), which `hybridlab diagnose DIR` reads.
//!
//! Exit codes: 0 delivered, 1 not delivered, 2 usage or input error.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use hybridlab_artefacts::bundle::BundleOptions;
use hybridlab_artefacts::protocol_log::{CertBlockStyle, LogWriterOptions, write_log};
use hybridlab_artefacts::text::LineEnding;
use hybridlab_labkit::clock::LabClock;
use hybridlab_model::exchange::{ExchangeVersion, TlsAuthLevel};
use hybridlab_onprem::certstore::{CertStore, StoreDescription, fixtures};
use hybridlab_onprem::connector::SendConnector;
use hybridlab_onprem::message::OutboundMessage;
use hybridlab_onprem::resolver::LabResolver;
use hybridlab_onprem::schannel::SchannelSettings;
use hybridlab_onprem::selection::{DuplicatePolicy, SelectionSettings};
use hybridlab_onprem::sender::{ConnectOptions, DeliveryOutcome};
use hybridlab_onprem::server::ServerIdentity;
use hybridlab_onprem::transport::{Deliver, TcpDeliver, Transport, TransportConfig};

/// Arguments of `hybridlab send`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The server to deliver to: `IP:PORT`, `localhost:PORT`, or `NAME:PORT` with `--map NAME=IP`.
    #[arg(long, value_name = "HOST:PORT")]
    smarthost: String,
    /// Map a host name to an address (the lab never asks real DNS).
    #[arg(long = "map", value_name = "NAME=IP")]
    maps: Vec<String>,
    /// Certificate store description (TOML with `[[authorities]]` and `[[certificates]]`).
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
    /// Without `--store`: subject of the generated certificate (issued by a lab CA).
    #[arg(long, default_value = fixtures::CONTOSO_SUBJECT)]
    cert_subject: String,
    /// Without `--store`: add a key-less twin (same subject and issuer), enumerated `first` or `last`.
    #[arg(long, value_name = "first|last")]
    keyless_twin: Option<String>,
    /// Trust this PEM file's certificates as roots (LocalMachine\Root), e.g. the receiving server's CA.
    #[arg(long = "trust-root", value_name = "PEM")]
    trust_roots: Vec<PathBuf>,
    /// Send connector settings (TOML, snake_case keys as in `[onprem.send_connector]`).
    #[arg(long, value_name = "FILE")]
    connector: Option<PathBuf>,
    /// Set RequireTLS: the connector refuses to send without STARTTLS.
    #[arg(long)]
    require_tls: bool,
    /// Set IgnoreSTARTTLS: the connector sends in clear text even when STARTTLS is offered.
    #[arg(long)]
    ignore_starttls: bool,
    /// TlsAuthLevel: EncryptionOnly, CertificateValidation or DomainValidation.
    #[arg(long)]
    tls_auth_level: Option<String>,
    /// TlsDomain: the name the server's certificate must match under DomainValidation.
    #[arg(long)]
    tls_domain: Option<String>,
    /// TlsCertificateName (`<I>issuer<S>subject`), or `@NAME` for a certificate of the store.
    #[arg(long)]
    tls_certificate_name: Option<String>,
    /// Connector Fqdn (EHLO name and FQDN certificate search).
    #[arg(long)]
    fqdn: Option<String>,
    /// Duplicate policy: first_in_store, latest_notafter, newest_notbefore.
    #[arg(long, default_value = "first_in_store")]
    duplicate_policy: String,
    /// Enable TLS 1.3 on the client (Exchange does not).
    #[arg(long)]
    tls13: bool,
    /// Exchange version for the LastError wording: 2010, 2013, 2016, 2019, SE.
    #[arg(long, default_value = "2019")]
    exchange_version: String,
    /// The envelope sender (MAIL FROM) of the one message.
    #[arg(long, default_value = "alice@contoso.com")]
    from: String,
    /// The envelope recipient (RCPT TO) of the one message.
    #[arg(long, default_value = "bob@contoso.mail.onmicrosoft.com")]
    to: String,
    /// Bind this source address (loopback only).
    #[arg(long)]
    source_ip: Option<IpAddr>,
    /// Write the attempt's artefacts in Exchange's formats into this folder (send protocol log,
    /// connectivity log, Get-Queue, Get-Message, certificate and send connector listings).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Certificate block of the send protocol log: `multi-line` (classic) or `one-line` (newer
    /// builds).
    #[arg(long, value_name = "STYLE", default_value = "multi-line")]
    cert_block: String,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(send(args))
}

fn read(path: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

async fn send(args: Args) -> anyhow::Result<ExitCode> {
    let clock = LabClock::system();
    let now = clock.now();
    let store = build_store(&args, now)?;
    let c = build_connector(&args, &store)?;
    let cert_style = match args.cert_block.as_str() {
        "multi-line" => CertBlockStyle::MultiLine,
        "one-line" => CertBlockStyle::OneLine,
        other => bail!("--cert-block: expected multi-line or one-line, got `{other}`"),
    };
    let duplicate_policy = match args.duplicate_policy.as_str() {
        "first_in_store" => DuplicatePolicy::FirstInStore,
        "latest_notafter" => DuplicatePolicy::LatestNotafter,
        "newest_notbefore" => DuplicatePolicy::NewestNotbefore,
        other => bail!("--duplicate-policy: unknown `{other}`"),
    };
    let version: ExchangeVersion = args
        .exchange_version
        .parse()
        .map_err(|e| anyhow::anyhow!("--exchange-version: {e}"))?;
    let resolver = build_resolver(&args)?;

    // one delivery through the transport (so the queue and LastError are Exchange's)
    let mut cfg = TransportConfig::new(c.clone());
    cfg.server = ServerIdentity {
        version,
        ..ServerIdentity::default()
    };
    cfg.selection = SelectionSettings {
        duplicate_policy,
        ..Default::default()
    };
    cfg.schannel = SchannelSettings {
        tls13: args.tls13,
        ..Default::default()
    };
    let mut transport = Transport::new(cfg, Arc::new(store));
    let mut msg = OutboundMessage::simple(1, &args.from, &args.to, now);
    msg.internal_id = 12_884_901_890;
    let domain = msg.recipient_domain().to_string();
    transport.submit(msg.clone());
    let targets = match resolver.next_hop(&c, &domain) {
        Ok(t) => t,
        Err(e) => {
            transport.on_dns_failure(&e, clock.now());
            println!("result: DNS query failed for {}", c.smart_hosts.join(","));
            print_queue(&transport);
            write_out(&args, &transport, cert_style, clock.now())?;
            return Ok(ExitCode::from(1));
        }
    };
    let target = targets.into_iter().next().context("no target")?;
    let session_cfg = transport.session_config(target, &domain);
    let mut deliver = TcpDeliver {
        opts: ConnectOptions {
            source_ip: args.source_ip,
            ..Default::default()
        },
    };
    let report = deliver.deliver(session_cfg, vec![msg], &clock).await;
    let outcome = report.outcome();
    let mut log_opts = LogWriterOptions::send().with_cert_style(cert_style);
    log_opts.line_ending = LineEnding::Lf;
    print!(
        "{}",
        write_log(std::slice::from_ref(&report.log), &log_opts)
    );
    transport.on_session(report, false, clock.now());
    match &outcome {
        DeliveryOutcome::Delivered(r) => println!("result: delivered ({r})"),
        DeliveryOutcome::Deferred(r) => println!("result: deferred ({r})"),
        DeliveryOutcome::Rejected(r) => println!("result: rejected, NDR ({r})"),
        DeliveryOutcome::SessionFailed(f) => println!("result: session failed ({})", f.ack),
    }
    print_queue(&transport);
    write_out(&args, &transport, cert_style, clock.now())?;
    Ok(if matches!(outcome, DeliveryOutcome::Delivered(_)) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The certificate store: `--store`'s description, or a generated certificate (with its key-less
/// twin when asked), plus the roots `--trust-root` adds.
fn build_store(args: &Args, now: time::OffsetDateTime) -> anyhow::Result<CertStore> {
    let desc = match &args.store {
        Some(p) => {
            StoreDescription::from_toml(&read(p)?).with_context(|| format!("in {}", p.display()))?
        }
        None => generated_store(args)?,
    };
    let mut store = CertStore::build(&desc, now)?;
    for p in &args.trust_roots {
        let pem = read(p)?;
        use rustls_pki_types::pem::PemObject;
        let mut n = 0;
        for der in rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let der = der.with_context(|| format!("reading a certificate in {}", p.display()))?;
            store.add_trusted_root(&format!("{}#{n}", p.display()), der)?;
            n += 1;
        }
        if n == 0 {
            bail!("{}: no PEM certificate found", p.display());
        }
    }
    Ok(store)
}

/// Without `--store`: the lab authorities and one certificate with `--cert-subject`, with a
/// key-less twin first or last when `--keyless-twin` asks for one.
fn generated_store(args: &Args) -> anyhow::Result<StoreDescription> {
    let mut cert = fixtures::contoso("lab-cert");
    cert.subject = args
        .cert_subject
        .parse()
        .with_context(|| "in --cert-subject".to_string())?;
    cert.dns_names = cert.subject.common_name().map(|cn| vec![cn.to_string()]);
    let mut twin = cert.clone();
    twin.name = "keyless-twin".into();
    twin.has_private_key = false;
    twin.services.clear();
    let certificates = match args.keyless_twin.as_deref() {
        None => vec![cert],
        Some("first") => vec![twin, cert],
        Some("last") => vec![cert, twin],
        Some(other) => bail!("--keyless-twin: expected first or last, got `{other}`"),
    };
    Ok(StoreDescription {
        authorities: fixtures::authorities(),
        certificates,
    })
}

/// The send connector: `--connector`'s file or a smart-host connector, pointed at `--smarthost`,
/// with the TLS flags applied (`--tls-certificate-name @NAME` resolved against the store) and
/// validated as `Set-SendConnector` would.
fn build_connector(args: &Args, store: &CertStore) -> anyhow::Result<SendConnector> {
    let (host, port) = split_host_port(&args.smarthost)?;
    let mut c = match &args.connector {
        Some(p) => toml::from_str::<SendConnector>(&read(p)?)
            .with_context(|| format!("in {}", p.display()))?,
        None => SendConnector::to_smart_host("hybridlab send", &host, port),
    };
    c.smart_hosts = vec![host];
    c.dns_routing_enabled = false;
    c.port = port;
    c.require_tls |= args.require_tls;
    c.ignore_starttls |= args.ignore_starttls;
    if let Some(l) = &args.tls_auth_level {
        c.tls_auth_level = Some(
            l.parse::<TlsAuthLevel>()
                .map_err(|e| anyhow::anyhow!("--tls-auth-level: {e}"))?,
        );
    }
    if let Some(d) = &args.tls_domain {
        c.tls_domain = Some(d.clone());
    }
    if let Some(f) = &args.fqdn {
        c.fqdn = Some(f.clone());
    }
    if let Some(n) = &args.tls_certificate_name {
        c.tls_certificate_name = Some(match n.strip_prefix('@') {
            Some(name) => store
                .entry(name)
                .with_context(|| format!("--tls-certificate-name: no certificate named `{name}`"))?
                .x509_identifier(),
            None => n.clone(),
        });
    }
    c.validate()
        .map_err(|e| anyhow::anyhow!("the send connector is invalid: {e}"))?;
    Ok(c)
}

/// The lab resolver: `localhost` and every `--map NAME=IP` (never real DNS); refuses a
/// `--source-ip` off loopback.
fn build_resolver(args: &Args) -> anyhow::Result<LabResolver> {
    let mut resolver = LabResolver::new().with_host(
        "localhost",
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
    );
    for m in &args.maps {
        let (name, ip) = m
            .split_once('=')
            .with_context(|| format!("--map `{m}`: expected NAME=IP"))?;
        let ip: IpAddr = ip
            .parse()
            .with_context(|| format!("--map `{m}`: `{ip}` is not an IP address"))?;
        resolver = resolver.with_host(name, SocketAddr::new(ip, 0));
    }
    if let Some(src) = args.source_ip
        && !src.is_loopback()
    {
        bail!("--source-ip {src}: only loopback addresses (127.0.0.0/8, ::1) may be bound");
    }
    Ok(resolver)
}

fn print_queue(t: &Transport) {
    let q = t.snapshot();
    println!(
        "queue: {} Status={} MessageCount={}",
        q.identity, q.status, q.message_count
    );
    if let Some(le) = &q.last_error {
        println!("LastError: {le}");
    }
}

fn write_out(
    args: &Args,
    t: &Transport,
    cert_style: CertBlockStyle,
    now: time::OffsetDateTime,
) -> anyhow::Result<()> {
    let Some(dir) = &args.out else {
        return Ok(());
    };
    let mut opts = BundleOptions::default();
    opts.send_log = opts.send_log.with_cert_style(cert_style);
    let written = t
        .artefact_bundle(now)
        .write_to(dir, &opts)
        .context("writing the artefacts")?;
    println!("artefacts: {} files in {}", written.len(), dir.display());
    Ok(())
}

fn split_host_port(s: &str) -> anyhow::Result<(String, u16)> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok((sa.ip().to_string(), sa.port()));
    }
    let (h, p) = s
        .rsplit_once(':')
        .with_context(|| format!("--smarthost `{s}`: expected HOST:PORT"))?;
    let port: u16 = p
        .parse()
        .with_context(|| format!("--smarthost `{s}`: `{p}` is not a port"))?;
    if h.is_empty() {
        bail!("--smarthost `{s}`: empty host");
    }
    Ok((
        h.trim_start_matches('[').trim_end_matches(']').to_string(),
        port,
    ))
}
