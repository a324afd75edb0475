//! The HTTP/1.1 wire between switchyard and a controller: the request head switchyard writes, the
//! answer head it parses, and the answer body's framing (a length, chunks, or until the controller
//! closes). Pure functions over buffers; the connection and its timeouts are `exchange`'s.

use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};

use crate::data::request_id::REQUEST_ID_HEADER;
use crate::shadow::tee::SHADOW_HEADER;

/// The longest answer head read from a controller, and the most header fields in it.
pub const MAX_ANSWER_HEAD: usize = 64 * 1024;
const MAX_ANSWER_HEADERS: usize = 128;
/// The longest chunk-size line (with extensions) or trailer line of a chunked answer.
const MAX_CHUNK_LINE: usize = 4 * 1024;

/// What the controller's answer was that cannot be forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Garbled {
    #[error("the answer head is not HTTP/1.x")]
    Head,
    #[error("the answer head is larger than {MAX_ANSWER_HEAD} bytes or has more than {MAX_ANSWER_HEADERS} fields")]
    HeadTooLarge,
    #[error("the answer's Content-Length is not one number")]
    ContentLength,
    #[error("the answer's chunked body is malformed")]
    Chunk,
    #[error("the controller switched protocols, which switchyard never asks for")]
    Upgrade,
}

/// Headers that belong to one connection (RFC 9110 §7.6.1): never forwarded.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TRANSFER_ENCODING
        || name == header::TE
        || name == header::TRAILER
        || name == header::UPGRADE
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

/// Whether the message's `Connection` header lists `name` as hop-by-hop too.
fn listed_in_connection(headers: &http::HeaderMap, name: &HeaderName) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|v| {
        v.as_bytes()
            .split(|b| *b == b',')
            .any(|token| token.trim_ascii().eq_ignore_ascii_case(name.as_str().as_bytes()))
    })
}

/// How the request body reaches the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFraming {
    /// No body and no length (a GET, or a request without either header).
    None,
    Length(u64),
    Chunked,
}

impl RequestFraming {
    /// A body read whole (`whole`: its length) goes with its length, a chunked one too; one still
    /// streaming keeps the client's framing (pingora validated it: one length, or chunked last);
    /// a request that sent neither field has none.
    pub fn for_request(req: &RequestHeader, whole: Option<usize>) -> RequestFraming {
        let chunked = req.headers.contains_key(header::TRANSFER_ENCODING);
        let length = req.headers.get(header::CONTENT_LENGTH);
        match whole {
            Some(0) if !chunked && length.is_none() => RequestFraming::None,
            Some(len) => RequestFraming::Length(len as u64),
            None if chunked => RequestFraming::Chunked,
            None => RequestFraming::Length(
                length
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(',').next()?.trim().parse().ok())
                    .unwrap_or(0),
            ),
        }
    }

    /// Puts a piece of the body in wire form.
    pub fn put_body(self, out: &mut BytesMut, piece: &[u8]) {
        match self {
            RequestFraming::Chunked => {
                out.put_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                out.put_slice(piece);
                out.put_slice(b"\r\n");
            }
            _ => out.put_slice(piece),
        }
    }

    /// Puts what ends the body (the last chunk of a chunked one; nothing otherwise).
    pub fn put_end(self, out: &mut BytesMut) {
        if self == RequestFraming::Chunked {
            out.put_slice(b"0\r\n\r\n");
        }
    }
}

