//! The LastError wording: how Exchange wraps a session's failure in the queue's `LastError` by
//! version (the `451 4.4.395 ... ->` arrow wrappers of 2016 CU and later, the failover sentence of
//! 2010/2013), and the LastError record the queue keeps.

use std::net::SocketAddr;

use hybridlab_artefacts::queue::{LastError, en_us_datetime};
use hybridlab_model::exchange::ExchangeVersion;
use hybridlab_model::reply::Reply;
use time::OffsetDateTime;

use super::Transport;
use crate::resolver::Target;
use crate::sender::{FailureKind, SessionFailure};

/// What went wrong, for the LastError wrapper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorSource<'a> {
    /// A reply (from the server, or the session's synthetic ack): "responded with error".
    Response(&'a Reply),
    /// A communication failure (socket error, connect failure): "error communicating".
    Communication {
        /// The synthetic ack (`421 4.4.2 ...`, `421 4.2.1 Unable to connect`).
        ack: &'a Reply,
        /// Winsock code for connect failures (10060, 10061).
        winsock: Option<u32>,
    },
    /// DNS failure: not wrapped.
    Dns(&'a Reply),
}

/// The `LED` text Exchange `version` writes for `source`, `endpoint` being the last address tried.
pub fn wrap_led(
    version: ExchangeVersion,
    source: &ErrorSource<'_>,
    endpoint: SocketAddr,
) -> String {
    const FAILOVER: &str = "Attempted failover to alternate host, but that did not succeed. Either there are no alternate hosts, or delivery failed to all alternate hosts.";
    match source {
        ErrorSource::Dns(r) => r.one_line(),
        ErrorSource::Response(r) if version.uses_arrow_wrappers() => {
            format!(
                "451 4.4.395 Target host responded with error. -> {}",
                r.one_line()
            )
        }
        ErrorSource::Communication { ack, winsock } if version.uses_arrow_wrappers() => {
            let suffix = winsock.and_then(socket_error_suffix).unwrap_or_default();
            format!(
                "451 4.4.397 Error communicating with target host. -> {}{suffix}",
                ack.one_line()
            )
        }
        ErrorSource::Response(r) => format!(
            "451 4.4.0 Primary target IP address responded with: \"{}.\" {FAILOVER} The last endpoint attempted was {endpoint}",
            r.one_line()
        ),
        ErrorSource::Communication { ack, winsock } => {
            let detail = match winsock {
                Some(code) => format!(
                    "Failed to connect. Winsock error code: {code}, Win32 error code: {code}."
                ),
                None => format!("{}.", ack.one_line()),
            };
            format!(
                "441 4.4.1 Error encountered while communicating with primary target IP address: \"{detail}\" {FAILOVER} The last endpoint attempted was {endpoint}"
            )
        }
    }
}

/// The `-> SocketTimedout: Socket error code 10060` tail real connect-failure LastErrors carry
/// (the domain reference, sections 4.4 and 11.6).
fn socket_error_suffix(winsock: u32) -> Option<String> {
    let name = match winsock {
        10060 => "SocketTimedout",
        10061 => "SocketConnectionRefused",
        10065 => "SocketHostUnreachable",
        10051 => "SocketNetworkUnreachable",
        _ => return None,
    };
    Some(format!(" -> {name}: Socket error code {winsock}"))
}

pub(super) fn failure_source(f: &SessionFailure) -> ErrorSource<'_> {
    match &f.kind {
        FailureKind::Dns => ErrorSource::Dns(&f.ack),
        FailureKind::ConnectFailed { failure } => ErrorSource::Communication {
            ack: &f.ack,
            winsock: Some(failure.winsock_code()),
        },
        _ if f.is_communication_error() => ErrorSource::Communication {
            ack: &f.ack,
            winsock: None,
        },
        _ => ErrorSource::Response(&f.ack),
    }
}

impl Transport {
    pub(super) fn last_error(
        &self,
        led: String,
        target: Option<&Target>,
        now: OffsetDateTime,
    ) -> LastError {
        LastError {
            led,
            msg: String::new(),
            fqdn: target.map(|t| t.host.clone()).unwrap_or_default(),
            ip: target.map(|t| t.addr.ip().to_string()).unwrap_or_default(),
            lrt: en_us_datetime(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolver::DnsFailure;
    use hybridlab_model::exchange::synthetic;

    #[test]
    fn wrappers_by_version() {
        let ep: SocketAddr = "104.47.10.36:25".parse().unwrap();
        let timed_out = synthetic::connection_timed_out();
        assert_eq!(
            wrap_led(
                ExchangeVersion::Exchange2019,
                &ErrorSource::Response(&timed_out),
                ep
            ),
            "451 4.4.395 Target host responded with error. -> 421 4.4.1 Connection timed out"
        );
        let dropped = synthetic::connection_dropped();
        assert_eq!(
            wrap_led(
                ExchangeVersion::Exchange2016,
                &ErrorSource::Communication {
                    ack: &dropped,
                    winsock: None
                },
                ep
            ),
            "451 4.4.397 Error communicating with target host. -> 421 4.4.2 Connection dropped due to SocketError"
        );
        assert_eq!(
            wrap_led(
                ExchangeVersion::Exchange2013,
                &ErrorSource::Response(&timed_out),
                ep
            ),
            "451 4.4.0 Primary target IP address responded with: \"421 4.4.1 Connection timed out.\" Attempted failover to alternate host, but that did not succeed. Either there are no alternate hosts, or delivery failed to all alternate hosts. The last endpoint attempted was 104.47.10.36:25"
        );
        let unable = synthetic::unable_to_connect();
        assert_eq!(
            wrap_led(
                ExchangeVersion::Exchange2010,
                &ErrorSource::Communication {
                    ack: &unable,
                    winsock: Some(10060)
                },
                ep
            ),
            "441 4.4.1 Error encountered while communicating with primary target IP address: \"Failed to connect. Winsock error code: 10060, Win32 error code: 10060.\" Attempted failover to alternate host, but that did not succeed. Either there are no alternate hosts, or delivery failed to all alternate hosts. The last endpoint attempted was 104.47.10.36:25"
        );
        assert_eq!(
            wrap_led(
                ExchangeVersion::ExchangeSe,
                &ErrorSource::Communication {
                    ack: &unable,
                    winsock: Some(10060)
                },
                ep
            ),
            "451 4.4.397 Error communicating with target host. -> 421 4.2.1 Unable to connect -> SocketTimedout: Socket error code 10060"
        );
        assert_eq!(
            wrap_led(
                ExchangeVersion::Exchange2019,
                &ErrorSource::Communication {
                    ack: &unable,
                    winsock: Some(10061)
                },
                ep
            ),
            "451 4.4.397 Error communicating with target host. -> 421 4.2.1 Unable to connect -> SocketConnectionRefused: Socket error code 10061"
        );
        let dns = DnsFailure::NonExistentDomain { name: "x".into() }.reply();
        assert_eq!(
            wrap_led(ExchangeVersion::Exchange2019, &ErrorSource::Dns(&dns), ep),
            "451 4.4.0 DNS query failed. The error was: SMTPSEND.DNS.NonExistentDomain; nonexistent domain"
        );
    }
}
