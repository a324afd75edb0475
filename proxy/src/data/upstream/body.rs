//! The request body hyper writes to a controller: pieces already at hand, then (for a body larger
//! than what is read before sending) the rest as the client sends it, through a small channel.
//! A body the client did not finish is an error, never an early end: hyper would otherwise close
//! a chunked body with its last chunk and the controller would run a truncated invocation.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

/// How many pieces may wait between the client's side and the controller's: one in the channel
/// while hyper writes the other keeps both sides busy without buffering a large body.
const IN_FLIGHT_PIECES: usize = 1;

/// What the client's side hands over.
enum Piece {
    Data(Bytes),
    /// The client's body is complete.
    End,
}

/// The client's side stopped before the end of its body (it went away, or timed out).
#[derive(Debug, thiserror::Error)]
#[error("the client's request body ended before its end")]
pub struct BodyAborted;

pub struct RequestBody {
    ready: VecDeque<Bytes>,
    /// The rest of a streaming body; `None` once it ended (or for a body read whole).
    rest: Option<mpsc::Receiver<Piece>>,
    /// The exact length of a body read whole.
    whole: Option<u64>,
}

/// Feeds the rest of a streaming [`RequestBody`]. Dropped before [`BodySender::finish`], it aborts
/// the body (the controller's connection is then closed, not reused).
pub struct BodySender {
    tx: mpsc::Sender<Piece>,
}

impl RequestBody {
    pub fn empty() -> RequestBody {
        RequestBody { ready: VecDeque::new(), rest: None, whole: Some(0) }
    }

    /// A body read whole.
    pub fn whole(pieces: impl IntoIterator<Item = Bytes>) -> RequestBody {
        let ready: VecDeque<Bytes> = pieces.into_iter().filter(|p| !p.is_empty()).collect();
        let len = ready.iter().map(|p| p.len() as u64).sum();
        RequestBody { ready, rest: None, whole: Some(len) }
    }

    /// A body whose first pieces are at hand and whose rest the returned sender feeds.
    pub fn streaming(first: impl IntoIterator<Item = Bytes>) -> (RequestBody, BodySender) {
        let (tx, rx) = mpsc::channel(IN_FLIGHT_PIECES);
        let ready = first.into_iter().filter(|p| !p.is_empty()).collect();
        (RequestBody { ready, rest: Some(rx), whole: None }, BodySender { tx })
    }
}

impl BodySender {
    /// Hands one piece over, waiting while the controller's side is busy. False: the exchange
    /// ended (the controller answered or the connection failed); stop sending.
    pub async fn send(&self, piece: Bytes) -> bool {
        self.tx.send(Piece::Data(piece)).await.is_ok()
    }

    /// Says the body is complete.
    pub async fn finish(&self) -> bool {
        self.tx.send(Piece::End).await.is_ok()
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyAborted;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyAborted>>> {
        if let Some(piece) = self.ready.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(piece))));
        }
        let Some(rest) = self.rest.as_mut() else { return Poll::Ready(None) };
        match rest.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Piece::Data(piece))) => Poll::Ready(Some(Ok(Frame::data(piece)))),
            Poll::Ready(Some(Piece::End)) => {
                self.rest = None;
                Poll::Ready(None)
            }
            Poll::Ready(None) => {
                self.rest = None;
                Poll::Ready(Some(Err(BodyAborted)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ready.is_empty() && self.rest.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.whole {
            Some(len) => SizeHint::with_exact(len),
            None => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_streaming_body_yields_its_pieces_then_ends_or_fails_when_abandoned() {
        let (mut body, tx) = RequestBody::streaming([Bytes::from_static(b"a")]);
        tokio::spawn(async move {
            assert!(tx.send(Bytes::from_static(b"b")).await);
            assert!(tx.finish().await);
        });
        let mut got = Vec::new();
        while let Some(frame) = body.frame().await {
            got.extend_from_slice(&frame.unwrap().into_data().unwrap());
        }
        assert_eq!(got, b"ab");
        assert!(body.is_end_stream());

        let (mut body, tx) = RequestBody::streaming([]);
        drop(tx);
        assert!(matches!(body.frame().await, Some(Err(BodyAborted))), "an abandoned body must not end cleanly");
    }

    #[test]
    fn a_whole_body_knows_its_length_and_an_empty_one_is_at_its_end() {
        let body = RequestBody::whole([Bytes::from_static(b"{}"), Bytes::new()]);
        assert_eq!(body.size_hint().exact(), Some(2));
        assert!(!body.is_end_stream());
        assert!(RequestBody::empty().is_end_stream());
    }
}
