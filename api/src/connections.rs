//! The cap on open connections (`api.limits.max_connections`).
//!
//! The in-flight limit ([`crate::shed`]) only sees requests that reached the router. Under an
//! open-loop overload that is too late: when the server's CPU is the bottleneck, requests wait
//! as runnable connection tasks, clients open a new connection for every request still
//! outstanding, and the wait moves into the kernel's accept queue and the clients' ephemeral
//! ports, where it ends as connection errors rather than answers (measured in
//! `docs/RELIABILITY.md`: 66,516 failed connects in a minute at 10,000 req/s).
//!
//! So every accepted connection is counted. Up to the cap it is served as usual. Past it the
//! connection is still accepted and read, but each `/v1/` request on it is answered at once
//! with the same 503 `overloaded` and `Retry-After: 1` as the in-flight limit, plus
//! `Connection: close`, so the connection ends after that answer and its slot is not taken.
//! Health, metrics and the Cockpit are served on it, also with `Connection: close`.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A TCP listener that counts its open connections against a cap.
#[derive(Debug)]
pub struct CappedListener {
    inner: TcpListener,
    open: Arc<Semaphore>,
}

impl CappedListener {
    pub fn new(inner: TcpListener, max_connections: usize) -> Self {
        Self {
            inner,
            open: Arc::new(Semaphore::new(max_connections)),
        }
    }
}

/// An accepted connection; holds its slot (if it got one) until it closes.
#[derive(Debug)]
pub struct CappedStream {
    io: TcpStream,
    slot: Option<OwnedSemaphorePermit>,
}

impl Listener for CappedListener {
    type Io = CappedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // axum's accept loop: retries, and backs off on errors such as EMFILE.
        let (io, addr) = Listener::accept(&mut self.inner).await;
        // Small JSON answers on kept-alive connections: do not wait for Nagle.
        if let Err(e) = io.set_nodelay(true) {
            tracing::debug!(cause = %e, "TCP_NODELAY not set");
        }
        let slot = self.open.clone().try_acquire_owned().ok();
        (CappedStream { io, slot }, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Whether the connection a request came on is within the cap (as `ConnectInfo<Admission>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    pub within_cap: bool,
    pub remote: SocketAddr,
}

impl Connected<IncomingStream<'_, CappedListener>> for Admission {
    fn connect_info(stream: IncomingStream<'_, CappedListener>) -> Self {
        Self {
            within_cap: stream.io().slot.is_some(),
            remote: *stream.remote_addr(),
        }
    }
}

impl AsyncRead for CappedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_past_the_cap_are_accepted_without_a_slot() {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let mut l = CappedListener::new(tcp, 1);
        let _c1 = TcpStream::connect(addr).await.unwrap();
        let (first, _) = l.accept().await;
        assert!(first.slot.is_some());
        let _c2 = TcpStream::connect(addr).await.unwrap();
        let (second, _) = l.accept().await;
        assert!(second.slot.is_none(), "over the cap");
        drop(first);
        let _c3 = TcpStream::connect(addr).await.unwrap();
        let (third, _) = l.accept().await;
        assert!(third.slot.is_some(), "a closed connection frees its slot");
    }
}
