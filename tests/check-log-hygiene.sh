#!/usr/bin/env bash
# After the end-to-end suite: every log line it produced is searched for secrets the tests
# used (passwords, login tickets, session cookies, password hashes, full CAS tickets, OAuth
# codes and tokens, Authorization values): security spec A59. Zero hits, or fail. The
# verdict is also written as a JUnit test case named after the row, for the coverage report.
set -euo pipefail
cd "$(dirname "$0")/.."
logs=(target/test-logs/*.log)
if [ ! -e "${logs[0]}" ]; then echo "FAIL: no test logs to check (target/test-logs)"; exit 1; fi
lines=$(cat "${logs[@]}" | wc -l)
if [ "$lines" -lt 100 ]; then echo "FAIL: only $lines log lines: the check would prove nothing"; exit 1; fi
patterns=(
  'violet tramway under the harbour'   # tests' GOOD_PASSWORD
  'wrong password here'                # tests' wrong password
  'correct horse battery staple'
  'LT-[A-Za-z0-9]{20,}'                # login tickets
  'sesame_tgc=[A-Za-z0-9]{20,}'        # session cookies
  '\$argon2id\$'                       # password hashes
  'sesame_ak_[A-Za-z0-9]{12}_[A-Za-z0-9_]{20,}'   # admin API keys
  'copper lantern over quiet dunes'    # recovery tests' new password
  'token=[A-Za-z0-9]{40,}'             # reset and verification links
  'FT-[A-Za-z0-9]{20,}'                # reset form tickets
  '(est|is) [0-9]{6}\.'                # SMS codes in their texts
  '(ST|PT|PGT|PGTIOU)-[A-Za-z0-9]{40,}' # full CAS tickets (48 random characters)
  '(code|refresh_token|access_token)[=":]+ ?[A-Za-z0-9]{40,}' # OAuth codes and tokens
  'Authorization: *(Basic|Bearer) +[A-Za-z0-9+/=._-]{8,}'      # Authorization values
)
hits=0
for p in "${patterns[@]}"; do
  if grep -E -q -- "$p" "${logs[@]}"; then
    echo "FAIL: a log line matches /$p/:"; grep -E -m 3 -- "$p" "${logs[@]}" | cut -c1-300
    hits=$((hits + 1))
  fi
done
junit() {
  mkdir -p target/test-reports
  local body=""
  [ "$1" = pass ] || body="<failure message=\"$2\"/>"
  printf '<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="log-hygiene"><testsuite name="log-hygiene" tests="1"><testcase classname="log-hygiene" name="a59_no_password_ticket_token_or_authorization_value_in_any_log">%s</testcase></testsuite></testsuites>\n' "$body" \
    > target/test-reports/log-hygiene.xml
}
if [ "$hits" -gt 0 ]; then junit fail "$hits secret patterns found in the test logs"; exit 1; fi
junit pass
echo "log hygiene: $lines log lines from ${#logs[@]} test processes, 0 secrets found"
