# syntax=docker/dockerfile:1
# The switchyard image that the Helm chart (deploy/helm/switchyard) runs, switchyard:0.1.0:
#   docker build -t switchyard:0.1.0 .
# BASE is the runtime's Debian bookworm image. Where no registry is reachable, a base made from
# Debian's packages serves as well (that is how the tests build it):
#   mmdebstrap --variant=minbase --include=libssl3,ca-certificates bookworm base.tar
#   podman import base.tar localhost/bookworm-base:12
#   podman build --build-arg BASE=localhost/bookworm-base:12 -t switchyard:0.1.0 .
# `--target prebuilt` takes an already built binary instead of compiling: the context must then
# hold it as `switchyard` beside deploy/config/ (the tests do this with the binary they built).
ARG BASE=debian:bookworm-slim

# Build stage: the pinned Rust toolchain, the locked dependency graph.
FROM rust:1.95.0-slim-bookworm AS build
# cmake: pingora's zlib build; libssl-dev and pkg-config: librdkafka's TLS through OpenSSL.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake libssl-dev pkg-config make g++ \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# -s: the release profile keeps line tables for profiling; the image does not need them.
RUN cargo build --release --locked -p switchyard \
    && install -s -D -m 0755 target/release/switchyard /out/switchyard

# Runtime: only what the binary links against (glibc, OpenSSL) and CA certificates.
FROM ${BASE} AS runtime
# Installed only when the base lacks them, so a base made with them needs no package source.
RUN if ! dpkg-query -W libssl3 ca-certificates >/dev/null 2>&1; then \
        apt-get update \
        && apt-get install -y --no-install-recommends ca-certificates libssl3 \
        && rm -rf /var/lib/apt/lists/*; \
    fi
COPY deploy/config/switchyard.toml deploy/config/rules.toml /etc/switchyard/
# The uid the chart runs as (runAsUser 65532), and a writable directory for the shadow record
# file (the chart mounts a volume there).
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

# An image around a binary built outside (`--target prebuilt`).
FROM runtime AS prebuilt
COPY --chmod=0755 switchyard /usr/local/bin/switchyard

# The default image: the binary built above.
FROM runtime
COPY --from=build /out/switchyard /usr/local/bin/switchyard
