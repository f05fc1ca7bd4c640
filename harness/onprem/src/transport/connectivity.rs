//! The connectivity log lines of a finished session: the queue's `+` line, the DNS answer,
//! `Established connection` or `Failed connection`, and the `-` summary.

use hybridlab_artefacts::connectivity::ConnectivityEvent;
use hybridlab_artefacts::protocol_log::SessionEvent;
use hybridlab_model::reply::Reply;
use time::OffsetDateTime;

use super::Transport;
use crate::sender::{FailureKind, MessageDisposition, SessionFailure, SessionReport};

impl Transport {
    /// The connectivity log lines of a finished session (before the queue changes).
    pub(super) fn log_connectivity(&mut self, report: &SessionReport, now: OffsetDateTime) {
        let sid = report.log.session_id.clone();
        let dest = self.next_hop_domain();
        let start = report.log.events.first().map_or(now, |e| e.at);
        let connected = report
            .log
            .events
            .iter()
            .find(|e| matches!(e.event, SessionEvent::Connected))
            .map(|e| e.at);
        let end = report.log.events.last().map_or(now, |e| e.at).max(start);
        let cross = self.cfg.connector.cloud_services_mail_enabled;
        let (mut sent, mut bytes) = (0u64, 0u64);
        let mut deferred: Option<&Reply> = None;
        for r in &report.messages {
            match &r.status {
                MessageDisposition::Delivered { .. } => {
                    sent += 1;
                    bytes += self
                        .messages
                        .iter()
                        .find(|m| m.message.internal_id == r.internal_id)
                        .map_or(0, |m| m.message.wire(cross).len() as u64);
                }
                MessageDisposition::Deferred { reply } => {
                    deferred.get_or_insert(reply);
                }
                _ => {}
            }
        }
        let detail = match (&report.failure, deferred) {
            _ if sent > 0 => None,
            (Some(f), _) => Some(format!("Retry : {}", f.ack.one_line())),
            (None, Some(r)) => Some(format!("Retry : {}", r.one_line())),
            (None, None) => None,
        };
        let n = self.messages.len() as u32;
        let guid = self.cfg.connector.guid();
        let delivery = self.delivery_type().to_string();
        let mut lines = vec![
            ConnectivityEvent::queue_open(start, &sid, &dest, &delivery, &guid, n),
            ConnectivityEvent::dns_resolved(
                start,
                &sid,
                &dest,
                &report.target.host,
                &[report.target.addr.ip()],
            ),
        ];
        match (connected, &report.failure) {
            (Some(at), _) => lines.push(ConnectivityEvent::established(
                at,
                &sid,
                &dest,
                report.log.remote,
            )),
            (
                None,
                Some(SessionFailure {
                    kind: FailureKind::ConnectFailed { failure },
                    ..
                }),
            ) => lines.push(ConnectivityEvent::failed_connection(
                now,
                &sid,
                &dest,
                report.log.remote,
                &format!("{}:{}", failure.as_str(), failure.winsock_code()),
            )),
            _ => {}
        }
        let end = if connected.is_some() { end } else { now };
        lines.push(ConnectivityEvent::summary(
            end,
            &sid,
            &dest,
            sent,
            bytes,
            detail.as_deref(),
        ));
        self.connectivity.extend(lines);
    }
}
