//! What the transport reported about failed deliveries: queues and messages with a `LastError`,
//! and the failed recipients of non-delivery reports.

use hybridlab_artefacts::ndr::NdrRecipient;
use hybridlab_artefacts::queue::LastError;
use hybridlab_model::reply::Reply;

use hybridlab_artefacts::Artefacts;

use super::connectors::{domain_connector, queue_connector};
use super::session::SessionView;
use super::{ConnectorView, Ev, prop_ev};

/// A queue (or queued message) with a `LastError`.
#[derive(Debug, Clone)]
pub(crate) struct QueueView<'a> {
    pub next_hop: &'a str,
    /// `NextHopConnector`: the connector's GUID (an older lab wrote its name).
    pub next_hop_connector: Option<&'a str>,
    pub last_error: &'a LastError,
    pub ev: Option<Ev>,
    pub connector: Option<usize>,
    /// The server the queue is on (`SERVER\\N` identity, `PSComputerName`, the folder).
    pub server: Option<&'a str>,
}

impl QueueView<'_> {
    pub(crate) fn led(&self) -> &str {
        &self.last_error.led
    }

    /// The reply the LED wraps: after the last `->`, inside `responded with: "..."`, or the LED.
    pub(crate) fn inner_reply(&self) -> Option<Reply> {
        let led = self.led().trim();
        let inner = if let Some((_, r)) = led.rsplit_once("->") {
            r.trim()
        } else if let Some(i) = led.find("responded with: \"") {
            let rest = &led[i + "responded with: \"".len()..];
            rest.split('"').next().unwrap_or(rest).trim_end_matches('.')
        } else {
            led
        };
        Reply::parse_line(inner)
    }
}

/// One failed recipient of a non-delivery report, with the reply its `Diagnostic-Code` carries.
#[derive(Debug, Clone)]
pub(crate) struct NdrView<'a> {
    pub rcpt: &'a NdrRecipient,
    pub reply: Reply,
    /// The `Diagnostic-Code` line.
    pub ev: Ev,
    /// The send connector whose address spaces cover the recipient's domain.
    pub connector: Option<usize>,
}

/// The queues, then the messages, that carry a `LastError`, each with its connector.
pub(super) fn queue_views<'a>(
    a: &'a Artefacts,
    connectors: &[ConnectorView<'a>],
    sessions: &[SessionView<'a>],
) -> Vec<QueueView<'a>> {
    let mut queues = Vec::new();
    for q in &a.queues {
        if let Some(le) = &q.row.last_error {
            queues.push(QueueView {
                next_hop: &q.row.next_hop_domain,
                next_hop_connector: q.row.next_hop_connector.as_deref(),
                last_error: le,
                ev: prop_ev(&q.evidence, "LastError"),
                connector: None,
                server: q.server.as_deref(),
            });
        }
    }
    for m in &a.messages {
        if let Some(le) = &m.row.last_error {
            let queue = a
                .queues
                .iter()
                .find(|q| q.row.identity.eq_ignore_ascii_case(&m.row.queue));
            queues.push(QueueView {
                next_hop: queue.map_or("", |q| q.row.next_hop_domain.as_str()),
                next_hop_connector: queue.and_then(|q| q.row.next_hop_connector.as_deref()),
                last_error: le,
                ev: prop_ev(&m.evidence, "LastError"),
                connector: None,
                server: m.server.as_deref(),
            });
        }
    }
    // The last error an NDR's or delay DSN's human part names (an expiry NDR's Diagnostic-Code
    // is only `4.4.7`): read like a queue's, next hop the recipient's domain.
    for n in &a.ndrs {
        for r in &n.recipients {
            if let (Some(le), Some(ev)) = (&r.last_error, &r.last_error_evidence) {
                queues.push(QueueView {
                    next_hop: r.address.rsplit_once('@').map_or("", |(_, d)| d),
                    next_hop_connector: None,
                    last_error: le,
                    ev: Some(Ev::of(ev, n.date)),
                    connector: None,
                    server: None,
                });
            }
        }
    }
    for q in &mut queues {
        q.connector = queue_connector(q, connectors, sessions);
    }
    queues
}

/// The failed recipients of every non-delivery report whose `Diagnostic-Code` holds a reply, each
/// with the connector that covers its domain.
pub(super) fn ndr_views<'a>(
    a: &'a Artefacts,
    connectors: &[ConnectorView<'a>],
) -> Vec<NdrView<'a>> {
    let mut ndrs = Vec::new();
    for n in &a.ndrs {
        for rcpt in &n.recipients {
            let Some(reply) = rcpt.reply() else { continue };
            let domain = rcpt.address.rsplit_once('@').map_or("", |(_, d)| d);
            ndrs.push(NdrView {
                rcpt,
                reply,
                ev: Ev::of(&rcpt.evidence, n.date),
                connector: domain_connector(domain, connectors),
            });
        }
    }
    ndrs
}
