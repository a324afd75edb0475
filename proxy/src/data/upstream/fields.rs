//! Which header fields cross the proxy, both ways: the end-to-end ones, never the hop-by-hop ones
//! (RFC 9110 §7.6.1), and the fields switchyard itself sets on the way to a controller (`Host`,
//! the request id, the body's framing). Policy only: hyper writes and parses the messages.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::Version;
use pingora::http::RequestHeader;

use crate::data::request_id::{REQUEST_ID_FIELD, REQUEST_ID_HEADER};
use crate::shadow::tee::SHADOW_HEADER;

/// The hop-by-hop fields (RFC 9110 §7.6.1), by name; `Connection` first and `Transfer-Encoding`
/// second ([`AnswerFields`] reads them by position). A `static`, not a `const`: a `const` would be
/// built and dropped again at each use, several times per request.
static HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
];

/// The fields a controller's answer usually has once switchyard added its own (see
/// [`request_fields`]): a map for 12 takes 16 slots, one for more would take 32.
const ANSWER_FIELDS: usize = 12;

/// Headers that belong to one connection: never forwarded.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(name)
}

/// The tokens of one `Connection` field.
fn tokens(value: &HeaderValue) -> impl Iterator<Item = &[u8]> {
    value.as_bytes().split(|b| *b == b',').map(<[u8]>::trim_ascii).filter(|t| !t.is_empty())
}

/// A `Connection` token that names a field (not `keep-alive` or `close`).
fn names_a_field(token: &[u8]) -> bool {
    !token.eq_ignore_ascii_case(b"keep-alive") && !token.eq_ignore_ascii_case(b"close")
}

/// The names a message's `Connection` fields list beside `keep-alive` and `close` (rare: only
/// then is anything allocated).
fn listed_names(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(tokens)
        .filter(|t| names_a_field(t))
        .filter_map(|t| HeaderName::from_bytes(t).ok())
        .collect()
}

/// The fields a request carries to a controller: the client's end-to-end fields (minus its
/// framing, `Expect`, which switchyard answers itself, a request id and a shadow marker it may have
/// sent), the client's `Host` always (a `Connection` field cannot remove it; a client without one
/// gets the controller's address, see `Client::send`), and the request id. The framing is added
/// once the body is known ([`Framing`]).
pub fn request_fields(req: &RequestHeader, request_id: &str) -> HeaderMap {
    // hyper empties this map when it writes the request and parses the answer into it: sized for
    // the answer too (the controller's fields and the three switchyard adds), it is never grown
    // and rehashed on the way back.
    let mut out = HeaderMap::with_capacity((req.headers.len() + 1).max(ANSWER_FIELDS));
    let mut connection = false;
    // One pass over the client's fields; what `Connection` lists is removed after (rare).
    for (name, value) in req.headers.iter() {
        if is_hop_by_hop(name)
            || name == header::CONTENT_LENGTH
            || name == header::EXPECT
            || name.as_str() == REQUEST_ID_HEADER
            || name.as_str() == SHADOW_HEADER
        {
            connection |= name == header::CONNECTION;
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    if connection {
        for name in listed_names(&req.headers).iter().filter(|n| **n != header::HOST) {
            out.remove(name);
        }
    }
    if let Ok(id) = HeaderValue::from_str(request_id) {
        out.insert(REQUEST_ID_FIELD, id);
    }
    out
}

/// What the client's framing fields say, read in one pass over its fields (no lookups).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientFraming {
    /// A `Transfer-Encoding` was sent.
    coded: bool,
    /// Its codings are `chunked` alone: a controller can be sent the body (pingora decodes it).
    /// Any other coding would reach the controller as a plain body it never declared, so the
    /// request is refused with 501 (RFC 9112 §6.1).
    supported: bool,
    length: Option<u64>,
}

impl ClientFraming {
    pub fn of(req: &RequestHeader) -> ClientFraming {
        let mut f = ClientFraming { coded: false, supported: true, length: None };
        for (name, value) in req.headers.iter() {
            if name == header::TRANSFER_ENCODING {
                for coding in value.as_bytes().split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                    f.supported &= !f.coded && coding.eq_ignore_ascii_case(b"chunked");
                    f.coded = true;
                }
            } else if name == header::CONTENT_LENGTH {
                f.length = value.to_str().ok().and_then(|v| v.trim().parse().ok());
            }
        }
        f
    }

    /// Whether a controller can be sent this request's body.
    pub fn supported(&self) -> bool {
        self.supported
    }
}

