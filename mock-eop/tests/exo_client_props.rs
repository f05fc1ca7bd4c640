//! Property tests of Exchange Online's sans-IO client core (no tokio, fixed virtual time):
//! - arbitrary server bytes, TLS results, ends of input and timer expiries never panic it, every
//!   write is a CRLF-terminated command or message content, and it always yields a record;
//! - a server's reply stream split at any chunk boundaries gives the same commands and outcome.

use hybridlab_model::core::ProtocolCore;
use hybridlab_model::delivery::{AttemptTls, CertificateFailureForm, ChainStatus, DeliveryAttempt};
use hybridlab_model::exo::OutboundTlsSettings;
use hybridlab_model::timespan::TimeSpan;
use mock_eop::exo::led::TlsFailure;
use mock_eop::exo::{Action, ExoClient, ExoMessage, SessionParams, TlsOutcome};
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, RngSeed};
use time::OffsetDateTime;

fn t0() -> OffsetDateTime {
    time::macros::datetime!(2026-05-02 06:30:00 UTC)
}

fn client(tls: OutboundTlsSettings) -> ExoClient {
    let params = SessionParams {
        connector: "Outbound to x".into(),
        tls_settings: tls,
        expected_name: "mail.contoso.com".into(),
        target_host: "mail.contoso.com".into(),
        target: "127.0.0.10:25".parse().unwrap(),
        ehlo_name: "NAM12-DM6-obe.outbound.protection.outlook.com".into(),
        organization: "contoso.onmicrosoft.com".into(),
        cross_premises: true,
        auth_source: "DM6PR12MB4321.namprd12.prod.outlook.com".into(),
        session_id: "08DE8A01A0B45E1B".into(),
        service_host: "DM6NAM12FT012.eop-nam12.prod.protection.outlook.com".into(),
        reply_timeout: TimeSpan::minutes(10),
        certificate_failure: CertificateFailureForm::CannotConnect,
        attempt: 1,
    };
    let message = ExoMessage {
        message_id: "<1@x>".into(),
        network_message_id: "8e9b967e-b07a-46d7-081f-08d8f8f9f041".into(),
        from: "alice@contoso.com".into(),
        to: vec!["bob@contoso.com".into(), "carol@contoso.com".into()],
        subject: "s".into(),
        body: "b\n".into(),
        received: t0(),
    };
    let mut c = ExoClient::new(params, message, t0());
    c.handle_connected(t0(), "127.0.0.1:50000".parse().unwrap());
    c
}

/// One thing that happens to the core.
#[derive(Debug, Clone)]
enum Event {
    Bytes(Vec<u8>),
    Eof,
    Timeout(u32),
    Tls(u8),
}

fn event() -> impl Strategy<Value = Event> {
    let replies = prop::sample::select(vec![
        "220 mail.contoso.com ESMTP\r\n",
        "250-mail.contoso.com Hello\r\n250-STARTTLS\r\n250-XOORG\r\n250 CHUNKING\r\n",
        "250 mail.contoso.com Hello\r\n",
        "220 2.0.0 SMTP server ready\r\n",
        "250 2.1.0 Sender OK\r\n",
        "354 go\r\n",
        "452 4.3.1 Insufficient system resources\r\n",
        "550 5.1.1 unknown\r\n",
        "421 4.3.2 Service not available\r\n",
        "221 bye\r\n",
    ]);
    prop_oneof![
        4 => replies.prop_map(|s| Event::Bytes(s.as_bytes().to_vec())),
        3 => prop::collection::vec(any::<u8>(), 0..300).prop_map(Event::Bytes),
        1 => Just(Event::Eof),
        1 => (0u32..1200).prop_map(Event::Timeout),
        1 => any::<u8>().prop_map(Event::Tls),
    ]
}

fn tls_outcome(k: u8) -> TlsOutcome {
    match k % 4 {
        0 => TlsOutcome::Failed(TlsFailure::SocketError),
        1 => TlsOutcome::Failed(TlsFailure::IllegalMessage),
        _ => TlsOutcome::Established(Box::new(AttemptTls {
            version: "TLS1_2".into(),
            cipher_suite: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384".into(),
            presented: None,
            chain: Vec::new(),
            chain_status: if k % 4 == 2 {
                ChainStatus::Valid
            } else {
                ChainStatus::UntrustedRoot
            },
            client_certificate_requested: k.is_multiple_of(2),
        })),
    }
}

/// Drains the actions; checks every write's shape; returns the commands.
fn drain(c: &mut ExoClient, wrote: &mut Vec<Vec<u8>>, tls: Option<u8>) {
    for _ in 0..1000 {
        let Some(a) = c.poll_action() else { return };
        match a {
            Action::Send(b) => {
                assert!(b.ends_with(b"\r\n"), "unterminated write {b:?}");
                wrote.push(b);
            }
            Action::StartTls { server_name } => {
                assert_eq!(server_name, "mail.contoso.com");
                if let Some(k) = tls {
                    c.handle_tls(t0(), tls_outcome(k));
                }
            }
            Action::Close => {}
        }
    }
    panic!("the core kept producing actions");
}

fn run(settings: OutboundTlsSettings, events: &[Event]) -> (Vec<Vec<u8>>, DeliveryAttempt) {
    let mut c = client(settings);
    let mut wrote = Vec::new();
    let mut pending_tls = None;
    for e in events {
        match e {
            Event::Bytes(b) => c.handle_input(t0(), b),
            Event::Eof => c.handle_eof(t0()),
            Event::Timeout(s) => c.handle_timeout(t0() + time::Duration::seconds(i64::from(*s))),
            Event::Tls(k) => pending_tls = Some(*k),
        }
        drain(&mut c, &mut wrote, pending_tls);
        if c.is_closed() {
            assert!(c.poll_timeout().is_none());
        }
    }
    (wrote, c.finish())
}

fn settings() -> impl Strategy<Value = OutboundTlsSettings> {
    prop::sample::select(vec![
        OutboundTlsSettings::Opportunistic,
        OutboundTlsSettings::EncryptionOnly,
        OutboundTlsSettings::CertificateValidation,
        OutboundTlsSettings::DomainValidation,
    ])
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        rng_seed: RngSeed::Fixed(0x0E0_5E4D),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_input_never_panics(s in settings(), events in prop::collection::vec(event(), 0..40)) {
        let (_, attempt) = run(s, &events);
        // whatever happened, the record says how it ended, and a deferral has an EXO LED
        if let Some(led) = attempt.outcome.led() {
            prop_assert!(led.code == 450 || (500..600).contains(&led.code), "{led}");
        }
    }

    #[test]
    fn chunking_does_not_change_the_session(cuts in prop::collection::vec(0usize..400, 0..12)) {
        let script = "220 mail.contoso.com ESMTP\r\n250-mail.contoso.com Hello\r\n250 CHUNKING\r\n250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n550 5.1.1 unknown\r\n250 2.6.0 queued\r\n221 bye\r\n";
        let whole = run(OutboundTlsSettings::Opportunistic, &[Event::Bytes(script.as_bytes().to_vec())]);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % script.len()).collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut events = Vec::new();
        let mut at = 0;
        for c in cuts.into_iter().chain([script.len()]) {
            events.push(Event::Bytes(script.as_bytes()[at..c].to_vec()));
            at = c;
        }
        let split = run(OutboundTlsSettings::Opportunistic, &events);
        prop_assert_eq!(&whole.0, &split.0);
        prop_assert_eq!(&whole.1.outcome, &split.1.outcome);
        prop_assert!(whole.1.outcome.is_delivered());
    }
}
