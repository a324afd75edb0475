//! What the data plane keeps of a mirrored request: request body chunks (`Bytes` clones, capped)
//! as they stream to the primary, and the primary's status and body (capped).

use bytes::{Bytes, BytesMut};
use pingora::http::RequestHeader;
use switchyard_rules::ShadowPolicy;
use switchyard_shadow::SkipReason;

use crate::data::classify::Classified;

/// Marks mirrored requests so controllers' logs can tell them apart.
pub const SHADOW_HEADER: &str = "x-switchyard-shadow";
pub const SHADOW_FIELD: http::HeaderName = http::HeaderName::from_static(SHADOW_HEADER);

/// What the data plane collects for one mirrored request.
pub struct Tee {
    pub policy: ShadowPolicy,
    pub action: String,
    /// Invocations are POSTs; web actions may use any method.
    pub method: http::Method,
    pub path_and_query: String,
    /// The caller waits for the result (a `202` answer then means it was still queued).
    pub blocking: bool,
    /// The end-to-end fields the primary carried (set when the request is forwarded): the copy
    /// carries the same, so an action reading its headers sees the same input on both paths.
    /// They include the caller's `Authorization`, needed to run the copy as the same caller and
    /// never written anywhere.
    pub fields: http::HeaderMap,
    request: Vec<Bytes>,
    request_bytes: usize,
    pub response_status: Option<u16>,
    /// The controller's `X-Request-ID` on the primary answer (its transaction id).
    pub response_transaction_id: Option<String>,
    response: BytesMut,
    /// Why the job was given up, if it was (the reason goes into a `skipped` record).
    pub skipped: Option<SkipReason>,
    /// The counters of the ramped override whose policy this is, if it has a ramp (its mismatch
    /// gate reads the comparison).
    pub ramp_slot: Option<usize>,
    max_body: usize,
}

impl Tee {
    /// The tee of an invocation about to be forwarded: the action's full name, the method and
    /// the path as the client sent them (the fields come when the request is forwarded).
    pub fn for_request(
        policy: ShadowPolicy,
        class: &Classified<'_>,
        req: &RequestHeader,
        blocking: bool,
        max_body: usize,
    ) -> Tee {
        let action = if class.package.is_empty() {
            format!("{}/{}", class.namespace, class.action)
        } else {
            format!("{}/{}/{}", class.namespace, class.package, class.action)
        };
        Tee {
            policy,
            action,
            method: req.method.clone(),
            path_and_query: req.uri.path_and_query().map_or_else(|| req.uri.path().to_string(), |p| p.to_string()),
            blocking,
            fields: http::HeaderMap::new(),
            request: Vec::new(),
            request_bytes: 0,
            response_status: None,
            response_transaction_id: None,
            response: BytesMut::new(),
            skipped: None,
            ramp_slot: None,
            max_body,
        }
    }

    /// Keeps a copy of a request body chunk (a reference-counted clone, no byte copy).
    pub fn request_chunk(&mut self, chunk: &Bytes) {
        if self.skipped.is_some() {
            return;
        }
        self.request_bytes += chunk.len();
        if self.request_bytes > self.max_body {
            self.give_up(SkipReason::RequestTooLarge);
        } else {
            self.request.push(chunk.clone());
        }
    }

    pub fn response_chunk(&mut self, chunk: &Bytes) {
        if self.skipped.is_some() {
            return;
        }
        if self.response.len() + chunk.len() > self.max_body {
            self.give_up(SkipReason::ResponseTooLarge);
        } else {
            self.response.extend_from_slice(chunk);
        }
    }

    /// The caller's `Authorization` value, to redact in every form it may take.
    pub fn authorization(&self) -> Option<&str> {
        self.fields.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok())
    }

    /// The request body as sent to the primary.
    pub fn request_body(&self) -> Bytes {
        self.request.concat().into()
    }

    /// The primary's answer body.
    pub fn response_body(&self) -> Bytes {
        self.response.clone().freeze()
    }

    /// Gives the job up: it becomes a `skipped` record with this reason.
    pub fn give_up(&mut self, reason: SkipReason) {
        self.skipped = Some(reason);
        self.request = Vec::new();
        self.response = BytesMut::new();
    }
}

/// A per-request coin flip with probability `share` (shadow sampling is not sticky).
pub fn sampled(share: switchyard_rules::Share) -> bool {
    share.ppm() > 0 && rand::random::<u32>() % 1_000_000 < share.ppm()
}
