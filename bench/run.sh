#!/usr/bin/env bash
# make bench / make bench-large: build the release binaries, make sure PostgreSQL and Redis
# answer (started as .ci/run starts them), then run every scenario against its ceiling and
# write docs/benchmarks.md. Arguments go to `sesame-bench run` (e.g. --large).
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
TARGET_DIR=${CARGO_TARGET_DIR:-target}

command -v pg_isready >/dev/null || { echo "PostgreSQL is not installed (pg_isready missing)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "Redis is not installed (redis-server missing)" >&2; exit 1; }

echo "== PostgreSQL"
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
fi
for _ in $(seq 60); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
pg_isready -h 127.0.0.1 -p 5432

echo "== Redis"
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
fi
for _ in $(seq 60); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
redis-cli -h 127.0.0.1 -p 6379 ping

echo "== release build (sesame, sesame-bench)"
started=$(date +%s)
$CARGO build --release -p sesame-server -p sesame-bench --bin sesame --bin sesame-bench
echo "   $(( $(date +%s) - started )) s"

exec "$TARGET_DIR/release/sesame-bench" run \
  --sesame "$TARGET_DIR/release/sesame" \
  --work-dir "$TARGET_DIR/bench" \
  --out docs/benchmarks.md \
  "$@"
