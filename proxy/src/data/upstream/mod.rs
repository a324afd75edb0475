//! switchyard's own HTTP/1.1 client to the controllers. pingora's proxy flow costs a body channel,
//! a duplex task pair, timers and a header flush per request, and writes the request head and body
//! in two sends; this client writes a request in one send, reads the answer into the connection's
//! own reused buffer, and keeps idle connections per controller ([`pool`]).

pub mod pool;
pub mod wire;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use wire::{AnswerHead, Framing, Garbled, Step};

/// Room kept free in a connection's read buffer before each read.
const READ_CHUNK: usize = 8 * 1024;

/// What went wrong between switchyard and a controller.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    #[error("connecting to the controller: {0}")]
    Connect(io::Error),
    #[error("connecting to the controller timed out")]
    ConnectTimeout,
    #[error("writing the request to the controller: {0}")]
    Write(io::Error),
    #[error("writing the request to the controller timed out")]
    WriteTimeout,
    #[error("reading the controller's answer: {0}")]
    Read(io::Error),
    #[error("the controller did not answer in time")]
    ReadTimeout,
    #[error("the controller closed the connection before its whole answer")]
    Closed,
    #[error("the controller's answer is garbled: {0}")]
    Garbled(#[from] Garbled),
}

impl Fault {
    /// The connection never opened: the request was not delivered, so another controller may try.
    pub fn before_delivery(&self) -> bool {
        matches!(self, Fault::Connect(_) | Fault::ConnectTimeout)
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self, Fault::ConnectTimeout | Fault::WriteTimeout | Fault::ReadTimeout)
    }
}

/// The per-operation limits of an exchange (each read or write, not the whole answer).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub connect: Duration,
    pub read: Duration,
    pub write: Duration,
}

/// One open connection to a controller.
pub struct Connection {
    stream: TcpStream,
    /// Answer bytes read and not yet used; kept (with its allocation) while the connection idles.
    buf: BytesMut,
    /// Where the next request is put together before its one write (kept like `buf`).
    pub out: BytesMut,
    /// Whether any byte of the current answer has arrived (a reused connection that fails before
    /// one did was most likely closed by the controller while idle).
    answered: bool,
}

impl Connection {
    pub async fn open(addr: SocketAddr, limits: &Limits) -> Result<Connection, Fault> {
        let stream = match pingora::time::timeout(limits.connect, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(Fault::Connect(e)),
            Err(_) => return Err(Fault::ConnectTimeout),
        };
        // Requests go out whole in one write; Nagle would only delay the next one.
        stream.set_nodelay(true).map_err(Fault::Connect)?;
        Ok(Connection { stream, buf: BytesMut::with_capacity(READ_CHUNK), out: BytesMut::new(), answered: false })
    }

    /// Whether the connection can carry another request: nothing has arrived on it unasked (a
    /// close, a reset or stray bytes). One non-blocking read, unless the runtime already knows the
    /// socket is quiet.
    fn is_quiet(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    pub fn answered(&self) -> bool {
        self.answered
    }

    /// Writes what was put together in [`Connection::out`] (one send, unless the socket's buffer
    /// is full).
    pub async fn send(&mut self, limits: &Limits) -> Result<(), Fault> {
        match pingora::time::timeout(limits.write, self.stream.write_all(&self.out)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Fault::Write(e)),
            Err(_) => Err(Fault::WriteTimeout),
        }
    }

    /// Reads more of the answer into the buffer. `Ok(false)`: the controller closed the connection.
    async fn fill(&mut self, limits: &Limits) -> Result<bool, Fault> {
        self.buf.reserve(READ_CHUNK);
        match pingora::time::timeout(limits.read, self.stream.read_buf(&mut self.buf)).await {
            Ok(Ok(0)) => Ok(false),
            Ok(Ok(_)) => {
                self.answered = true;
                Ok(true)
            }
            Ok(Err(e)) => Err(Fault::Read(e)),
            Err(_) => Err(Fault::ReadTimeout),
        }
    }

    /// Reads the answer head, skipping informational (1xx) answers.
    pub async fn read_head(&mut self, head_request: bool, limits: &Limits) -> Result<AnswerHead, Fault> {
        loop {
            match wire::parse_answer(&self.buf, head_request)? {
                Some((len, Some(head))) => {
                    let _ = self.buf.split_to(len);
                    return Ok(head);
                }
                Some((len, None)) => {
                    let _ = self.buf.split_to(len);
                }
                None => {
                    if !self.fill(limits).await? {
                        return Err(Fault::Closed);
                    }
                }
            }
        }
    }

    /// The next piece of the answer body, decoded already or after reading; `None` at its end.
    pub async fn read_body(&mut self, framing: &mut Framing, limits: &Limits) -> Result<Option<Bytes>, Fault> {
        loop {
            match framing.decode(&mut self.buf)? {
                Step::Data(data) => return Ok(Some(data)),
                Step::Done => return Ok(None),
                Step::NeedMore => {
                    if !self.fill(limits).await? {
                        return if framing.ends_at_close() {
                            *framing = Framing::Done;
                            Ok(None)
                        } else {
                            Err(Fault::Closed)
                        };
                    }
                }
            }
        }
    }

    /// The answer body already read with the head, without waiting for more: its pieces, and
    /// whether they are the whole body.
    pub fn buffered_body(&mut self, framing: &mut Framing) -> Result<(Vec<Bytes>, bool), Fault> {
        let mut pieces = Vec::new();
        loop {
            match framing.decode(&mut self.buf)? {
                Step::Data(data) => pieces.push(data),
                Step::NeedMore => return Ok((pieces, false)),
                Step::Done => return Ok((pieces, true)),
            }
        }
    }

    /// Whether the connection can be kept for another request after this answer.
    pub fn reusable(&self, keep_alive: bool, framing: &Framing) -> bool {
        keep_alive && *framing == Framing::Done && self.buf.is_empty()
    }

    /// Ends an exchange on a connection that is kept.
    fn finish_exchange(&mut self) {
        self.answered = false;
    }
}
