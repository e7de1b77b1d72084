#!/bin/bash
# The store's suite (tests/unit/broker/test_store.c, suite "store") on a
# real PostgreSQL 15 of the test's own: one suite, two stores.  The
# suite's tests share the database (each empties it first), so they run one
# at a time here.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
. tests/integration/pg_env.sh
BUILD=${BUILD:-build}
UNIT=$BUILD/tests/unit-broker
T=$(mktemp -d /tmp/portico-store-pg.XXXXXX)
fail() {
	echo "FAIL: $*"
	exit 1
}
trap 'pg_cleanup; rm -rf "$T"' EXIT
[ -x "$UNIT" ] || fail "$UNIT is not built (make $UNIT)"

pg_setup
PORTICO_TEST_PG_URL=$PG_URL "$UNIT" --filter 'store/*' --jobs 1 >"$T/out" 2>&1
rc=$?
line=$(grep -a 'Synthesis:' "$T/out" | tail -n 1)
echo "   $line"
[ "$rc" = 0 ] || { sed 's/^/  | /' "$T/out" | tail -40; fail "the store suite failed on PostgreSQL"; }
# Every test of the suite ran, on PostgreSQL: as many as on SQLite.
n=$(sed -n 's/.*Tested: \([0-9]*\).*/\1/p' <<<"$line")
n_suite=$("$UNIT" --list 2>/dev/null | sed -n 's/^store: \([0-9]*\) tests$/\1/p')
[ "$n" = "$n_suite" ] && [ "$n" -ge 10 ] || fail "$n tests ran, the suite has $n_suite"
# (the tests empty the database: what shows they used it is its counters)
commits=$(pg_psql "SELECT xact_commit FROM pg_stat_database WHERE datname = 'portico'")
[ "${commits:-0}" -gt 100 ] || fail "the suite did not use PostgreSQL: $commits commits"
echo "ok: the store suite on PostgreSQL ($n tests)"
