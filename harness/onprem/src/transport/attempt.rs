//! One delivery attempt seen from the queue: the session's configuration, then its report (or a
//! DNS failure) turned into delivered messages, NDRs, message retries or a queue retry.

use std::net::SocketAddr;

use hybridlab_artefacts::connectivity::ConnectivityEvent;
use hybridlab_artefacts::queue::MessageStatus;
use hybridlab_model::exchange::QueueStatus;
use hybridlab_model::reply::Reply;
use time::OffsetDateTime;

use super::last_error::{ErrorSource, failure_source, wrap_led};
use super::{Transport, TransportRecord};
use crate::resolver::{DnsFailure, Target};
use crate::sender::{MessageDisposition, SessionConfig, SessionReport};

impl Transport {
    /// Builds the session configuration for an attempt to `target` (and consumes the fallback flag).
    pub fn session_config(&mut self, target: Target, next_hop_domain: &str) -> SessionConfig {
        let id = self.next_session;
        self.next_session = self.next_session.wrapping_add(1);
        let skip = std::mem::take(&mut self.fallback_next);
        self.status = QueueStatus::Active;
        let now = self.last_wakeup;
        let store = self.store_for_session(now);
        self.session_store = Some(store.clone());
        SessionConfig {
            connector: self.cfg.connector.clone(),
            server: self.cfg.server.clone(),
            store,
            selection: self.cfg.selection,
            schannel: self.cfg.schannel.clone(),
            session_id: hybridlab_model::x509::hex_upper(&id.to_be_bytes()),
            target,
            next_hop_domain: next_hop_domain.to_string(),
            skip_starttls: skip,
        }
    }

    /// The next hop did not resolve.
    pub fn on_dns_failure(&mut self, failure: &DnsFailure, now: OffsetDateTime) {
        let reply = failure.reply();
        // the queue opens a connection attempt that ends at the lookup [U: lines reconstructed]
        let id = self.next_session;
        self.next_session = self.next_session.wrapping_add(1);
        let sid = hybridlab_model::x509::hex_upper(&id.to_be_bytes());
        let dest = self.next_hop_domain();
        let n = self.messages.len() as u32;
        let guid = self.cfg.connector.guid();
        let delivery = self.delivery_type().to_string();
        // the text without the status codes: `DNS query failed. The error was: ...`
        let text = reply
            .text()
            .split_once(' ')
            .filter(|(code, _)| code.contains('.'))
            .map_or(reply.text(), |(_, t)| t)
            .to_string();
        self.connectivity.extend([
            ConnectivityEvent::queue_open(now, &sid, &dest, &delivery, &guid, n),
            ConnectivityEvent::dns_failed(now, &sid, &dest, &text),
            ConnectivityEvent::summary(now, &sid, &dest, 0, 0, Some(&text)),
        ]);
        let led = wrap_led(
            self.cfg.server.version,
            &ErrorSource::Dns(&reply),
            SocketAddr::from(([0, 0, 0, 0], self.cfg.connector.port)),
        );
        self.record(now, TransportRecord::DnsFailed { led: led.clone() });
        let le = self.last_error(led, None, now);
        self.queue_failed(le, now);
    }

    /// A session finished.
    pub fn on_session(
        &mut self,
        report: SessionReport,
        fallback_plaintext: bool,
        now: OffsetDateTime,
    ) {
        let target = report.target.clone();
        self.log_connectivity(&report, now);
        let index = self.sessions.len();
        let store = self.session_store.take();
        if let Some(note) = self.pending_cache_note.take()
            && report.selection.is_some()
        {
            self.record(now, note);
        }
        self.cache_selection(&report, store);
        self.record(
            now,
            TransportRecord::Attempt {
                session: index,
                fallback_plaintext,
            },
        );
        let version = self.cfg.server.version;
        let mut delivered_any = false;
        let mut deferred: Option<Reply> = None;
        for r in &report.messages {
            let Some(pos) = self
                .messages
                .iter()
                .position(|m| m.message.internal_id == r.internal_id)
            else {
                continue;
            };
            match &r.status {
                MessageDisposition::Delivered { reply } => {
                    delivered_any = true;
                    self.messages.remove(pos);
                    let rec = TransportRecord::Delivered {
                        internal_id: r.internal_id,
                        reply: reply.clone(),
                    };
                    self.done.push((r.internal_id, rec.clone()));
                    self.record(now, rec);
                }
                MessageDisposition::Rejected { reply, local } => {
                    let gone = self.messages.remove(pos);
                    let remote = (!local).then(|| target.host.clone());
                    self.ndrs
                        .push(self.ndr_report(&gone.message, reply, remote, now));
                    let rec = TransportRecord::Ndr {
                        internal_id: r.internal_id,
                        reply: reply.clone(),
                    };
                    self.done.push((r.internal_id, rec.clone()));
                    self.record(now, rec);
                }
                MessageDisposition::Deferred { reply } => {
                    let led = wrap_led(version, &ErrorSource::Response(reply), report.log.remote);
                    let le = self.last_error(led, Some(&target), now);
                    let next = now + self.cfg.settings.message_retry_interval.to_time();
                    let m = &mut self.messages[pos];
                    m.status = MessageStatus::Retry;
                    m.retry_count += 1;
                    m.last_error = Some(le);
                    m.next_retry_time = Some(next);
                    deferred.get_or_insert(reply.clone());
                }
                MessageDisposition::NotAttempted => {}
            }
        }
        match &report.failure {
            Some(f) if !delivered_any => {
                let led = wrap_led(version, &failure_source(f), report.log.remote);
                let le = self.last_error(led, Some(&target), now);
                if f.is_tls_negotiation_failure() && !self.cfg.connector.tls_required() {
                    self.fallback_next = true;
                }
                self.sessions.push(report);
                self.queue_failed(le, now);
                return;
            }
            _ => {}
        }
        self.sessions.push(report);
        if !delivered_any && let Some(reply) = deferred {
            // the connection worked, every message was deferred: the queue shows the reply and
            // waits MessageRetryInterval [U]
            let led = wrap_led(version, &ErrorSource::Response(&reply), target.addr);
            self.retry_count += 1;
            self.first_retry_time.get_or_insert(now);
            self.last_retry_time = Some(now);
            self.last_error = Some(self.last_error(led, Some(&target), now));
            let next = now + self.cfg.settings.message_retry_interval.to_time();
            self.status = QueueStatus::Retry;
            self.next_retry_time = Some(next);
            self.record(
                now,
                TransportRecord::RetryScheduled {
                    next,
                    stage: "message".into(),
                },
            );
            return;
        }
        // the connection worked
        self.consecutive_failures = 0;
        self.status = QueueStatus::Ready;
        self.last_error = None;
        self.retry_count = 0;
        self.first_retry_time = None;
        self.next_retry_time = None;
        for m in &mut self.messages {
            if m.next_retry_time.is_none() {
                m.status = MessageStatus::Ready;
            }
        }
    }
}
