//! Client connections before Pingora's HTTP code reads them: a cap on how many are open at once,
//! and a deadline for every request head.
//!
//! Pingora times out single reads (`read_timeout`, the keep-alive timeout), not a whole request
//! head, so a client that trickles one byte every few seconds would hold a connection, a task and
//! its buffers for as long as it likes (slowloris). [`ClientGuard`] wraps the listener's
//! application and hands it a [`GuardedStream`]: it watches the bytes the client sends for the
//! end of each request head and fails the read once `request_header_timeout` has passed without
//! one. A new connection's clock starts at accept (a connection that never speaks is closed too);
//! a kept-alive connection's clock starts at the first byte of its next request, so idle time
//! between requests stays governed by the keep-alive timeout.
//!
//! Where one request ends and the next begins is seen from the server side: the first write after
//! a head (other than an interim `1xx` response) is its response, and the next bytes read after
//! that start the next request. HTTP/2 connections (ALPN `h2` or the cleartext preface) have no
//! such heads; they pass through untouched (the h2 layer bounds them with its idle timeout).
//!
//! On a TLS listener the guard also runs the handshake (Pingora's listener only accepts TCP
//! there), with the gateway's own rustls configuration: a session cache and rotating ticket keys
//! Pingora's settings cannot express, a handshake bounded by `request_header_timeout` instead of
//! Pingora's fixed 60 s, and a connection that counts against `max_connections` from accept.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::listeners::tls::Acceptor;
use pingora::listeners::TlsAccept;
use pingora::protocols::tls::server::handshake_with_callback;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, Ssl, Stream, UniqueID,
    UniqueIDType, ALPN,
};
use pingora::server::ShutdownWatch;
use prometheus::{IntCounter, IntCounterVec, IntGauge};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The HTTP/2 connection preface's first line, up to where an HTTP/1 parser would stop.
const H2_PREFACE_START: &[u8] = b"PRI * HTTP/2.0\r\n";

/// What [`ClientGuard`] enforces, and where it counts.
#[derive(Debug, Clone)]
pub(crate) struct ConnLimits {
    /// Longest a request head may take.
    pub header_timeout: Duration,
    /// Most client connections open at once, shared by every listener.
    pub max_connections: usize,
    /// Open client connections, shared by every listener.
    pub open: Arc<AtomicUsize>,
    /// Mirrors `open` for /metrics.
    pub open_gauge: IntGauge,
    /// Connections closed at accept because `max_connections` were open.
    pub refused: IntCounter,
    /// Connections closed because a request head missed its deadline.
    pub header_timeouts: IntCounter,
    /// TLS handshakes that failed (`error`) or missed the deadline (`timeout`).
    pub tls_handshake_failures: IntCounterVec,
}

/// The TLS side of a listener: the acceptor built from the gateway's rustls configuration and
/// the callback that records the client certificate identity.
pub(crate) struct TlsTermination {
    pub acceptor: Acceptor,
    pub callback: Box<dyn TlsAccept + Send + Sync>,
}

/// A listener application behind the connection cap and the request-head deadline.
pub(crate) struct ClientGuard<A> {
    inner: Arc<A>,
    limits: ConnLimits,
    tls: Option<TlsTermination>,
}

impl<A> ClientGuard<A> {
    /// `tls`: terminate TLS here (the listener itself is plain TCP).
    pub(crate) fn new(inner: A, limits: ConnLimits, tls: Option<TlsTermination>) -> Self {
        Self {
            inner: Arc::new(inner),
            limits,
            tls,
        }
    }

    /// The TLS handshake within the head deadline; None (and counted) when it fails.
    async fn handshake(&self, tls: &TlsTermination, stream: Stream) -> Option<Stream> {
        let handshake = handshake_with_callback(
            &tls.acceptor,
            RawStream { inner: stream },
            tls.callback.as_ref(),
        );
        let reason = match tokio::time::timeout(self.limits.header_timeout, handshake).await {
            Ok(Ok(stream)) => return Some(Box::new(stream)),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "tls handshake failed");
                "error"
            }
            Err(_) => "timeout",
        };
        self.limits
            .tls_handshake_failures
            .with_label_values(&[reason])
            .inc();
        None
    }
}

