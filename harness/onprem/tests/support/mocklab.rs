//! The on-prem side against the real mock EOP: a store trusting the mock's CA, the mock trusting
//! the store's roots, both on one lab clock; the mock served in memory or on 127.0.0.1:0.

use std::net::SocketAddr;
use std::sync::Arc;

use hybridlab_labkit::clock::LabClock;
use hybridlab_onprem::certstore::{CertStore, StoreDescription, fixtures};
use hybridlab_onprem::connector::SendConnector;
use hybridlab_onprem::message::OutboundMessage;
use hybridlab_onprem::resolver::LabResolver;
use hybridlab_onprem::transport::{MemoryDeliver, Transport, TransportConfig};
use mock_eop::config::EopConfig;
use mock_eop::fault::Fault;
use mock_eop::{MockEop, MockEopHandle};
use time::OffsetDateTime;

/// The coexistence domain's MX host, the HCW smart host.
pub(crate) const SMART_HOST: &str = "contoso-mail-onmicrosoft-com.mail.protection.outlook.com";

/// The lab's start: the background case's morning.
pub(crate) fn t0() -> OffsetDateTime {
    time::macros::datetime!(2019-05-02 06:30:00 UTC)
}

/// The mock, the on-prem store and the clock they share.
pub(crate) struct MockLab {
    pub mock: MockEopHandle,
    pub clock: LabClock,
    pub store: CertStore,
}

/// Where the mock listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Net {
    /// In-memory duplex streams only.
    Memory,
    /// 127.0.0.1:0.
    Tcp,
}

/// Starts the mock with `config` and `faults`; builds `desc` at [`t0`]; each side trusts the
/// other's roots (unless `trust_mock` is false: the on-prem side then lacks EOP's root).
pub(crate) async fn start_with(
    config: EopConfig,
    faults: Vec<Fault>,
    desc: &StoreDescription,
    net: Net,
    trust_mock: bool,
) -> MockLab {
    let clock = LabClock::starting_at(t0());
    let mut store = CertStore::build(desc, t0()).expect("store");
    let roots = store.roots().iter().map(|r| r.der.clone()).collect();
    let mut b = MockEop::builder()
        .config(config)
        .faults(faults)
        .seed(7)
        .clock(clock.clone())
        .trust_roots(roots);
    if net == Net::Memory {
        b = b.in_memory_only();
    }
    let mock = b.start().await.expect("mock starts");
    if trust_mock {
        store
            .add_trusted_root("eop-root", mock.ca_certificate().clone())
            .unwrap();
    }
    MockLab { mock, clock, store }
}

/// The contoso tenant, no faults, the classic twins (key-less first or last).
pub(crate) async fn start(keyless_first: bool, net: Net) -> MockLab {
    start_with(
        EopConfig::contoso(),
        Vec::new(),
        &fixtures::classic_twins(keyless_first),
        net,
        true,
    )
    .await
}

/// The HCW connector pinned to the twins' issuer and subject.
pub(crate) fn pinned() -> SendConnector {
    let mut c = SendConnector::hybrid(
        "contoso",
        Some(format!(
            "<I>{}<S>{}",
            fixtures::ISSUING_CA,
            fixtures::CONTOSO_SUBJECT
        )),
    );
    c.smart_hosts = vec![SMART_HOST.into()];
    c
}

/// One message from the on-prem organisation to the coexistence domain.
pub(crate) fn message(id: u64) -> OutboundMessage {
    OutboundMessage::simple(
        id,
        "alice@contoso.com",
        "bob@contoso.mail.onmicrosoft.com",
        t0(),
    )
}

impl MockLab {
    /// The smart host resolves to the mock's address.
    pub(crate) fn resolver(&self) -> LabResolver {
        LabResolver::new().with_host(SMART_HOST, self.mock.local_addr())
    }

    /// The smart host resolves to `addr` (in memory the address only shows in the logs and the
    /// LastError, e.g. an EOP address such as 104.47.10.36:25).
    pub(crate) fn resolver_as(&self, addr: SocketAddr) -> LabResolver {
        LabResolver::new().with_host(SMART_HOST, addr)
    }

    /// In-memory connections whose sessions believe the client is at `peer`.
    pub(crate) fn memory(
        &self,
        peer: SocketAddr,
    ) -> MemoryDeliver<impl FnMut() -> tokio::io::DuplexStream + '_> {
        MemoryDeliver {
            connect: move || self.mock.connect_in_memory(peer),
            local: peer,
        }
    }

    /// A transport over this lab's store (shared) for `connector`.
    pub(crate) fn transport(&self, connector: SendConnector) -> Transport {
        Transport::new(
            TransportConfig::new(connector),
            Arc::new(self.store.clone()),
        )
    }
}
