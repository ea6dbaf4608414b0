#!/bin/sh
# Creates the secret files docker-compose.yml reads (once; existing files are kept):
#   deploy/compose/secrets/postgres_password   the PostgreSQL password of user sesame
#   deploy/compose/secrets/database_url        Sesame's SESAME_DATABASE__URL, with that password
# Both are mode 0600 and git-ignored.
set -eu
cd "$(dirname "$0")"
umask 077
mkdir -p secrets
if [ ! -s secrets/postgres_password ]; then
  # 32 random bytes, hex: no character needs escaping in a URL.
  od -An -N32 -tx1 /dev/urandom | tr -d ' \n' > secrets/postgres_password
  echo "created secrets/postgres_password"
fi
if [ ! -s secrets/database_url ]; then
  printf 'postgres://sesame:%s@postgres:5432/sesame\n' "$(cat secrets/postgres_password)" > secrets/database_url
  echo "created secrets/database_url"
fi
