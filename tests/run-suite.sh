#!/usr/bin/env bash
# Runs the whole test suite on both backends.
#
# 1. Unit and repository tests of every crate (the store's tests cover SQLite, the
#    in-process store, PostgreSQL and Redis), then those of the tools (bench, faults).
# 2. The end-to-end suite on SQLite + in-process store (the embedded default).
# 3. The end-to-end suite on PostgreSQL + Redis (production).
#
# PostgreSQL and Redis come from TEST_DATABASE_URL / TEST_REDIS_URL (default: the local
# servers on 5432 and 6379). With CI=true a missing server fails the run. Elsewhere, if the
# servers are not running but their binaries are installed, throwaway ones are started in a
# temporary directory; if neither, the PostgreSQL + Redis half is skipped and this says so.
set -euo pipefail
cd "$(dirname "$0")/.."

export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export TEST_REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379}"
CARGO="${CARGO:-cargo}"

cleanup_cmds=()
cleanup() { for c in "${cleanup_cmds[@]}"; do eval "$c" || true; done; }
trap cleanup EXIT

pg_up() { python3 - "$TEST_DATABASE_URL" <<'PY'
import socket, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
try:
    socket.create_connection((u.hostname or "127.0.0.1", u.port or 5432), timeout=2).close()
except OSError:
    sys.exit(1)
PY
}
redis_up() { python3 - "$TEST_REDIS_URL" <<'PY'
import socket, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
try:
    s = socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379), timeout=2)
    s.sendall(b"PING\r\n"); ok = s.recv(16).startswith(b"+PONG"); s.close()
    sys.exit(0 if ok else 1)
except OSError:
    sys.exit(1)
PY
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

start_throwaway_pg() {
  local bindir
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
  [ -n "$bindir" ] && [ -x "$bindir/initdb" ] || return 1
  local dir port
  dir=$(mktemp -d) ; port=$(free_port)
  chmod 777 "$dir"
  local as=()
  [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
  "${as[@]}" "$bindir/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
  "${as[@]}" "$bindir/pg_ctl" -D "$dir/data" -o "-p $port -k $dir -c listen_addresses=127.0.0.1" -l "$dir/log" -w start >/dev/null
  cleanup_cmds+=("${as[*]} $bindir/pg_ctl -D $dir/data -m immediate stop >/dev/null; rm -rf $dir")
  export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "started a throwaway PostgreSQL on port $port"
}
start_throwaway_redis() {
  command -v redis-server >/dev/null || return 1
  local port; port=$(free_port)
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes >/dev/null
  cleanup_cmds+=("redis-cli -p $port shutdown nosave >/dev/null 2>&1")
  export TEST_REDIS_URL="redis://127.0.0.1:$port"
  for _ in $(seq 50); do redis_up && break; sleep 0.1; done
  echo "started a throwaway Redis on port $port"
}

production=yes
if ! pg_up; then
  if [ "${CI:-}" = "true" ]; then echo "FAIL: PostgreSQL is not reachable at $TEST_DATABASE_URL (CI=true)"; exit 1; fi
  start_throwaway_pg || production=no
fi
if ! redis_up; then
  if [ "${CI:-}" = "true" ]; then echo "FAIL: Redis is not reachable at $TEST_REDIS_URL (CI=true)"; exit 1; fi
  start_throwaway_redis || production=no
fi

if command -v cargo-nextest >/dev/null; then
  run_tests() { "$CARGO" nextest run --no-fail-fast "$@"; }
else
  run_tests() { "$CARGO" test --no-fail-fast "$@"; }
fi

# The accessibility test injects axe-core (npm) into the pages.
if [ ! -f tests/a11y/node_modules/axe-core/axe.min.js ] && command -v npm >/dev/null; then
  npm install --prefix tests/a11y --no-audit --no-fund --silent || true
fi

# The CLI tests run the real binary.
"$CARGO" build --bin sesame

if [ "$production" = yes ]; then
  echo "== unit and repository tests (SQLite, in-process, PostgreSQL, Redis)"
else
  echo "== unit and repository tests (SQLite, in-process; PostgreSQL/Redis parts skip themselves)"
fi
keep_report() {
  mkdir -p target/test-reports
  [ -f target/nextest/default/junit.xml ] && cp target/nextest/default/junit.xml "target/test-reports/$1.xml" || true
}
rm -rf target/test-reports
run_tests --workspace --exclude sesame-tests --exclude sesame-bench --exclude sesame-faults
keep_report unit
# The tools' own tests, asked for by name: the product's unit run above builds none of their
# dependencies (see default-members in Cargo.toml).
echo "== unit tests of the tools (sesame-bench, sesame-faults)"
run_tests -p sesame-bench -p sesame-faults
keep_report unit-tools

rm -rf target/test-logs
echo "== end-to-end suite on SQLite + in-process store"
TEST_BACKEND=sqlite run_tests -p sesame-tests
keep_report e2e-sqlite

if [ "$production" = yes ]; then
  echo "== end-to-end suite on PostgreSQL + Redis"
  TEST_BACKEND=postgres run_tests -p sesame-tests
  keep_report e2e-postgres
else
  echo "SKIPPED: the PostgreSQL + Redis half of the suite (no running server and no postgresql/redis-server binaries to start one)"
fi
echo "== log hygiene (security spec A59)"
bash tests/check-log-hygiene.sh
echo "== security coverage (docs/security-coverage.md)"
python3 tests/security-coverage.py --check
echo "== all test runs passed"
