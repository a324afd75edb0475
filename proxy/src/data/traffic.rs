//! The data plane's request metrics: what each request and invocation got, by pool and kind, and
//! why a request went to the other pool than the rules chose. Registered once, when the service
//! is built, so the request path only bumps atomics.

use metrics::{Counter, Histogram};
use strum::IntoEnumIterator;
use switchyard_rules::Pool;
use switchyard_shadow::AnswerClass;

use crate::data::classify::RequestKind;
use crate::ops::metrics::{
    status_class_index, Counters, Metrics, FALLBACKS_TOTAL, INVOCATIONS_TOTAL, REQUESTS_TOTAL, REQUEST_DURATION,
    STATUS_CLASSES,
};

/// Why a request went to the other pool than the rules chose (the `reason` label of
/// `switchyard_fallbacks_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::EnumCount, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum FallbackReason {
    /// The chosen pool had no healthy member when the request arrived.
    NoHealthyMember,
    /// Connecting to the chosen pool failed; the request had not been delivered.
    ConnectFailed,
}

pub struct Traffic {
    /// [pool][kind][status class]
    requests: Vec<Vec<Vec<Counter>>>,
    /// [pool][invocation kind][answer class]
    invocations: Vec<Vec<Vec<Counter>>>,
    /// [pool][kind]
    durations: Vec<Vec<Histogram>>,
    /// [from pool]
    fallbacks: Vec<Counters<FallbackReason>>,
}

impl Traffic {
    pub fn new(m: &Metrics) -> Traffic {
        let per_pool_kind = |invocations_only: bool, series: &dyn Fn(Pool, RequestKind) -> Vec<Counter>| {
            let kinds = RequestKind::iter().filter(move |k| !invocations_only || k.is_invocation());
            Pool::iter().map(|p| kinds.clone().map(|k| series(p, k)).collect()).collect()
        };
        let requests = per_pool_kind(false, &|p, k| {
            STATUS_CLASSES
                .iter()
                .map(|c| m.counter(REQUESTS_TOTAL, &[("pool", p.as_str()), ("kind", k.as_str()), ("status_class", c)]))
                .collect()
        });
        // Only the kinds that run an action: they are declared first, so their index fits.
        let invocations = per_pool_kind(true, &|p, k| {
            AnswerClass::iter()
                .map(|c| {
                    m.counter(INVOCATIONS_TOTAL, &[("pool", p.as_str()), ("kind", k.as_str()), ("class", c.as_str())])
                })
                .collect()
        });
        let durations = Pool::iter()
            .map(|p| {
                RequestKind::iter()
                    .map(|k| m.histogram(REQUEST_DURATION, &[("pool", p.as_str()), ("kind", k.as_str())]))
                    .collect()
            })
            .collect();
        let fallbacks = Pool::iter()
            .map(|from| {
                Counters::new(m, FALLBACKS_TOTAL, &[("from", from.as_str()), ("to", from.other().as_str())], "reason")
            })
            .collect();
        Traffic { requests, invocations, durations, fallbacks }
    }

    pub fn request(&self, pool: Pool, kind: RequestKind, status: Option<u16>, seconds: f64) {
        self.requests[pool.index()][kind.index()][status_class_index(status)].increment(1);
        self.durations[pool.index()][kind.index()].record(seconds);
    }

    /// Counts what an invocation's answer says about the pool that served it.
    /// `kind` must be an invocation kind.
    pub fn invocation(&self, pool: Pool, kind: RequestKind, class: AnswerClass) {
        self.invocations[pool.index()][kind.index()][class.index()].increment(1);
    }

    pub fn fallback(&self, from: Pool, reason: FallbackReason) {
        self.fallbacks[from.index()].count(reason);
    }
}