/// How the request body reaches the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body and no length (a GET, or a request without either field).
    None,
    Length(u64),
    Chunked,
}

impl Framing {
    /// A body read whole (`whole`: its length) goes with its length; one still streaming keeps
    /// the client's length, or is chunked; a request that sent neither field has none.
    pub fn for_request(client: ClientFraming, whole: Option<usize>) -> Framing {
        match (whole, client.length) {
            (Some(0), None) if !client.coded => Framing::None,
            (Some(len), _) => Framing::Length(len as u64),
            (None, Some(len)) if !client.coded => Framing::Length(len),
            (None, _) => Framing::Chunked,
        }
    }

    pub fn apply(self, headers: &mut HeaderMap) {
        match self {
            Framing::None => {}
            Framing::Length(n) => {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
            }
            Framing::Chunked => {
                headers.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
            }
        }
    }
}

/// What one pass over an answer's fields finds (no hashing): the hop-by-hop fields present, by
/// their bit in [`HOP_BY_HOP`]'s order, how many `Content-Length`s, and what its `Connection`
/// fields say.
struct AnswerFields {
    hop: u8,
    lengths: usize,
    close: bool,
    /// `Connection` lists a field name (rare).
    lists_names: bool,
}

impl AnswerFields {
    fn of(headers: &HeaderMap) -> AnswerFields {
        let mut f = AnswerFields { hop: 0, lengths: 0, close: false, lists_names: false };
        for (name, value) in headers.iter() {
            if name == header::CONTENT_LENGTH {
                f.lengths += 1;
            } else if let Some(i) = HOP_BY_HOP.iter().position(|h| h == name) {
                f.hop |= 1 << i;
                // `HOP_BY_HOP[0]` is `Connection`.
                if i == 0 {
                    for token in tokens(value) {
                        f.close |= token.eq_ignore_ascii_case(b"close");
                        f.lists_names |= names_a_field(token);
                    }
                }
            }
        }
        f
    }

    /// `HOP_BY_HOP[1]` is `Transfer-Encoding`.
    fn coded(&self) -> bool {
        self.hop & 2 != 0
    }

    /// Whether the connection may carry another request after this answer: HTTP/1.1 and no
    /// `close` among its `Connection` tokens, whatever else is listed (close wins, RFC 9112 §9.6).
    /// An HTTP/1.0 answer is never kept, even one saying `keep-alive` (RFC 9112 §9.3 leaves it
    /// optional; a 1.0 answer with `Transfer-Encoding` must be closed after, §6.1), nor one with
    /// both `Transfer-Encoding` and `Content-Length` (decoded by the former, but a sign of response
    /// splitting, RFC 9112 §6.3).
    fn keep(&self, version: Version) -> bool {
        version == Version::HTTP_11 && !self.close && !(self.coded() && self.lengths > 0)
    }
}

/// Whether the connection may carry another request after an answer with these fields (see
/// [`AnswerFields::keep`]).
pub fn keeps_connection(version: Version, headers: &HeaderMap) -> bool {
    AnswerFields::of(headers).keep(version)
}