#[async_trait]
impl<A> ServerApp for ClientGuard<A>
where
    A: ServerApp + Send + Sync + 'static,
{
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        // A stream that comes back for reuse is already guarded and holds its slot.
        if stream.as_any().is::<GuardedStream>() {
            return A::process_new(&self.inner, stream, shutdown).await;
        }
        let Some(slot) = Slot::take(&self.limits) else {
            self.limits.refused.inc();
            return None; // dropping the stream closes it
        };
        let stream = match &self.tls {
            Some(tls) => self.handshake(tls, stream).await?,
            None => stream,
        };
        let h2 = matches!(stream.selected_alpn_proto(), Some(ALPN::H2));
        let guarded = GuardedStream::new(stream, slot, self.limits.clone(), h2);
        A::process_new(&self.inner, Box::new(guarded), shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
    }
}

/// One place among `max_connections`, given back when the connection is dropped.
struct Slot {
    open: Arc<AtomicUsize>,
    gauge: IntGauge,
}

impl Slot {
    fn take(limits: &ConnLimits) -> Option<Self> {
        let mut current = limits.open.load(Ordering::Relaxed);
        loop {
            if current >= limits.max_connections {
                return None;
            }
            match limits.open.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => current = now,
            }
        }
        limits.open_gauge.inc();
        Some(Self {
            open: Arc::clone(&limits.open),
            gauge: limits.open_gauge.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
        self.gauge.dec();
    }
}

/// Where the client is in its current request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a request head that must end by the deadline.
    Head { deadline: Instant },
    /// The head has arrived; the body (if any) and the response follow.
    AfterHead,
    /// The response has started; the next byte read starts the next request.
    BetweenRequests,
    /// HTTP/2, an upgraded connection, or past a head deadline: not watched.
    Unwatched,
}

