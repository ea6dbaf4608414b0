#!/usr/bin/env bash
# After the end-to-end suite: every log line it produced is searched for secrets the tests
# used (passwords, login tickets, session cookies, password hashes). Zero hits, or fail.
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
)
hits=0
for p in "${patterns[@]}"; do
  if grep -E -q -- "$p" "${logs[@]}"; then
    echo "FAIL: a log line matches /$p/:"; grep -E -m 3 -- "$p" "${logs[@]}" | cut -c1-300
    hits=$((hits + 1))
  fi
done
if [ "$hits" -gt 0 ]; then exit 1; fi
echo "log hygiene: $lines log lines from ${#logs[@]} test processes, 0 secrets found"
