#!/bin/sh
# A throwaway PostgreSQL cluster for the tests and the benchmark (Debian's postgresql package):
#   eval "$(scripts/pg-test-cluster.sh start)"   # exports EXITNODE_TEST_PG_URL, PGTEST_DIR
#   scripts/pg-test-cluster.sh stop "$PGTEST_DIR"
# Its own data directory and unix-socket directory (no TCP port); as root it runs as `postgres`,
# because initdb refuses root. Without this script each test file starts its own cluster
# (test/support/pg.ts); with EXITNODE_TEST_PG_URL set they share this one.
set -eu
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$BIN" ] || { echo "PostgreSQL is not installed: apt-get install postgresql" >&2; exit 1; }
run() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case "${1:-}" in
  start)
    DIR=$(mktemp -d /tmp/exitnode-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres: "$DIR"
    chmod 700 "$DIR"
    run "$BIN/initdb" -D "$DIR/data" -U postgres -A trust --no-sync -E UTF8 >/dev/null
    run "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w -o "-k $DIR -c listen_addresses= -c max_connections=300" start >/dev/null
    echo "export PGTEST_DIR=$DIR"
    echo "export EXITNODE_TEST_PG_URL='postgresql://postgres@localhost/postgres?host=$DIR'"
    ;;
  stop)
    DIR=${2:?usage: pg-test-cluster.sh stop DIR}
    case "$DIR" in /tmp/exitnode-pg.*) ;; *) echo "refusing to remove $DIR" >&2; exit 2;; esac
    run "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$DIR"
    ;;
  *) echo "usage: $0 start | stop DIR" >&2; exit 2;;
esac
