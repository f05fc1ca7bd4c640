//! The API's listener with a header-read deadline: a client must send a request's complete
//! header (up to the blank line) within [`HEADER_READ_TIMEOUT`] of connecting or of the last
//! response, or the connection is closed. axum's `serve` sets no such timeout, and a request
//! line sent one byte a second held a connection forever (issue 12). The body of a request is
//! bounded by the router's body limit; `GET /wait` may block for minutes after its header.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

/// How long a request header may take by default.
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The API's listener: accepted streams carry the header deadline.
pub(crate) struct GuardedListener(pub(crate) TcpListener, pub(crate) Duration);

impl axum::serve::Listener for GuardedListener {
    type Io = HeaderDeadline;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let mut backoff = Duration::from_millis(10);
        loop {
            match self.0.accept().await {
                Ok((io, addr)) => return (HeaderDeadline::new(io, self.1), addr),
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::debug!(error = %e, "api: accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A stream that fails reads once a request header has been awaited too long.
pub(crate) struct HeaderDeadline {
    io: TcpStream,
    /// Waiting for (the rest of) a request header.
    in_head: bool,
    /// The last four bytes read (the end of a header is `\r\n\r\n`).
    tail: [u8; 4],
    deadline: Pin<Box<Sleep>>,
    limit: Duration,
}

/// The tokio instant `d` from now (the API runs on real time, not on the lab clock).
#[allow(clippy::disallowed_methods)]
fn from_now(d: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(d).unwrap_or(now)
}

impl HeaderDeadline {
    fn new(io: TcpStream, limit: Duration) -> Self {
        Self {
            io,
            in_head: true,
            tail: [0; 4],
            deadline: Box::pin(tokio::time::sleep_until(from_now(limit))),
            limit,
        }
    }
}

impl AsyncRead for HeaderDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.in_head && self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request header not complete in time",
            )));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r
            && self.in_head
        {
            let mut tail = self.tail;
            for &b in &buf.filled()[before..] {
                tail = [tail[1], tail[2], tail[3], b];
                if &tail == b"\r\n\r\n" {
                    self.in_head = false;
                    break;
                }
            }
            self.tail = tail;
        }
        r
    }
}

impl AsyncWrite for HeaderDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r
            && n > 0
            && !self.in_head
        {
            // A response: the next request's header starts its own deadline.
            self.in_head = true;
            self.tail = [0; 4];
            let at = from_now(self.limit);
            self.deadline.as_mut().reset(at);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
