//! Exchange Online's delivery queue end to end, in process, on a paused clock: sessions over
//! in-memory duplexes to a small rustls SMTP receiver, retries and expiry over 24 virtual hours,
//! a fix applied part-way, sessions spread over two addresses, connect timeouts and DNS failures.

mod exo_stub;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use exo_stub::{OnPremPki, StubOptions, epoch, serve};
use hybridlab_labkit::clock::LabClock;
use hybridlab_model::delivery::{AttemptOutcome, ChainStatus, DeliverySettings, TargetOrder};
use hybridlab_model::exo::Tenant;
use hybridlab_model::trace::{TraceEventKind, TraceStatus};
use mock_eop::exo::tls::EOP_SUBJECT;
use mock_eop::exo::{
    ConnectFailure, Dialed, Dialer, ExoIdentity, ExoQueue, ExoTls, NewMessage, ResolveError,
    Resolver, Route, run_until,
};

const TENANT: &str = r#"
name = "contoso"
accepted_domains = [{ domain = "contoso.com", type = "internal_relay" }, { domain = "contoso.onmicrosoft.com" }]
[[outbound_connectors]]
name = "Outbound to 5d3f1c2a-0b7e-4f4c-9a1d-2e6b8c9d0f11"
smart_hosts = ["mail.contoso.com"]
tls_domain = "mail.contoso.com"
recipient_domains = ["contoso.com"]
"#;

fn tenant() -> Tenant {
    toml::from_str(TENANT).unwrap()
}

/// `mail.contoso.com` is two addresses.
struct Table;
impl Resolver for Table {
    fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        match host {
            "mail.contoso.com" => Ok(vec![
                "127.0.0.10".parse().unwrap(),
                "127.0.0.11".parse().unwrap(),
            ]),
            _ => Err(ResolveError::NotFound(host.into())),
        }
    }
}

/// Dials an in-memory duplex whose other end a stub receiver serves; can refuse instead, and
/// records every target it was asked for.
struct Lab {
    opts: StubOptions,
    refuse: AtomicBool,
    hang: bool,
    dialled: Mutex<Vec<SocketAddr>>,
    saw: Arc<Mutex<Vec<exo_stub::Saw>>>,
}