/// Writes the request line and head for the controller: the client's fields minus the hop-by-hop
/// ones, its framing and a shadow marker it may have sent; plus the request id, the framing
/// chosen, and `Host` when the client sent none.
pub fn request_head(
    req: &RequestHeader,
    request_id: &str,
    authority: SocketAddr,
    framing: RequestFraming,
    out: &mut BytesMut,
) {
    out.reserve(256 + req.headers.len() * 48);
    out.put_slice(req.method.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(req.raw_path());
    out.put_slice(b" HTTP/1.1\r\n");
    let listed = req.headers.contains_key(header::CONNECTION);
    for (name, value) in req.headers.iter() {
        if is_hop_by_hop(name)
            || name == header::CONTENT_LENGTH
            || name == header::EXPECT
            || name.as_str() == REQUEST_ID_HEADER
            || name.as_str() == SHADOW_HEADER
            || (listed && listed_in_connection(&req.headers, name))
        {
            continue;
        }
        put_field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if !req.headers.contains_key(header::HOST) {
        put_field(out, b"host", authority.to_string().as_bytes());
    }
    put_field(out, REQUEST_ID_HEADER.as_bytes(), request_id.as_bytes());
    match framing {
        RequestFraming::None => {}
        RequestFraming::Length(n) => put_field(out, b"content-length", itoa::Buffer::new().format(n).as_bytes()),
        RequestFraming::Chunked => put_field(out, b"transfer-encoding", b"chunked"),
    }
    out.put_slice(b"\r\n");
}

fn put_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// A parsed answer head.
pub struct AnswerHead {
    /// The answer to forward: status and the end-to-end fields (framing set by [`Framing`]).
    pub header: ResponseHeader,
    pub body: Framing,
    /// The controller keeps the connection open after this answer.
    pub keep_alive: bool,
}

/// Parses an answer head at the start of `buf`. `Ok(None)`: incomplete, read more. `Ok(Some((n,
/// None)))`: an informational (1xx) answer of `n` bytes to skip. `head_request`: the answer has no
/// body whatever its fields say.
pub fn parse_answer(buf: &[u8], head_request: bool) -> Result<Option<(usize, Option<AnswerHead>)>, Garbled> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_ANSWER_HEADERS];
    let mut parsed = httparse::Response::new(&mut fields);
    let mut config = httparse::ParserConfig::default();
    config.allow_spaces_after_header_name_in_responses(true);
    let len = match config.parse_response(&mut parsed, buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_ANSWER_HEAD => return Err(Garbled::HeadTooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Garbled::HeadTooLarge),
        Err(_) => return Err(Garbled::Head),
    };
    let status = parsed.code.ok_or(Garbled::Head)?;
    if status == 101 {
        return Err(Garbled::Upgrade);
    }
    if (100..200).contains(&status) {
        return Ok(Some((len, None)));
    }
    let mut header =
        ResponseHeader::build_no_case(status, Some(parsed.headers.len() + 4)).map_err(|_| Garbled::Head)?;
    // `coded`: a Transfer-Encoding whose last coding is not chunked, which only the end of the
    // connection delimits (RFC 9112 §6.3).
    let (mut chunked, mut coded, mut length, mut close) = (false, false, None::<u64>, parsed.version == Some(0));
    let mut connection_tokens: Vec<&[u8]> = Vec::new();
    for f in parsed.headers.iter() {
        if f.name.eq_ignore_ascii_case("connection") {
            for token in f.value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    // HTTP/1.0 answers keep the connection only when they say so.
                    close = false;
                } else {
                    connection_tokens.push(token);
                }
            }
        } else if f.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked =
                f.value.rsplit(|b| *b == b',').next().is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            coded = !chunked;
        } else if f.name.eq_ignore_ascii_case("content-length") {
            for value in f.value.split(|b| *b == b',') {
                let n = std::str::from_utf8(value.trim_ascii()).ok().and_then(|s| s.parse::<u64>().ok());
                match (n, length) {
                    (None, _) => return Err(Garbled::ContentLength),
                    (Some(n), Some(seen)) if n != seen => return Err(Garbled::ContentLength),
                    (Some(n), _) => length = Some(n),
                }
            }
        }
    }
    for f in parsed.headers.iter() {
        let Ok(name) = HeaderName::from_bytes(f.name.as_bytes()) else { return Err(Garbled::Head) };
        if is_hop_by_hop(&name)
            || (name == header::CONTENT_LENGTH && (chunked || coded))
            || connection_tokens.iter().any(|t| t.eq_ignore_ascii_case(name.as_str().as_bytes()))
        {
            continue;
        }
        let Ok(value) = HeaderValue::from_bytes(f.value) else { return Err(Garbled::Head) };
        if name == header::CONTENT_LENGTH {
            // Duplicates were checked to agree: one field says it.
            if header.headers.contains_key(header::CONTENT_LENGTH) {
                continue;
            }
        }
        header.append_header(name, value).map_err(|_| Garbled::Head)?;
    }
    let body = if head_request || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked(Chunk::Size)
    } else if let Some(n) = length.filter(|_| !coded) {
        Framing::Length(n)
    } else {
        close = true;
        Framing::UntilClose
    };
    Ok(Some((len, Some(AnswerHead { header, body, keep_alive: !close }))))
}

