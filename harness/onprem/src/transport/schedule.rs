//! The queue's timing, the one place retry timing lives: when the transport wants to run next,
//! which messages are due, the connection retry schedule (glitch, transient, long), and the delay
//! DSNs and expiry NDRs that fall due on the way.

use hybridlab_artefacts::ndr::DsnAction;
use hybridlab_artefacts::queue::LastError;
use hybridlab_artefacts::queue::MessageStatus;
use hybridlab_model::exchange::{QueueStatus, synthetic};
use time::OffsetDateTime;

use super::RetryInterleaving;
use super::{Transport, TransportRecord};
use crate::message::OutboundMessage;

impl Transport {
    /// When the transport wants to run next: a retry, a message retry, a delay DSN or an expiry.
    pub fn next_wakeup(&self) -> Option<OffsetDateTime> {
        if self.messages.is_empty() {
            return None;
        }
        let s = &self.cfg.settings;
        let mut t: Option<OffsetDateTime> = None;
        let mut consider = |x: OffsetDateTime| {
            t = Some(t.map_or(x, |y: OffsetDateTime| y.min(x)));
        };
        let suspended = self.status == QueueStatus::Suspended;
        if !suspended {
            consider(self.queue_ready_at());
        }
        for m in &self.messages {
            if let Some(n) = m.next_retry_time
                && !suspended
            {
                consider(n.max(self.queue_ready_at()));
            }
            consider(m.message.arrival + s.message_expiration_timeout.to_time());
            if s.delay_dsn_enabled && !m.delay_dsn_sent {
                consider(m.message.arrival + s.delay_notification_timeout.to_time());
            }
        }
        t
    }

    fn queue_ready_at(&self) -> OffsetDateTime {
        self.next_retry_time.unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// Expiry NDRs and delay DSNs due at `now`.
    pub fn on_time(&mut self, now: OffsetDateTime) {
        self.last_wakeup = now;
        let s = self.cfg.settings.clone();
        let mut i = 0;
        while i < self.messages.len() {
            let m = &self.messages[i];
            if now >= m.message.arrival + s.message_expiration_timeout.to_time() {
                let id = m.message.internal_id;
                let gone = self.messages.remove(i);
                let reply = synthetic::queue_expired();
                let mut ndr = self.dsn_report(&gone.message, &reply, None, now);
                ndr.last_error = gone.last_error.clone().or_else(|| self.last_error.clone());
                self.ndrs.push(ndr);
                let rec = TransportRecord::Ndr {
                    internal_id: id,
                    reply,
                };
                self.done.push((id, rec.clone()));
                self.record(now, rec);
                continue;
            }
            if s.delay_dsn_enabled
                && !m.delay_dsn_sent
                && now >= m.message.arrival + s.delay_notification_timeout.to_time()
            {
                let id = m.message.internal_id;
                let mut dsn = self.dsn_report(&m.message, &synthetic::message_delayed(), None, now);
                dsn.action = DsnAction::Delayed;
                dsn.last_error = m.last_error.clone().or_else(|| self.last_error.clone());
                dsn.retry_until = Some(m.message.arrival + s.message_expiration_timeout.to_time());
                self.ndrs.push(dsn);
                self.messages[i].delay_dsn_sent = true;
                self.record(now, TransportRecord::DelayDsn { internal_id: id });
            }
            i += 1;
        }
        if self.messages.is_empty() {
            self.status = QueueStatus::Ready;
            self.next_retry_time = None;
        }
    }

    /// The messages a session at `now` should carry (queue not in retry, message not waiting).
    pub fn due_messages(&self, now: OffsetDateTime) -> Vec<OutboundMessage> {
        if self.status == QueueStatus::Suspended || self.queue_ready_at() > now {
            return Vec::new();
        }
        self.messages
            .iter()
            .filter(|m| m.status != MessageStatus::Suspended)
            .filter(|m| m.next_retry_time.is_none_or(|t| t <= now))
            .map(|m| m.message.clone())
            .collect()
    }

    fn schedule_connection_retry(&mut self, now: OffsetDateTime) {
        let s = &self.cfg.settings;
        let n = self.consecutive_failures;
        let glitch = match s.retry_interleaving {
            RetryInterleaving::GlitchThenTransient => s.queue_glitch_retry_count,
            RetryInterleaving::TransientOnly => 0,
        };
        let (interval, stage, status) = if n <= glitch {
            (s.queue_glitch_retry_interval, "glitch", QueueStatus::Retry)
        } else if n <= glitch + s.transient_failure_retry_count {
            (
                s.transient_failure_retry_interval,
                "transient",
                QueueStatus::Retry,
            )
        } else {
            (
                s.outbound_connection_failure_retry_interval,
                "long",
                QueueStatus::Retry,
            )
        };
        let next = now + interval.to_time();
        self.status = status;
        self.next_retry_time = Some(next);
        self.record(
            now,
            TransportRecord::RetryScheduled {
                next,
                stage: stage.into(),
            },
        );
    }

    pub(super) fn queue_failed(&mut self, le: LastError, now: OffsetDateTime) {
        self.consecutive_failures += 1;
        self.retry_count += 1;
        self.first_retry_time.get_or_insert(now);
        self.last_retry_time = Some(now);
        for m in &mut self.messages {
            m.status = MessageStatus::Retry;
            m.last_error = Some(le.clone());
            m.retry_count += 1;
        }
        self.last_error = Some(le);
        self.schedule_connection_retry(now);
    }
}
