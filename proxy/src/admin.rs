//! The admin listener: health, readiness, Prometheus metrics and the active rules.
//! Served by hyper on the control-plane runtime, apart from client traffic.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::state::Shared;

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    resp
}

fn json_reply(status: StatusCode, body: &Value) -> Reply {
    reply(
        status,
        "application/json",
        serde_json::to_vec_pretty(body).unwrap_or_default(),
    )
}

/// Accepts admin connections until the task is dropped.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, std::convert::Infallible>(route(&shared, req)) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn route(shared: &Shared, req: Request<Incoming>) -> Reply {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => reply(StatusCode::OK, "text/plain", "ok\n"),
        (&Method::GET, "/readyz") => readiness(shared),
        (&Method::GET, "/metrics") => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            shared.metrics.render(),
        ),
        (&Method::GET, "/rules") => json_reply(StatusCode::OK, &shared.rules.load().describe()),
        (_, "/healthz" | "/readyz" | "/metrics" | "/rules") => json_reply(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"error": "method not allowed"}),
        ),
        _ => json_reply(
            StatusCode::NOT_FOUND,
            &json!({"error": "not found", "endpoints": ["/healthz", "/readyz", "/metrics", "/rules"]}),
        ),
    }
}

/// Ready once rules are loaded (always true after start) and the default pool has a healthy
/// controller: before that, traffic could only fail or fall back.
fn readiness(shared: &Shared) -> Reply {
    let active = shared.rules.load();
    let default_pool = active.rules.default_pool;
    let pools: serde_json::Map<String, Value> = shared
        .pools
        .all()
        .iter()
        .map(|p| {
            let members: Vec<Value> = p
                .members
                .iter()
                .map(|m| json!({"address": m.addr.to_string(), "healthy": m.is_healthy()}))
                .collect();
            (
                p.pool.as_str().to_string(),
                json!({"healthy": p.healthy_count(), "members": members}),
            )
        })
        .collect();
    let ready = shared.pools.get(default_pool).healthy_count() > 0;
    let body = json!({
        "ready": ready,
        "rules_version": active.rules.version,
        "default_pool": default_pool.as_str(),
        "pools": pools,
    });
    json_reply(
        if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        &body,
    )
}

pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
