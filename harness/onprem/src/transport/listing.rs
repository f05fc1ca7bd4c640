//! What the admin sees: `Get-Queue`, `Get-Message`, NDRs, and the whole artefact bundle a real
//! server gives (send protocol log, connectivity log, listings).

use hybridlab_artefacts::bundle::{ArtefactBundle, ExportedCertificate};
use hybridlab_artefacts::ndr::{DsnAction, NdrReport};
use hybridlab_artefacts::queue::{self, QueueRow};
use hybridlab_model::exchange::DeliveryType;
use hybridlab_model::reply::Reply;
use time::OffsetDateTime;

use super::Transport;
use crate::connector::ProtocolLoggingLevel;
use crate::message::OutboundMessage;
use crate::server::ServerRole;

impl Transport {
    pub(super) fn identity(&self) -> String {
        format!("{}\\{}", self.cfg.server.name, self.cfg.queue_number)
    }

    pub(super) fn delivery_type(&self) -> DeliveryType {
        if self.cfg.connector.dns_routing_enabled {
            DeliveryType::DnsConnectorDelivery
        } else {
            DeliveryType::SmartHostConnectorDelivery
        }
    }

    pub(super) fn next_hop_domain(&self) -> String {
        if self.cfg.connector.dns_routing_enabled {
            self.messages
                .first()
                .map(|m| m.message.recipient_domain().to_string())
                .unwrap_or_default()
        } else {
            self.cfg.connector.smart_hosts.join(",")
        }
    }

    /// `Get-Queue` for this queue.
    pub fn snapshot(&self) -> QueueRow {
        QueueRow {
            identity: self.identity(),
            delivery_type: self.delivery_type(),
            status: self.status,
            message_count: self.messages.len() as u32,
            next_hop_domain: self.next_hop_domain(),
            tls_domain: self.cfg.connector.tls_domain.clone(),
            next_hop_connector: Some(self.cfg.connector.guid()),
            last_error: self.last_error.clone(),
            retry_count: self.retry_count,
            first_retry_time: self.first_retry_time,
            last_retry_time: self.last_retry_time,
            next_retry_time: self.next_retry_time,
        }
    }

    /// `Get-Message` rows for the queued messages, in the listing's shape.
    ///
    /// The lab has no previous hop, so two values are stand-ins \[U\]: MessageSourceName is what an
    /// Edge shows for mail from the Mailbox servers (`SMTP:Default internal receive connector
    /// <server>`) or what a Mailbox server shows for mailbox submissions (`FromLocal`), and SourceIP
    /// is `127.0.0.1`. SCL is -1 (authenticated mail).
    pub fn message_rows(&self) -> Vec<queue::MessageRow> {
        let source = match self.cfg.server.role {
            ServerRole::Edge => format!(
                "SMTP:Default internal receive connector {}",
                self.cfg.server.name
            ),
            ServerRole::Mailbox => "FromLocal".to_string(),
        };
        let expiry = self.cfg.settings.message_expiration_timeout.to_time();
        let cross_premises = self.cfg.connector.cloud_services_mail_enabled;
        self.messages
            .iter()
            .map(|m| queue::MessageRow {
                identity: format!("{}\\{}", self.identity(), m.message.internal_id),
                queue: self.identity(),
                subject: m.message.subject.clone(),
                from_address: m.message.from.clone(),
                status: m.status,
                size_bytes: Some(m.message.wire(cross_premises).len() as u64),
                message_source_name: source.clone(),
                source_ip: "127.0.0.1".to_string(),
                scl: Some(-1),
                date_received: Some(m.message.arrival),
                expiration_time: Some(m.message.arrival + expiry),
                last_error: m.last_error.clone(),
                retry_count: m.retry_count,
                recipients: m.message.to.clone(),
                internet_message_id: format!("<{}>", m.message.message_id),
            })
            .collect()
    }

    /// Everything the transport knows, as the files a real server gives at `now`: the send
    /// protocol log (only when the connector's ProtocolLoggingLevel is Verbose, as on a real
    /// server), the connectivity log, `Get-Queue`, `Get-Message`, both certificate listings (Status
    /// judged at `now`) and `Get-SendConnector`. Add the mock's records with
    /// [`ArtefactBundle::with_mock_records`] and certificates with [`Self::exported_certificates`];
    /// write it with [`ArtefactBundle::write_to`].
    pub fn artefact_bundle(&self, now: OffsetDateTime) -> ArtefactBundle {
        let verbose = self.cfg.connector.protocol_logging_level == ProtocolLoggingLevel::Verbose;
        ArtefactBundle {
            server: self.cfg.server.name.clone(),
            send_sessions: if verbose {
                self.sessions.iter().map(|r| r.log.clone()).collect()
            } else {
                Vec::new()
            },
            connectivity: self.connectivity.clone(),
            queues: vec![self.snapshot()],
            messages: self.message_rows(),
            certificates: self.store.listing_rows(now),
            send_connectors: vec![self.cfg.connector.listing_row(&self.cfg.server)],
            mock_records: None,
            inbound_connectors: None,
            ndrs: self.ndrs.clone(),
            exported_certificates: Vec::new(),
        }
    }

    /// The store's certificates as PEM, with their private keys when `with_keys` (the bundle
    /// writes key files mode 0600).
    pub fn exported_certificates(&self, with_keys: bool) -> Vec<ExportedCertificate> {
        self.store
            .my()
            .iter()
            .map(|e| ExportedCertificate {
                thumbprint: e.facts.thumbprint.clone(),
                cert_pem: e.cert_pem(),
                key_pem: if with_keys { e.key_pem() } else { None },
            })
            .collect()
    }

    /// The NDR the transport sends back for `m` (a remote refusal: the reply says it all).
    pub(super) fn ndr_report(
        &self,
        m: &OutboundMessage,
        reply: &Reply,
        remote_mta: Option<String>,
        now: OffsetDateTime,
    ) -> NdrReport {
        self.dsn_report(m, reply, remote_mta, now)
    }

    /// A report about `m` with `reply` as its Diagnostic-Code; the caller sets the action, the
    /// last error and the retry horizon of expiry NDRs and delay DSNs.
    pub(super) fn dsn_report(
        &self,
        m: &OutboundMessage,
        reply: &Reply,
        remote_mta: Option<String>,
        now: OffsetDateTime,
    ) -> NdrReport {
        NdrReport {
            internal_id: m.internal_id,
            server_fqdn: self.cfg.server.fqdn.clone(),
            sender: m.from.clone(),
            arrival: m.arrival,
            generated: now,
            subject: m.subject.clone(),
            original_message_id: m.message_id.clone(),
            recipients: m.to.clone(),
            reply: reply.clone(),
            remote_mta,
            action: DsnAction::Failed,
            last_error: None,
            retry_until: None,
        }
    }
}
