//! A client connection as pingora's HTTP/1 session reads and writes it: the socket behind a read
//! buffer and a write buffer (`read_buffer_bytes`, `write_buffer_bytes`), with the address it came
//! from. The listener makes one for each connection it accepts (see `listener`); pingora's own
//! stream type can only be made with its buffers by pingora's listener.
//!
//! The buffers behave as pingora's (tokio's `BufReader` over a `BufWriter`): a request's head is
//! read in one `recv`, a parked connection's wait for its next request fills the read buffer
//! without taking from it (see `idle`), and an answer's head with a small body leaves in one send.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use pingora::protocols::l4::socket::SocketAddr as PeerAddr;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, TimingDigest, UniqueID,
    UniqueIDType,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufStream, ReadBuf};
use tokio::net::TcpStream;

#[derive(Debug)]
pub struct ClientStream {
    io: BufStream<TcpStream>,
    /// The socket's addresses for pingora's session; the peer's is known from `accept`, so
    /// reading it costs no system call.
    digest: Arc<SocketDigest>,
}

impl ClientStream {
    pub fn new(socket: TcpStream, peer: SocketAddr, read_buffer: usize, write_buffer: usize) -> ClientStream {
        use std::os::fd::AsRawFd;
        let digest = SocketDigest::from_raw_fd(socket.as_raw_fd());
        // A new cell: it cannot be set already.
        let _ = digest.peer_addr.set(Some(PeerAddr::Inet(peer)));
        ClientStream { io: BufStream::with_capacity(read_buffer, write_buffer, socket), digest: Arc::new(digest) }
    }
}

impl Drop for ClientStream {
    /// A session that failed mid-answer is dropped without a shutdown: what was written of the
    /// answer still goes out (if the socket takes it at once, as pingora's stream does), so the
    /// client sees an answer cut short rather than none.
    fn drop(&mut self) {
        use futures::FutureExt;
        let _ = self.io.flush().now_or_never();
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
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

#[async_trait]
impl Shutdown for ClientStream {
    /// Runs when pingora closes a connection it will not reuse: what is buffered goes out first.
    async fn shutdown(&mut self) {
        if let Err(e) = AsyncWriteExt::shutdown(self).await {
            tracing::debug!(error = %e, "closing a client connection failed");
        }
    }
}

impl UniqueID for ClientStream {
    fn id(&self) -> UniqueIDType {
        use std::os::fd::AsRawFd;
        self.io.get_ref().as_raw_fd()
    }
}

/// Plain text: no TLS.
impl Ssl for ClientStream {}

/// pingora peeks only to tell HTTP/2 from HTTP/1, which this listener does not do.
#[async_trait]
impl Peek for ClientStream {}

impl GetTimingDigest for ClientStream {
    /// pingora asks for it at every request, for its logs; switchyard reads none, and an empty
    /// list allocates nothing.
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        Vec::new()
    }
}

impl GetProxyDigest for ClientStream {
    /// Clients connect directly (no PROXY protocol).
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        None
    }
}

impl GetSocketDigest for ClientStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        Some(Arc::clone(&self.digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A client and the stream the proxy makes of its connection, with 512-byte buffers.
    async fn connected() -> (TcpStream, ClientStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (socket, peer) = listener.accept().await.unwrap();
        (client, ClientStream::new(socket, peer, 512, 512))
    }

    /// What pingora's session relies on: the peer's address without a system call, the read
    /// buffer filled by a read of nothing (the parked wait) and then read from, and writes that
    /// leave together at the flush.
    #[tokio::test]
    async fn a_client_stream_buffers_as_pingora_s_does_and_knows_its_peer() {
        let (mut client, mut stream) = connected().await;
        let digest = stream.get_socket_digest().unwrap();
        assert_eq!(digest.peer_addr().and_then(|a| a.as_inet()).copied(), Some(client.local_addr().unwrap()));

        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        assert_eq!(stream.read(&mut []).await.unwrap(), 0, "a read of nothing");
        let mut head = [0u8; 64];
        let n = stream.read(&mut head).await.unwrap();
        assert_eq!(&head[..n], b"GET / HTTP/1.1\r\n\r\n", "the wait took nothing from the request");

        stream.write_all(b"HTTP/1.1 204 No Content\r\n").await.unwrap();
        stream.write_all(b"\r\n").await.unwrap();
        stream.flush().await.unwrap();
        let mut answer = [0u8; 64];
        let n = client.read(&mut answer).await.unwrap();
        assert_eq!(&answer[..n], b"HTTP/1.1 204 No Content\r\n\r\n", "both writes arrived in one read");
        Shutdown::shutdown(&mut stream).await;
        assert_eq!(client.read(&mut answer).await.unwrap(), 0, "closed for writing");
    }

    /// pingora drops a session that failed mid-answer without shutting it down: the part of the
    /// answer already written must still reach the client, before the close.
    #[tokio::test]
    async fn what_was_written_goes_out_when_the_stream_is_dropped() {
        let (mut client, mut stream) = connected().await;
        stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"cut\":").await.unwrap();
        drop(stream);
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"cut\":");
    }
}
