#!/bin/bash
# relay-bench's command line: every malformed option is a usage error (exit
# 2), an unusable certificate or a busy port is a one-line reason (exit 1),
# and SIGTERM stops a running relay cleanly (exit 0).
set -u
. "$(dirname "$0")/lib.sh" # a sanitizer report of relay-bench fails the test
BUILD=${BUILD:-build}
RB=$BUILD/bench/relay-bench
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null' EXIT
fail() { echo "FAIL: $*"; exit 1; }

free_port() {
	local p
	for _ in $(seq 1 100); do
		p=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
	done
	fail "no free port"
}

expect_exit() { # CODE PATTERN ARGS... : run, check exit code and stderr
	local code=$1 pat=$2
	shift 2
	timeout 10 "$RB" "$@" >"$tmp/out" 2>"$tmp/err"
	local rc=$?
	[ "$rc" -eq "$code" ] || fail "relay-bench $* exited $rc, expected $code: $(cat "$tmp/err")"
	grep -q -- "$pat" "$tmp/err" || fail "relay-bench $*: stderr lacks '$pat': $(cat "$tmp/err")"
	[ "$(wc -l <"$tmp/err")" -le 2 ] || fail "relay-bench $*: more than a short reason: $(cat "$tmp/err")"
}

p=$(free_port)
b=$(free_port)
expect_exit 2 usage
expect_exit 2 usage -l "$p"
expect_exit 2 usage -b "$b"
expect_exit 2 usage -l abc -b "$b"
expect_exit 2 usage -l 70000 -b "$b"
expect_exit 2 usage -l 0 -b "$b"
expect_exit 2 usage -l "$p" -b "-5"
expect_exit 2 usage -l "$p" -b "$b" --idle-timeout soon
expect_exit 2 usage -l "$p" -b "$b" --cert "$tmp/c.pem"
expect_exit 2 usage -l "$p" -b "$b" --bogus
expect_exit 2 usage -l "$p" -b "$b" extra-argument
expect_exit 2 usage -l "$(head -c 100000 /dev/zero | tr '\0' 9)" -b "$b"

# A certificate file that is not one, and a key that does not exist.
echo "not a certificate" >"$tmp/c.pem"
expect_exit 1 "$tmp/c.pem" -l "$p" -b "$b" --cert "$tmp/c.pem" --key "$tmp/k.pem"

# A port that is taken.
"$RB" -l "$p" -b "$b" --plain 2>"$tmp/first.err" &
pid=$!
for _ in $(seq 1 50); do grep -q relaying "$tmp/first.err" && break; sleep 0.1; done
expect_exit 1 "in use" -l "$p" -b "$b" --plain

# SIGTERM stops it cleanly.
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ "$rc" -eq 0 ] || fail "relay-bench exited $rc on SIGTERM"
grep -q stopped "$tmp/first.err" || fail "no 'stopped' line: $(cat "$tmp/first.err")"
echo "ok: relay-bench command line"
