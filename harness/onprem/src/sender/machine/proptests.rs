//! Arbitrary server bytes never panic the machine nor make it loop.

use super::*;
use crate::certstore::{CertStore, fixtures};
use hybridlab_model::core::ProtocolCore;
use proptest::prelude::*;
use std::sync::OnceLock;

fn store() -> Arc<CertStore> {
    static S: OnceLock<Arc<CertStore>> = OnceLock::new();
    S.get_or_init(|| {
        Arc::new(
            CertStore::build(
                &fixtures::classic_twins(false),
                time::macros::datetime!(2026-05-02 06:30:00 UTC),
            )
            .unwrap(),
        )
    })
    .clone()
}

fn machine() -> SenderMachine {
    let t = time::macros::datetime!(2026-05-02 06:30:00 UTC);
    let cfg = SessionConfig {
        connector: SendConnector::to_smart_host("x", "relay.lab", 25),
        server: ServerIdentity::default(),
        store: store(),
        selection: SelectionSettings::default(),
        schannel: SchannelSettings::default(),
        session_id: "0000000000000001".into(),
        target: Target {
            host: "relay.lab".into(),
            addr: "127.0.0.1:25".parse().unwrap(),
            unreachable: None,
        },
        next_hop_domain: "lab".into(),
        skip_starttls: false,
    };
    let mut m = SenderMachine::new(
        cfg,
        vec![OutboundMessage::simple(1, "a@b.c", "d@e.f", t)],
        t,
    );
    m.handle_connected(t, "127.0.0.1:2000".parse().unwrap());
    m
}

fn smtpish() -> impl Strategy<Value = Vec<u8>> {
    let tokens = prop::sample::select(vec![
        &b"220 ok\r\n"[..],
        b"250-x\r\n",
        b"250 STARTTLS\r\n",
        b"250 PIPELINING\r\n",
        b"250 CHUNKING\r\n",
        b"250 SIZE 10\r\n",
        b"354 go\r\n",
        b"421 bye\r\n",
        b"451 4.4.395 x\r\n",
        b"550 5.7.64 no\r\n",
        b"\r\n",
        b"\x00\xff",
        b"2",
        b"-",
    ]);
    prop::collection::vec(tokens, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn never_panics_and_stays_bounded(data in prop_oneof![smtpish(), prop::collection::vec(any::<u8>(), 0..512)], split in 1usize..64) {
        let t = time::macros::datetime!(2026-05-02 06:30:00 UTC);
        let mut m = machine();
        let mut actions = 0usize;
        for chunk in data.chunks(split) {
            m.handle_input(t, chunk);
            while m.poll_action().is_some() {
                actions += 1;
            }
        }
        m.handle_eof(t);
        while m.poll_action().is_some() {
            actions += 1;
        }
        prop_assert!(actions < 200);
        let r = m.finish();
        prop_assert!(r.log.events.len() < 400);
    }
}