/// How the answer body is delimited, and how much of it is still to come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Empty,
    /// This many bytes remain.
    Length(u64),
    Chunked(Chunk),
    /// Everything until the controller closes the connection (never reused).
    UntilClose,
    /// The whole body was read.
    Done,
}

/// Where a chunked body's decoder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers,
}

/// What decoding the buffered bytes gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Data(Bytes),
    /// Nothing decodable is buffered: read more (at the end of the stream for [`Framing::UntilClose`]).
    NeedMore,
    Done,
}

impl Framing {
    /// Decodes the next piece of body from `buf`, consuming what it used.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Step, Garbled> {
        loop {
            match self {
                Framing::Empty | Framing::Done | Framing::Length(0) => {
                    *self = Framing::Done;
                    return Ok(Step::Done);
                }
                Framing::Length(n) => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let take = (*n).min(buf.len() as u64);
                    *n -= take;
                    return Ok(Step::Data(buf.split_to(take as usize).freeze()));
                }
                Framing::UntilClose => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    return Ok(Step::Data(buf.split().freeze()));
                }
                Framing::Chunked(Chunk::Data(n)) => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let take = (*n).min(buf.len() as u64);
                    *n -= take;
                    if *n == 0 {
                        *self = Framing::Chunked(Chunk::DataEnd);
                    }
                    return Ok(Step::Data(buf.split_to(take as usize).freeze()));
                }
                Framing::Chunked(Chunk::DataEnd) => {
                    if buf.len() < 2 {
                        return Ok(Step::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(Garbled::Chunk);
                    }
                    let _ = buf.split_to(2);
                    *self = Framing::Chunked(Chunk::Size);
                }
                Framing::Chunked(Chunk::Size) => {
                    let Some(line) = take_line(buf)? else { return Ok(Step::NeedMore) };
                    let size = line[..].split(|b| *b == b';').next().unwrap_or_default().trim_ascii();
                    let size = std::str::from_utf8(size)
                        .ok()
                        .filter(|s| !s.is_empty() && s.len() <= 16)
                        .and_then(|s| u64::from_str_radix(s, 16).ok())
                        .ok_or(Garbled::Chunk)?;
                    *self = Framing::Chunked(if size == 0 { Chunk::Trailers } else { Chunk::Data(size) });
                }
                Framing::Chunked(Chunk::Trailers) => {
                    let Some(line) = take_line(buf)? else { return Ok(Step::NeedMore) };
                    if line.is_empty() {
                        *self = Framing::Done;
                        return Ok(Step::Done);
                    }
                }
            }
        }
    }

    /// Whether the end of the stream ends this body rather than cutting it short.
    pub fn ends_at_close(&self) -> bool {
        matches!(self, Framing::UntilClose | Framing::Done | Framing::Empty)
    }
}

