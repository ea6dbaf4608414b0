# Sesame container image: `docker build -t sesame .` (docs/install.md, "Docker").
#
# Two stages: the first compiles the release binary with the Rust toolchain; the second is a
# slim Debian with only what the binary links to (libpq for PostgreSQL, which brings
# OpenSSL), CA certificates (SMTP and proxy-callback TLS) and curl for the health check.
# Templates, static files and texts are compiled into the binary; a theme directory can be
# mounted and named with SESAME_UI__THEME_DIR.
#
# `make docker-check` runs the RUN steps of the build stage on the CI machine (which has no
# Docker engine) and checks the runtime stage's settings with `sesame config check`.

# ---- build stage -------------------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS build
# libpq-dev + pkg-config: diesel's PostgreSQL backend links libpq. SQLite is bundled.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# --locked: exactly the dependency versions of Cargo.lock (the ones `cargo deny` checked).
RUN cargo build --release --locked --bin sesame \
 && install -D -m 0755 target/release/sesame /out/sesame

# ---- runtime stage -----------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 sesame \
 && useradd --system --uid 10001 --gid sesame --home-dir /var/lib/sesame --shell /usr/sbin/nologin sesame \
 && install -d -o sesame -g sesame -m 0700 /var/lib/sesame
COPY --from=build /out/sesame /usr/local/bin/sesame
# Inside a container Sesame listens on every interface (the container network is the
# boundary); the metrics listener too, on its own port that is never published to the host.
# The embedded default database and outbox live in the state directory (a volume).
ENV SESAME_SERVER__LISTEN=0.0.0.0:8080 \
    SESAME_METRICS__LISTEN=0.0.0.0:9090 \
    SESAME_DATABASE__URL=sqlite:///var/lib/sesame/sesame.db \
    SESAME_MAIL__OUTBOX_DIR=/var/lib/sesame/outbox \
    SESAME_LOG__FORMAT=json
USER sesame:sesame
WORKDIR /var/lib/sesame
VOLUME ["/var/lib/sesame"]
EXPOSE 8080 9090
# Ready = database and store answer (the load balancer's criterion too).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/health/ready"]
# SIGTERM drains in-flight requests for server.shutdown_timeout_secs (default 30 s); give
# `docker stop` a longer grace period (`stop_grace_period` in compose).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/sesame"]
CMD ["serve"]
