# syntax=docker/dockerfile:1
# The switchyard image that deploy/kubernetes/ runs (switchyard:0.1.0):
#   docker build -t switchyard:0.1.0 .
# Build stage: the pinned Rust toolchain, the locked dependency graph.
FROM rust:1.95.0-slim-bookworm AS build
# cmake: pingora's zlib build; libssl-dev and pkg-config: librdkafka's TLS through OpenSSL.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake libssl-dev pkg-config make g++ \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p switchyard \
    && install -D -m 0755 target/release/switchyard /out/switchyard

# Runtime stage: only what the binary links against (glibc, OpenSSL) and CA certificates.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/switchyard /usr/local/bin/switchyard
COPY deploy/config/switchyard.toml deploy/config/rules.toml /etc/switchyard/
# The uid the Kubernetes Deployment runs as (runAsUser 65532), and a writable directory for the
# shadow record file (mount a volume there to keep it across restarts).
RUN groupadd --gid 65532 switchyard \
    && useradd --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin switchyard \
    && install -d -o 65532 -g 65532 /var/lib/switchyard
ENV SWITCHYARD_SHADOW__RECORDS_FILE=/var/lib/switchyard/shadow-records.jsonl
WORKDIR /var/lib/switchyard
USER 65532:65532
# The proxy listener and the admin API (health, readiness, metrics, rules).
EXPOSE 8080 9090
# Exec form: switchyard is PID 1 and receives SIGTERM (and SIGQUIT, SIGHUP) itself.
ENTRYPOINT ["/usr/local/bin/switchyard"]
CMD ["run", "--config", "/etc/switchyard/switchyard.toml"]