/// Takes one CRLF-terminated line (without the CRLF) off the front of `buf`.
fn take_line(buf: &mut BytesMut) -> Result<Option<BytesMut>, Garbled> {
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(end) => {
            let line = buf.split_to(end);
            let _ = buf.split_to(2);
            Ok(Some(line))
        }
        None if buf.len() > MAX_CHUNK_LINE => Err(Garbled::Chunk),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(framing: &mut Framing, bytes: &[u8]) -> Result<(Vec<u8>, bool), Garbled> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        loop {
            match framing.decode(&mut buf)? {
                Step::Data(d) => out.extend_from_slice(&d),
                Step::NeedMore => return Ok((out, false)),
                Step::Done => return Ok((out, true)),
            }
        }
    }

    #[test]
    fn a_chunked_body_decodes_fed_byte_by_byte_or_at_once() {
        let wire = b"5;ext=1\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nx-trailer: t\r\n\r\n";
        let mut framing = Framing::Chunked(Chunk::Size);
        assert_eq!(decode_all(&mut framing, wire), Ok((b"hello world!".to_vec(), true)));
        let (mut framing, mut buf, mut out) = (Framing::Chunked(Chunk::Size), BytesMut::new(), Vec::new());
        let mut done = false;
        for b in wire {
            buf.put_u8(*b);
            loop {
                match framing.decode(&mut buf).unwrap() {
                    Step::Data(d) => out.extend_from_slice(&d),
                    Step::NeedMore => break,
                    Step::Done => {
                        done = true;
                        break;
                    }
                }
            }
        }
        assert!(done);
        assert_eq!(out, b"hello world!");
    }

    #[test]
    fn malformed_chunks_are_refused() {
        for wire in [&b"zz\r\n"[..], b"5\r\nhelloXX", b"\r\n", b"11111111111111111\r\n"] {
            assert_eq!(decode_all(&mut Framing::Chunked(Chunk::Size), wire), Err(Garbled::Chunk), "{wire:?}");
        }
        assert_eq!(decode_all(&mut Framing::Chunked(Chunk::Size), &[b'1'; 5000]), Err(Garbled::Chunk));
    }

    #[test]
    fn a_length_body_stops_at_its_length() {
        let mut framing = Framing::Length(5);
        let mut buf = BytesMut::from(&b"helloHTTP/1.1"[..]);
        assert_eq!(framing.decode(&mut buf), Ok(Step::Data(Bytes::from_static(b"hello"))));
        assert_eq!(framing.decode(&mut buf), Ok(Step::Done));
        assert_eq!(&buf[..], b"HTTP/1.1");
    }

    fn answer(wire: &str, head: bool) -> AnswerHead {
        match parse_answer(wire.as_bytes(), head) {
            Ok(Some((_, Some(a)))) => a,
            other => panic!("{wire:?}: {:?}", other.map(|o| o.map(|(n, a)| (n, a.is_some())))),
        }
    }

    #[test]
    fn answer_heads_say_their_framing_and_lose_their_hop_by_hop_fields() {
        let a = answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, x-hop\r\nx-hop: 1\r\nx-end: 2\r\nKeep-Alive: timeout=5\r\n\r\n{}", false);
        assert_eq!(a.body, Framing::Length(2));
        assert!(a.keep_alive);
        let h = &a.header.headers;
        assert_eq!(h["content-length"], "2");
        assert_eq!(h["x-end"], "2");
        assert!(h.get("x-hop").is_none() && h.get("connection").is_none() && h.get("keep-alive").is_none());

        let a = answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n", false);
        assert_eq!(a.body, Framing::Chunked(Chunk::Size));
        assert!(
            a.header.headers.get("content-length").is_none() && a.header.headers.get("transfer-encoding").is_none()
        );

        let a = answer("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", false);
        assert_eq!(a.body, Framing::UntilClose);
        assert!(!a.keep_alive);
        assert!(!answer("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false).keep_alive);
        assert!(answer("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", false).keep_alive);

        // A HEAD answer keeps the length of what a GET would get, and has no body.
        let a = answer("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true);
        assert_eq!((a.body, a.header.headers["content-length"].to_str().unwrap()), (Framing::Empty, "10"));
        assert_eq!(answer("HTTP/1.1 204 No Content\r\n\r\n", false).body, Framing::Empty);
        assert_eq!(answer("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n", false).body, Framing::Length(3));
    }

    #[test]
    fn informational_partial_and_bad_heads() {
        assert!(matches!(parse_answer(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1", false), Ok(Some((25, None)))));
        assert!(matches!(parse_answer(b"HTTP/1.1 200 OK\r\nContent-Le", false), Ok(None)));
        assert!(matches!(parse_answer(b"SSH-2.0\r\n\r\n", false), Err(Garbled::Head)));
        assert!(matches!(
            parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", false),
            Err(Garbled::ContentLength)
        ));
        assert!(matches!(parse_answer(b"HTTP/1.1 101 Switching\r\n\r\n", false), Err(Garbled::Upgrade)));
        let huge = format!("HTTP/1.1 200 OK\r\nx: {}", "a".repeat(MAX_ANSWER_HEAD));
        assert!(matches!(parse_answer(huge.as_bytes(), false), Err(Garbled::HeadTooLarge)));
    }

    #[test]
    fn the_request_head_drops_hop_by_hop_fields_and_sets_id_host_and_framing() {
        let mut req = RequestHeader::build("POST", b"/api/v1/namespaces/guest/actions/a?blocking=true", None).unwrap();
        for (name, value) in [
            ("connection", "keep-alive, x-private"),
            ("x-private", "p"),
            ("content-length", "2"),
            ("expect", "100-continue"),
            ("x-request-id", "client"),
            ("x-switchyard-shadow", "1"),
            ("authorization", "Basic abc"),
        ] {
            req.append_header(name, value).unwrap();
        }
        let mut out = BytesMut::new();
        request_head(&req, "id-1", "127.0.0.1:9".parse().unwrap(), RequestFraming::Length(2), &mut out);
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(text.starts_with("POST /api/v1/namespaces/guest/actions/a?blocking=true HTTP/1.1\r\n"), "{text}");
        assert!(text.ends_with("\r\nhost: 127.0.0.1:9\r\nx-request-id: id-1\r\ncontent-length: 2\r\n\r\n"), "{text}");
        assert!(text.contains("authorization: Basic abc\r\n"));
        for gone in ["x-private", "connection", "expect", "client", "x-switchyard-shadow"] {
            assert!(!text.contains(gone), "{gone} in {text}");
        }
    }

    #[test]
    fn chunks_are_written_in_wire_form() {
        let mut out = BytesMut::new();
        RequestFraming::Chunked.put_body(&mut out, b"hello world!");
        RequestFraming::Chunked.put_end(&mut out);
        assert_eq!(&out[..], b"c\r\nhello world!\r\n0\r\n\r\n");
        let mut out = BytesMut::new();
        RequestFraming::Length(2).put_body(&mut out, b"{}");
        RequestFraming::Length(2).put_end(&mut out);
        assert_eq!(&out[..], b"{}");
    }

    #[test]
    fn the_framing_follows_the_body_read() {
        let mut post = RequestHeader::build("POST", b"/", None).unwrap();
        post.append_header("transfer-encoding", "chunked").unwrap();
        assert_eq!(RequestFraming::for_request(&post, Some(7)), RequestFraming::Length(7));
        assert_eq!(RequestFraming::for_request(&post, None), RequestFraming::Chunked);
        let mut big = RequestHeader::build("POST", b"/", None).unwrap();
        big.append_header("content-length", "5000000").unwrap();
        assert_eq!(RequestFraming::for_request(&big, None), RequestFraming::Length(5_000_000));
        let get = RequestHeader::build("GET", b"/", None).unwrap();
        assert_eq!(RequestFraming::for_request(&get, Some(0)), RequestFraming::None);
    }
}
