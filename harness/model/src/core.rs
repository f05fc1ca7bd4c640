//! The one vocabulary of the lab's sans-IO protocol cores: the mock EOP's receiving session, its
//! Exchange Online sending client, the on-premises sender and the on-premises receive side.
//!
//! After quinn-proto: a core is handed bytes, end of input and timer expiries together with the
//! current (virtual) time, and answers with actions for its driver to carry out; it never reads a
//! clock, touches a socket or spawns a task. A tokio driver is a loop around
//! [`ProtocolCore::poll_action`], [`ProtocolCore::poll_timeout`] and the `handle_*` methods, so
//! the same core runs over an in-memory duplex on a paused clock, over loopback TCP, and under a
//! proptest fed arbitrary bytes.
//!
//! TLS is not part of the trait: each core has its own `handle_tls_*` input because what a
//! handshake yields differs by side (the facts a server records, the SChannel-like outcome a
//! client reports).

use time::OffsetDateTime;

/// A sans-IO protocol state machine driven by bytes, end of input and timers.
pub trait ProtocolCore {
    /// What the driver must do next (write bytes, start TLS, close...).
    type Action;

    /// Bytes read from the peer at `now`.
    fn handle_input(&mut self, now: OffsetDateTime, bytes: &[u8]);

    /// The peer closed its side of the connection (read returned 0) at `now`.
    fn handle_eof(&mut self, now: OffsetDateTime);

    /// The time [`ProtocolCore::poll_timeout`] returned has come and no input arrived first.
    fn handle_timeout(&mut self, now: OffsetDateTime);

    /// The next action to carry out, in order; `None` when the core waits for input or a timer.
    fn poll_action(&mut self) -> Option<Self::Action>;

    /// When [`ProtocolCore::handle_timeout`] must be called if nothing else happens first;
    /// `None` when no timer runs.
    fn poll_timeout(&self) -> Option<OffsetDateTime>;

    /// Whether the session is over (the driver drops the connection once the actions are drained).
    fn is_closed(&self) -> bool;
}
