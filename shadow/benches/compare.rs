//! Normalise + diff of a typical activation record pair (blocking invoke, `result=false`).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use serde_json::json;
use switchyard_shadow::{compare, Observed};

fn record(id: &str, start: u64, wait: u64, v: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "namespace": "guest", "name": "hello", "version": "0.0.1", "subject": "guest",
        "activationId": id, "start": start, "end": start + 7, "duration": 7, "publish": false, "logs": [],
        "response": {"status": "success", "success": true,
                     "result": {"payload": "Hello, John!", "items": [1, 2, 3, 4, 5], "meta": {"region": "eu", "version": v}}, "size": 90},
        "annotations": [{"key": "path", "value": "guest/hello"}, {"key": "waitTime", "value": wait},
                        {"key": "kind", "value": "nodejs:20"}, {"key": "timeout", "value": false},
                        {"key": "limits", "value": {"concurrency": 1, "logs": 10, "memory": 256, "timeout": 60000}}]
    }))
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let legacy = record("9f1c2b7e4a6d4e0f9c2b7e4a6d4e0f9c", 1_700_000_000_123, 35, 1);
    let same = record("0a1b2c3d4e5f60718293a4b5c6d7e8f9", 1_700_000_000_456, 4, 1);
    let different = record("0a1b2c3d4e5f60718293a4b5c6d7e8f9", 1_700_000_000_456, 4, 2);
    fn obs(body: &[u8]) -> Observed<'_> {
        Observed {
            status: Some(200),
            body,
            latency_ms: 1.0,
            timed_out: false,
            error: None,
            transaction_id: None,
            blocking: true,
        }
    }
    let ignore: Vec<String> = Vec::new();
    c.bench_function("compare/activation_record/match", |b| {
        b.iter(|| compare(black_box(&obs(&legacy)), black_box(&obs(&same)), &ignore))
    });
    c.bench_function("compare/activation_record/one_difference", |b| {
        b.iter(|| compare(black_box(&obs(&legacy)), black_box(&obs(&different)), &ignore))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
