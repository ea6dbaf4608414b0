#!/usr/bin/env bash
# `make docker-check`: what can be checked of the container setup on a machine without a
# Docker engine (CI has none).
#
# 1. docker-compose.yml, the Dockerfile and the Caddyfile are parsed and cross-checked
#    (tests/check-compose.py, PyYAML). `docker compose config` also runs when the Compose
#    plugin is installed; without it (as on CI) that step says it is skipped.
# 2. The Dockerfile's build stage runs here as a script: its apt packages must be installed,
#    then its exact RUN steps (the release build) run in the repository.
# 3. The runtime stage is checked against the binary just built: every shared library the
#    binary needs comes from a package the stage installs (or its dependencies, or the base
#    image's C library), and `sesame config check` accepts the image's ENV and, on top of it,
#    each Sesame service's environment from the compose file.
# 4. deploy/sesame.service passes `systemd-analyze verify` and its security exposure stays
#    low (`systemd-analyze security --offline`).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== compose file, Dockerfile, Caddyfile (static checks)"
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check pyyaml==6.0.2
python3 tests/check-compose.py \
  --emit-build-script "$work/build.sh" \
  --emit-runtime-packages "$work/packages" \
  --emit-env image "$work/image.env" \
  --emit-env sesame-1 "$work/sesame-1.env" \
  --emit-env migrate "$work/migrate.env"
if docker compose version >/dev/null 2>&1; then
  docker compose config --quiet && echo "docker compose config: valid"
else
  echo "SKIPPED: docker compose config (the Compose plugin is not installed; PyYAML checks above)"
fi

echo "== the Dockerfile's build stage, as a script"
export OUT="$work/out"
bash "$work/build.sh"
test -x "$OUT/sesame"

echo "== the runtime stage's libraries"
# Packages the runtime stage installs, their direct dependencies, and the C runtime that
# every Debian image has.
allowed=" libc6 libgcc-s1 "
while read -r package; do
  [ -n "$package" ] || continue
  allowed+="$package "
  for dep in $(apt-cache depends "$package" 2>/dev/null | awk '/Depends:/ {print $2}' | tr -d '<>'); do
    allowed+="$dep "
  done
done < "$work/packages"
missing=0
for lib in $(readelf -d "$OUT/sesame" | awk '/NEEDED/ {gsub(/[\[\]]/, "", $5); print $5}'); do
  package=$(dpkg -S "*/$lib" 2>/dev/null | head -n1 | cut -d: -f1)
  if [[ -z "$package" || "$allowed" != *" $package "* ]]; then
    echo "FAIL: the binary needs $lib (package ${package:-unknown}), which the runtime stage does not install"
    missing=1
  else
    echo "  $lib <- $package"
  fi
done
[ "$missing" = 0 ]

echo "== sesame config check with the image's and the compose services' environment"
echo "postgres://sesame:not-the-real-one@postgres:5432/sesame" > "$work/database_url"
check_env() {
  local name=$1; shift
  local vars=()
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    # Secret files are mounted under /run/secrets in the container; here, a stand-in.
    vars+=("${line//\/run\/secrets\/database_url/$work/database_url}")
  done < <(cat "$@")
  if ! (cd "$work" && env -i PATH="$PATH" "${vars[@]}" "$OUT/sesame" config check >"$work/$name.out" 2>&1); then
    echo "FAIL: sesame config check refuses the $name environment:"; cat "$work/$name.out"; exit 1
  fi
  if grep -q "not-the-real-one" "$work/$name.out"; then
    echo "FAIL: config check printed the database password"; exit 1
  fi
  echo "  $name: accepted"
}
check_env image "$work/image.env"
check_env sesame-1 "$work/image.env" "$work/sesame-1.env"
check_env migrate "$work/image.env" "$work/migrate.env"
echo "== deploy/sesame.service (systemd-analyze, offline)"
if command -v systemd-analyze >/dev/null; then
  sed "s#/usr/local/bin/sesame#$OUT/sesame#" deploy/sesame.service > "$work/sesame.service"
  systemd-analyze verify "$work/sesame.service"
  # Exposure 0 (locked down) … 10 (unprotected), threshold in tenths: fail above 2.0 (the
  # unit scores about 1.3).
  systemd-analyze security --offline=true --threshold=20 "$work/sesame.service" | tail -n1
else
  echo "SKIPPED: systemd-analyze is not installed"
fi
echo "docker-check: passed"