/// A client connection whose request heads must arrive within the deadline.
pub(crate) struct GuardedStream {
    inner: Stream,
    _slot: Slot,
    limits: ConnLimits,
    phase: Phase,
    /// The last three bytes seen of the current head, to find `\r\n\r\n` across reads.
    tail: [u8; 3],
    tail_len: usize,
    /// Bytes of the connection's first read(s), to recognise the HTTP/2 preface.
    first_bytes: usize,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl fmt::Debug for GuardedStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedStream")
            .field("inner", &self.inner)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl GuardedStream {
    fn new(inner: Stream, slot: Slot, limits: ConnLimits, h2: bool) -> Self {
        let phase = if h2 {
            Phase::Unwatched
        } else {
            Phase::Head {
                deadline: Instant::now() + limits.header_timeout,
            }
        };
        Self {
            inner,
            _slot: slot,
            limits,
            phase,
            tail: [0; 3],
            tail_len: 0,
            first_bytes: 0,
            sleep: None,
        }
    }

    /// Follows the request through bytes just read.
    fn saw_read(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if self.phase == Phase::BetweenRequests {
            self.phase = Phase::Head {
                deadline: Instant::now() + self.limits.header_timeout,
            };
            self.tail_len = 0;
        }
        if !matches!(self.phase, Phase::Head { .. }) {
            return;
        }
        if self.first_bytes < H2_PREFACE_START.len() {
            let start = self.first_bytes;
            let n = data.len().min(H2_PREFACE_START.len() - start);
            if data[..n] == H2_PREFACE_START[start..start + n] {
                self.first_bytes += n;
                if self.first_bytes == H2_PREFACE_START.len() {
                    self.phase = Phase::Unwatched;
                    return;
                }
            } else {
                self.first_bytes = usize::MAX; // not HTTP/2; stop looking
            }
        }
        if head_ends(&self.tail[..self.tail_len], data) {
            self.phase = Phase::AfterHead;
            self.sleep = None;
            return;
        }
        // Keep the last three bytes (of the old tail and the new data) for the next read.
        let mut joined = [0u8; 6];
        let old = &self.tail[..self.tail_len];
        let new = &data[data.len().saturating_sub(3)..];
        joined[..old.len()].copy_from_slice(old);
        joined[old.len()..old.len() + new.len()].copy_from_slice(new);
        let total = old.len() + new.len();
        let keep = total.min(3);
        self.tail[..keep].copy_from_slice(&joined[total - keep..total]);
        self.tail_len = keep;
    }

    /// Follows the request through bytes about to be written.
    fn saw_write(&mut self, data: &[u8]) {
        if self.phase != Phase::AfterHead || data.is_empty() {
            return;
        }
        // `100 Continue` comes before the body; `101` hands the connection to another protocol.
        if is_status_line_1xx(data) {
            if data.get(9..12) == Some(b"101") {
                self.phase = Phase::Unwatched;
            }
            return;
        }
        self.phase = Phase::BetweenRequests;
    }

    fn timed_out(&mut self) -> io::Error {
        self.phase = Phase::Unwatched;
        self.sleep = None;
        self.limits.header_timeouts.inc();
        io::Error::new(
            io::ErrorKind::TimedOut,
            "request head not complete within request_header_timeout",
        )
    }
}

/// Whether `\r\n\r\n` (or the bare `\n\n` that lenient parsers accept) ends within `tail ++ data`.
fn head_ends(tail: &[u8], data: &[u8]) -> bool {
    // Seams first: the terminator may straddle the previous read and this one.
    let seam_len = tail.len() + data.len().min(3);
    let mut seam = [0u8; 6];
    seam[..tail.len()].copy_from_slice(tail);
    seam[tail.len()..seam_len].copy_from_slice(&data[..data.len().min(3)]);
    let seam = &seam[..seam_len];
    if seam.windows(4).any(|w| w == b"\r\n\r\n") || seam.windows(2).any(|w| w == b"\n\n") {
        return true;
    }
    memchr::memmem::find(data, b"\r\n\r\n").is_some()
        || memchr::memmem::find(data, b"\n\n").is_some()
}

fn is_status_line_1xx(data: &[u8]) -> bool {
    data.len() >= 10 && data.starts_with(b"HTTP/1.") && data[8] == b' ' && data[9] == b'1'
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let phase_before = this.phase;
                this.saw_read(&buf.filled()[before..]);
                if let (Phase::Head { deadline }, Phase::Head { .. }) = (phase_before, this.phase) {
                    // Still inside a head that began before this read: a trickle that keeps
                    // every single read short still runs out of time.
                    if Instant::now() >= deadline {
                        return Poll::Ready(Err(this.timed_out()));
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let Phase::Head { deadline } = this.phase else {
                    return Poll::Pending;
                };
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if sleep.deadline() != deadline {
                    sleep.as_mut().reset(deadline);
                }
                if sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(this.timed_out()));
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = polled {
            this.saw_write(&data[..n]);
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            if n > 0 {
                let first = bufs
                    .iter()
                    .find(|b| !b.is_empty())
                    .map_or(&[][..], |b| &b[..]);
                this.saw_write(&first[..first.len().min(n)]);
            }
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The transport metadata traits Pingora asks of a stream, answered by its `inner` stream.
macro_rules! delegate_stream_metadata {
    ($t:ty) => {
        #[async_trait]
        impl Shutdown for $t {
            async fn shutdown(&mut self) {
                self.inner.shutdown().await;
            }
        }

        impl UniqueID for $t {
            fn id(&self) -> UniqueIDType {
                self.inner.id()
            }
        }

        impl Ssl for $t {
            fn get_ssl(&self) -> Option<&pingora::protocols::tls::TlsRef> {
                self.inner.get_ssl()
            }

            fn get_ssl_digest(&self) -> Option<Arc<pingora::protocols::tls::SslDigest>> {
                self.inner.get_ssl_digest()
            }

            fn selected_alpn_proto(&self) -> Option<ALPN> {
                self.inner.selected_alpn_proto()
            }
        }

        impl GetTimingDigest for $t {
            fn get_timing_digest(&self) -> Vec<Option<pingora::protocols::TimingDigest>> {
                self.inner.get_timing_digest()
            }

            fn get_read_pending_time(&self) -> Duration {
                self.inner.get_read_pending_time()
            }

            fn get_write_pending_time(&self) -> Duration {
                self.inner.get_write_pending_time()
            }
        }

        impl GetProxyDigest for $t {
            fn get_proxy_digest(
                &self,
            ) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
                self.inner.get_proxy_digest()
            }

            fn set_proxy_digest(&mut self, digest: pingora::protocols::raw_connect::ProxyDigest) {
                self.inner.set_proxy_digest(digest);
            }
        }

        impl GetSocketDigest for $t {
            fn get_socket_digest(&self) -> Option<Arc<pingora::protocols::SocketDigest>> {
                self.inner.get_socket_digest()
            }

            fn set_socket_digest(&mut self, digest: pingora::protocols::SocketDigest) {
                self.inner.set_socket_digest(digest);
            }
        }

        #[async_trait]
        impl Peek for $t {
            async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
                self.inner.try_peek(buf).await
            }
        }
    };
}

delegate_stream_metadata!(GuardedStream);
delegate_stream_metadata!(RawStream);

/// An accepted TCP stream as the TLS layer's transport (Pingora's TLS stream needs a concrete
/// type, not a boxed one).
#[derive(Debug)]
struct RawStream {
    inner: Stream,
}

impl AsyncRead for RawStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for RawStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_head_end_within_and_across_reads() {
        assert!(head_ends(b"", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(head_ends(b"\r\n\r", b"\n"));
        assert!(head_ends(b"a\r\n", b"\r\nbody"));
        assert!(head_ends(b"\n", b"\n"));
        assert!(!head_ends(b"", b"GET / HTTP/1.1\r\nHost: a\r\n"));
        assert!(!head_ends(b"\r\n", b"X"));
    }

    fn limits(header_timeout: Duration, max_connections: usize) -> ConnLimits {
        ConnLimits {
            header_timeout,
            max_connections,
            open: Arc::default(),
            open_gauge: IntGauge::new("open", "open").unwrap(),
            refused: IntCounter::new("refused", "refused").unwrap(),
            header_timeouts: IntCounter::new("timeouts", "timeouts").unwrap(),
            tls_handshake_failures: IntCounterVec::new(
                prometheus::Opts::new("tls", "tls"),
                &["reason"],
            )
            .unwrap(),
        }
    }

    fn guarded(limits: &ConnLimits) -> (tokio::io::DuplexStream, GuardedStream) {
        let (client, server) = tokio::io::duplex(4096);
        let slot = Slot::take(limits).unwrap();
        let stream = GuardedStream::new(Box::new(server), slot, limits.clone(), false);
        (client, stream)
    }

    #[tokio::test]
    async fn follows_requests_through_interim_answers_and_keep_alive() {
        let limits = limits(Duration::from_secs(10), 4);
        let (_client, mut s) = guarded(&limits);
        s.saw_read(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r");
        assert!(matches!(s.phase, Phase::Head { .. }));
        s.saw_read(b"\n\r\n");
        assert_eq!(s.phase, Phase::AfterHead);
        s.saw_write(b"HTTP/1.1 100 Continue\r\n\r\n");
        assert_eq!(
            s.phase,
            Phase::AfterHead,
            "an interim answer is not the response"
        );
        s.saw_read(b"body bytes");
        s.saw_write(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(s.phase, Phase::BetweenRequests);
        s.saw_read(b"G");
        assert!(
            matches!(s.phase, Phase::Head { .. }),
            "the next request is watched"
        );
        s.saw_read(b"ET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(s.phase, Phase::AfterHead);
        s.saw_write(b"HTTP/1.1 101 Switching Protocols\r\n");
        assert_eq!(
            s.phase,
            Phase::Unwatched,
            "an upgraded connection is not HTTP/1"
        );
    }

    #[tokio::test]
    async fn http2_preface_is_not_watched() {
        let limits = limits(Duration::from_secs(10), 4);
        let (_client, mut s) = guarded(&limits);
        s.saw_read(b"PRI * HTTP");
        s.saw_read(b"/2.0\r\n\r\nSM\r\n\r\n");
        assert_eq!(s.phase, Phase::Unwatched);
    }

    #[tokio::test]
    async fn a_trickled_head_fails_the_read_at_the_deadline() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let limits = limits(Duration::from_millis(200), 4);
        let (mut client, mut s) = guarded(&limits);
        let writer = tokio::spawn(async move {
            client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_millis(30)).await;
                if client.write_all(b"X").await.is_err() {
                    break;
                }
            }
            client
        });
        let started = Instant::now();
        let mut buf = [0u8; 64];
        let err = loop {
            match s.read(&mut buf).await {
                Ok(n) => assert!(n > 0, "closed before the deadline"),
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(limits.header_timeouts.get(), 1);
        drop(writer);
    }

    #[test]
    fn connections_above_the_cap_get_no_slot() {
        let limits = limits(Duration::from_secs(1), 2);
        let a = Slot::take(&limits).unwrap();
        let _b = Slot::take(&limits).unwrap();
        assert!(Slot::take(&limits).is_none());
        assert_eq!(limits.open_gauge.get(), 2);
        drop(a);
        assert!(Slot::take(&limits).is_some());
    }

    #[test]
    fn recognises_interim_status_lines() {
        assert!(is_status_line_1xx(b"HTTP/1.1 100 Continue\r\n\r\n"));
        assert!(is_status_line_1xx(b"HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(!is_status_line_1xx(b"HTTP/1.1 200 OK\r\n"));
        assert!(!is_status_line_1xx(b"{\"a\":1}"));
    }
}