/// Makes the controller's answer head, in place in hyper's (nothing copied), the one the client
/// gets: status and end-to-end fields; a length only when the controller sent one and no coding
/// (one value when it repeated it); the client's framing is set later. Returns whether the
/// connection may carry another request ([`keeps_connection`], from the same pass).
pub fn answer_head(head: &mut http::response::Parts) -> bool {
    let fields = AnswerFields::of(&head.headers);
    let keep = fields.keep(head.version);
    let headers = &mut head.headers;
    if fields.lists_names {
        // The fields the controller named as hop-by-hop too.
        for name in listed_names(headers) {
            headers.remove(name);
        }
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if fields.hop & (1 << i) != 0 {
            headers.remove(name);
        }
    }
    if fields.coded() {
        // The coding, not a length, framed the body.
        headers.remove(header::CONTENT_LENGTH);
    } else if fields.lengths > 1 {
        // Repeated, the values agree (hyper refused the answer otherwise): one says it.
        if let header::Entry::Occupied(mut entry) = headers.entry(header::CONTENT_LENGTH) {
            let first = entry.get().clone();
            entry.insert(first);
        }
    }
    head.version = Version::HTTP_11;
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(fields: &[(&str, &str)]) -> RequestHeader {
        let mut req = RequestHeader::build("POST", b"/api/v1/namespaces/guest/actions/a?blocking=true", None).unwrap();
        for (name, value) in fields {
            req.append_header(name.to_string(), *value).unwrap();
        }
        req
    }

    #[test]
    fn a_request_loses_its_hop_by_hop_fields_and_gets_host_and_the_request_id() {
        let req = request(&[
            ("connection", "keep-alive, x-private, host"),
            ("x-private", "p"),
            ("host", "whisk.example"),
            ("content-length", "2"),
            ("expect", "100-continue"),
            ("x-request-id", "client"),
            ("x-switchyard-shadow", "1"),
            ("authorization", "Basic abc"),
            ("transfer-encoding", "chunked"),
        ]);
        let out = request_fields(&req, "id-1");
        assert_eq!(out["host"], "whisk.example", "a Connection field cannot remove Host");
        assert_eq!(out["x-request-id"], "id-1");
        assert_eq!(out["authorization"], "Basic abc");
        for gone in ["x-private", "connection", "expect", "x-switchyard-shadow", "content-length", "transfer-encoding"]
        {
            assert!(!out.contains_key(gone), "{gone}");
        }
    }

    #[test]
    fn only_chunked_alone_is_a_coding_a_controller_can_be_sent() {
        let supported = |fields: &[(&str, &str)]| ClientFraming::of(&request(fields)).supported();
        assert!(supported(&[]));
        assert!(supported(&[("transfer-encoding", "Chunked")]));
        for coding in ["gzip, chunked", "chunked, identity", "gzip", ""] {
            assert!(!supported(&[("transfer-encoding", coding)]), "{coding}");
        }
        assert!(!supported(&[("transfer-encoding", "chunked"), ("transfer-encoding", "chunked")]));
    }

    #[test]
    fn the_framing_follows_the_body_read() {
        let of = |fields: &[(&str, &str)]| ClientFraming::of(&request(fields));
        let chunked = of(&[("transfer-encoding", "chunked")]);
        assert_eq!(Framing::for_request(chunked, Some(7)), Framing::Length(7));
        assert_eq!(Framing::for_request(chunked, None), Framing::Chunked);
        let big = of(&[("content-length", "5000000")]);
        assert_eq!(Framing::for_request(big, None), Framing::Length(5_000_000));
        assert_eq!(Framing::for_request(of(&[]), Some(0)), Framing::None);
        assert_eq!(Framing::for_request(of(&[("content-length", "0")]), Some(0)), Framing::Length(0));
    }

    #[test]
    fn close_wins_and_http_1_0_answers_are_never_kept() {
        let headers = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONNECTION, HeaderValue::from_str(v).unwrap());
            h
        };
        assert!(keeps_connection(Version::HTTP_11, &HeaderMap::new()));
        assert!(!keeps_connection(Version::HTTP_11, &headers("close, keep-alive")));
        assert!(!keeps_connection(Version::HTTP_11, &headers("keep-alive, Close")));
        assert!(!keeps_connection(Version::HTTP_10, &headers("keep-alive")));
        let mut both = HeaderMap::new();
        both.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        both.insert(header::CONTENT_LENGTH, HeaderValue::from_static("2"));
        assert!(!keeps_connection(Version::HTTP_11, &both));
        let mut closing =
            http::Response::builder().header("connection", "x-hop, close").body(()).unwrap().into_parts().0;
        assert!(!answer_head(&mut closing), "the head's own pass says the same");
    }

    #[test]
    fn an_answer_loses_its_hop_by_hop_fields_and_keeps_one_length() {
        let resp = http::Response::builder()
            .header("connection", "keep-alive, x-hop")
            .header("x-hop", "1")
            .header("x-end", "2")
            .header("keep-alive", "timeout=5")
            .header("content-length", "2")
            .header("content-length", "2")
            .body(())
            .unwrap();
        let (mut parts, ()) = resp.into_parts();
        assert!(answer_head(&mut parts), "a 1.1 answer without close keeps its connection");
        let h = parts.headers;
        assert_eq!(h["x-end"], "2");
        assert_eq!(h.get_all("content-length").iter().count(), 1);
        assert!(h.get("x-hop").is_none() && h.get("connection").is_none() && h.get("keep-alive").is_none());
    }
}
