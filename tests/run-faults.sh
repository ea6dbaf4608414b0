#!/usr/bin/env bash
# make faults: the fault suite (security spec, F rows). Builds the debug `sesame` and the
# driver, then runs crates/faults, which starts its own PostgreSQL (initdb + pg_ctl), Redis,
# aiosmtpd SMTP server and TCP fault proxies on free ports: never the shared servers on 5432
# and 6379. Writes target/test-reports/faults.xml for the coverage report. Exit status:
# non-zero on a false success or a lost record.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
TARGET_DIR=${CARGO_TARGET_DIR:-target}

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=("PostgreSQL server binaries (initdb, pg_ctl)")
command -v redis-server >/dev/null || missing+=("redis-server")
python3 -c 'import aiosmtpd' 2>/dev/null || missing+=("aiosmtpd (pip install aiosmtpd)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "fault suite: missing ${missing[*]}" >&2
  exit 2
fi

echo "== build (debug: sesame, sesame-faults)"
"$CARGO" build -p sesame-server -p sesame-faults --bin sesame --bin sesame-faults
exec "$TARGET_DIR/debug/sesame-faults" \
  --sesame "$TARGET_DIR/debug/sesame" \
  --work-dir "$TARGET_DIR/faults" \
  --junit "$TARGET_DIR/test-reports/faults.xml" \
  --smtp-script crates/mail/tests/smtp_server.py \
  "$@"