impl Lab {
    fn new(opts: StubOptions) -> Self {
        Self {
            opts,
            refuse: AtomicBool::new(false),
            hang: false,
            dialled: Mutex::new(Vec::new()),
            saw: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

impl Dialer for Lab {
    type Stream = tokio::io::DuplexStream;

    async fn dial(&self, target: SocketAddr) -> Result<Dialed<Self::Stream>, ConnectFailure> {
        self.dialled.lock().unwrap().push(target);
        if self.hang {
            std::future::pending::<()>().await;
        }
        if self.refuse.load(Ordering::SeqCst) {
            return Err(ConnectFailure::Refused);
        }
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let opts = self.opts.clone();
        let saw = self.saw.clone();
        tokio::spawn(async move {
            let s = serve(theirs, &opts).await;
            saw.lock().unwrap().push(s);
        });
        Ok(Dialed {
            stream: ours,
            local: "127.0.0.2:49152".parse().unwrap(),
        })
    }
}

fn tls(trust: &OnPremPki) -> ExoTls {
    let identity = Arc::new(ExoIdentity::generate(epoch()).unwrap());
    ExoTls::new(identity, std::slice::from_ref(&trust.root.cert.der), true).unwrap()
}

fn message() -> NewMessage {
    NewMessage {
        from: "alice@contoso.com".into(),
        to: "bob@contoso.com".into(),
        subject: "Quarterly report".into(),
        body: "hello\n".into(),
    }
}

fn queue(settings: DeliverySettings) -> ExoQueue {
    ExoQueue::new(settings, 7, epoch())
}

#[tokio::test(start_paused = true)]
async fn delivers_with_eops_certificate_xoorg_and_cross_premises_headers() {
    let pki = OnPremPki::new("mail.contoso.com");
    let lab = Lab::new(StubOptions::exchange_like(&pki));
    let clock = LabClock::starting_at(epoch());
    let mut q = queue(DeliverySettings::default());
    let route = Route::for_recipient(&tenant(), "bob@contoso.com").unwrap();
    let key = q.submit(route, message(), clock.now());
    run_until(&mut q, &lab, &Table, &tls(&pki), &clock, None).await;
    assert!(q.is_finished());
    let rec = q.record(key).unwrap();
    assert_eq!(rec.trace.status, TraceStatus::Delivered);
    let kinds: Vec<_> = rec.trace.events.iter().map(|e| e.event.clone()).collect();
    assert_eq!(
        kinds,
        [
            TraceEventKind::Receive,
            TraceEventKind::Submit,
            TraceEventKind::Deliver
        ]
    );
    assert_eq!(
        rec.trace.events[2].detail,
        "The message was successfully delivered."
    );
    assert!(
        rec.trace.events[2]
            .data
            .contains("<MEP Name=\"ConnectorId\" String=\"Outbound to 5d3f1c2a")
    );
    assert_eq!(rec.trace.to_ip.as_deref(), Some("127.0.0.10"));
    assert_eq!(rec.trace.organization, "contoso.onmicrosoft.com");
    let a = &rec.attempts[0];
    let t = a.tls.as_ref().unwrap();
    assert_eq!(t.chain_status, ChainStatus::Valid);
    assert!(t.client_certificate_requested);
    assert_eq!(
        t.presented.as_ref().unwrap().thumbprint,
        pki.leaf.facts.thumbprint
    );
    tokio::task::yield_now().await;
    let saw = lab.saw.lock().unwrap()[0].clone();
    assert!(saw.tls);
    assert_eq!(saw.client_cert_subject.as_deref(), Some(EOP_SUBJECT));
    assert_eq!(
        saw.ehlo[0],
        "EHLO NAM12-DM6-obe.outbound.protection.outlook.com"
    );
    assert!(
        saw.mail_from
            .unwrap()
            .ends_with(" XOORG=contoso.onmicrosoft.com")
    );
    let body = String::from_utf8(saw.message.unwrap()).unwrap();
    assert!(
        body.contains("X-MS-Exchange-CrossPremises-AuthAs: Internal\r\n"),
        "{body}"
    );
    assert!(body.contains("Subject: Quarterly report\r\n"));
}

#[tokio::test(start_paused = true)]
async fn refused_for_a_day_then_expired() {
    let pki = OnPremPki::new("mail.contoso.com");
    let lab = Lab::new(StubOptions::exchange_like(&pki));
    lab.refuse.store(true, Ordering::SeqCst);
    let clock = LabClock::starting_at(epoch());
    let mut q = queue(DeliverySettings::default());
    let route = Route::for_recipient(&tenant(), "bob@contoso.com").unwrap();
    let key = q.submit(route, message(), clock.now());
    run_until(&mut q, &lab, &Table, &tls(&pki), &clock, None).await;
    let rec = q.record(key).unwrap();
    assert_eq!(rec.trace.status, TraceStatus::Failed);
    // t0, +5 min, then every 15 min while before t0 + 24 h: 1 + 96 attempts
    assert_eq!(rec.attempts.len(), 97);
    assert_eq!(
        rec.attempts[1].started - epoch(),
        time::Duration::minutes(5)
    );
    assert_eq!(
        rec.attempts[2].started - epoch(),
        time::Duration::minutes(20)
    );
    let last = rec.trace.events.last().unwrap();
    assert_eq!(last.event, TraceEventKind::Fail);
    assert_eq!(last.date - epoch(), time::Duration::minutes(24 * 60 + 5));
    let reason = last.reason().unwrap();
    assert_eq!(
        reason.last_error.led,
        "550 5.4.316 Message expired, connection refused(Socket error code 10061)"
    );
    let defers = rec
        .trace
        .events
        .iter()
        .filter(|e| e.event == TraceEventKind::Defer)
        .count();
    assert_eq!(defers, 97);
    let first = rec.trace.events[2].reason().unwrap();
    let led = first.last_error.exo_led().unwrap();
    assert_eq!(led.enhanced.unwrap().to_string(), "4.4.316");
    assert_eq!(first.last_error.lrt, "5/2/2026 6:30:00 AM");
    assert_eq!(led.last_attempted_ip(), Some("127.0.0.10:25"));
    assert!(rec.trace.events[2].detail.ends_with(
        "OutboundProxyTargetIP: 127.0.0.10. OutboundProxyTargetHostName: mail.contoso.com"
    ));
}

#[tokio::test(start_paused = true)]
async fn a_fix_part_way_drains_the_queue_and_sessions_alternate() {
    let pki = OnPremPki::new("mail.contoso.com");
    let lab = Lab::new(StubOptions::exchange_like(&pki));
    lab.refuse.store(true, Ordering::SeqCst);
    let clock = LabClock::starting_at(epoch());
    let tls = tls(&pki);
    let mut q = queue(DeliverySettings::default());
    let route = Route::for_recipient(&tenant(), "bob@contoso.com").unwrap();
    let key = q.submit(route, message(), clock.now());
    run_until(
        &mut q,
        &lab,
        &Table,
        &tls,
        &clock,
        Some(epoch() + time::Duration::hours(1)),
    )
    .await;
    assert_eq!(q.record(key).unwrap().trace.status, TraceStatus::Pending);
    assert_eq!(q.record(key).unwrap().attempts.len(), 5);
    lab.refuse.store(false, Ordering::SeqCst);
    run_until(&mut q, &lab, &Table, &tls, &clock, None).await;
    let rec = q.record(key).unwrap();
    assert_eq!(rec.trace.status, TraceStatus::Delivered);
    assert_eq!(rec.attempts.len(), 6);
    assert_eq!(
        rec.attempts[5].started - epoch(),
        time::Duration::minutes(65)
    );
    let dialled: Vec<String> = lab
        .dialled
        .lock()
        .unwrap()
        .iter()
        .map(|a| a.ip().to_string())
        .collect();
    assert_eq!(
        dialled[..4],
        ["127.0.0.10", "127.0.0.11", "127.0.0.10", "127.0.0.11"]
    );
}

#[tokio::test(start_paused = true)]
async fn random_order_is_seeded() {
    let pki = OnPremPki::new("mail.contoso.com");
    let run = |seed| {
        let pki = &pki;
        async move {
            let lab = Lab::new(StubOptions::exchange_like(pki));
            lab.refuse.store(true, Ordering::SeqCst);
            let clock = LabClock::starting_at(epoch());
            let settings = DeliverySettings {
                target_order: TargetOrder::Random,
                expiry: hybridlab_model::timespan::TimeSpan::hours(2),
                ..DeliverySettings::default()
            };
            let mut q = ExoQueue::new(settings, seed, epoch());
            let route = Route::for_recipient(&tenant(), "bob@contoso.com").unwrap();
            q.submit(route, message(), clock.now());
            run_until(&mut q, &lab, &Table, &tls(pki), &clock, None).await;
            lab.dialled.lock().unwrap().clone()
        }
    };
    let a = run(3).await;
    assert_eq!(a, run(3).await);
    assert!(a.len() > 8);
    let tens = a
        .iter()
        .filter(|x| x.ip().to_string() == "127.0.0.10")
        .count();
    assert!(tens > 0 && tens < a.len(), "{a:?}");
}

#[tokio::test(start_paused = true)]
async fn timeouts_dns_and_certificate_failures() {
    let pki = OnPremPki::new("mail.contoso.com");
    let clock = LabClock::starting_at(epoch());
    let tls = tls(&pki);

    // a firewall dropping SYNs: 4.4.315 after the connect timeout
    let mut hang = Lab::new(StubOptions::exchange_like(&pki));
    hang.hang = true;
    let mut q = queue(DeliverySettings::default());
    let route = Route::for_recipient(&tenant(), "bob@contoso.com").unwrap();
    let key = q.submit(route.clone(), message(), clock.now());
    run_until(&mut q, &hang, &Table, &tls, &clock, Some(clock.now())).await;
    let a = &q.record(key).unwrap().attempts[0];
    assert_eq!(a.ended - a.started, time::Duration::seconds(30));
    assert!(
        a.outcome
            .led()
            .unwrap()
            .to_string()
            .starts_with("450 4.4.315 Connection timed out [Message=Socket error code 10060]")
    );

    // a smart host that does not resolve: 4.4.312, no connection
    let mut gone = route.clone();
    gone.connector.smart_hosts = vec!["gone.contoso.com".parse().unwrap()];
    let lab = Lab::new(StubOptions::exchange_like(&pki));
    let mut q = queue(DeliverySettings::default());
    let key = q.submit(gone, message(), clock.now());
    run_until(&mut q, &lab, &Table, &tls, &clock, Some(clock.now())).await;
    let a = &q.record(key).unwrap().attempts[0];
    assert!(a.target.is_none() && lab.dialled.lock().unwrap().is_empty());
    assert!(a.outcome.led().unwrap().to_string().starts_with("450 4.4.312 DNS query failed [Message=Non-existent domain gone.contoso.com] [LastAttemptedServerName=gone.contoso.com] ["));

    // the receive side presents its self-signed certificate: SubjectMismatch with its thumbprint
    let exch = OnPremPki::new("EXCH01");
    let lab = Lab::new(StubOptions::exchange_like(&exch));
    let mut q = queue(DeliverySettings::default());
    let key = q.submit(route.clone(), message(), clock.now());
    run_until(&mut q, &lab, &Table, &tls, &clock, Some(clock.now())).await;
    let rec = q.record(key).unwrap();
    let reason = rec.trace.last_reason().unwrap();
    let led = reason.last_error.exo_led().unwrap();
    assert_eq!(
        led.message(),
        Some(format!(
            "SubjectMismatch Expected Subject: mail.contoso.com. Presented Subject: CN=EXCH01, O=Contoso Ltd, L=Redmond, S=Washington, C=US. Thumbprint: {}.",
            exch.leaf.facts.thumbprint
        ).as_str())
    );
    assert_eq!(led.thumbprint().unwrap(), exch.leaf.facts.thumbprint);
    assert_eq!(
        rec.attempts[0].tls.as_ref().unwrap().chain_status,
        ChainStatus::UntrustedRoot
    );

    // back pressure: 452 4.3.1 at MAIL FROM, passed through
    let mut opts = StubOptions::exchange_like(&pki);
    opts.mail_reply = Some("452 4.3.1 Insufficient system resources (UsedDiskSpace[C:\\Program Files\\Microsoft\\Exchange Server\\V15\\TransportRoles\\data\\Queue])".into());
    let lab = Lab::new(opts);
    let mut q = queue(DeliverySettings::default());
    let key = q.submit(route, message(), clock.now());
    run_until(&mut q, &lab, &Table, &tls, &clock, Some(clock.now())).await;
    match &q.record(key).unwrap().attempts[0].outcome {
        AttemptOutcome::Deferred { led } => assert!(
            led.message()
                .unwrap()
                .starts_with("452 4.3.1 Insufficient system resources (UsedDiskSpace[C:")
        ),
        other => panic!("{other:?}"),
    }
}
