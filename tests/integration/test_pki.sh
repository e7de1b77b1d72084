#!/bin/bash
# portico-admin pki: a CA and the nodes' certificates that the trust model
# reads (docs/security.md), checked with openssl; bad arguments refused with
# a clear message and nothing written over.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
A=$BUILD/bin/portico-admin
T=$(mktemp -d /tmp/portico-pki-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() {
	echo "FAIL: $*"
	exit 1
}
# run EXPECTED-EXIT ARGS...: the output into $out
run() {
	local want=$1
	shift
	out=$("$A" "$@" 2>&1)
	local rc=$?
	[ "$rc" = "$want" ] || fail "portico-admin $* exited $rc, not $want: $out"
}

# --- a CA, then one certificate per role -----------------------------------------
run 0 pki init "$T/pki"
grep -q "CA made: $T/pki/ca.pem" <<<"$out" || fail "init said: $out"
[ "$(stat -c %a "$T/pki")" = 700 ] || fail "the CA's directory is $(stat -c %a "$T/pki")"
[ "$(stat -c %a "$T/pki/ca.key")" = 600 ] || fail "ca.key is $(stat -c %a "$T/pki/ca.key")"
openssl x509 -in "$T/pki/ca.pem" -noout -ext basicConstraints | grep -q "CA:TRUE" ||
	fail "ca.pem is no CA"
run 1 pki init "$T/pki"
grep -q "a CA is there already" <<<"$out" || fail "a second init: $out"
sum=$(sha256sum "$T/pki/ca.key")

for role in broker gateway host; do
	run 0 pki issue "$T/pki" --role "$role" "n-$role" --san "n-$role.example.org,192.0.2.7"
	grep -q "issued $role n-$role" <<<"$out" || fail "issue $role said: $out"
	openssl verify -CAfile "$T/pki/ca.pem" "$T/pki/n-$role.pem" >/dev/null ||
		fail "n-$role.pem does not verify against ca.pem"
	subj=$(openssl x509 -in "$T/pki/n-$role.pem" -noout -subject -nameopt sep_comma_plus)
	grep -q "OU=$role" <<<"$subj" && grep -q "CN=n-$role" <<<"$subj" || fail "subject: $subj"
	san=$(openssl x509 -in "$T/pki/n-$role.pem" -noout -ext subjectAltName)
	grep -q "DNS:n-$role, DNS:n-$role.example.org, IP Address:192.0.2.7" <<<"$san" ||
		fail "subjectAltName: $san"
	openssl x509 -in "$T/pki/n-$role.pem" -noout -ext extendedKeyUsage |
		grep -q "Server Authentication, TLS Web Client Authentication" || fail "key usage of $role"
	[ "$(stat -c %a "$T/pki/n-$role.key")" = 600 ] || fail "n-$role.key is not 0600"
done
# An IP address as the name is an IP subjectAltName.
run 0 pki issue "$T/pki" --role broker 127.0.0.1 --days 2
openssl x509 -in "$T/pki/127.0.0.1.pem" -noout -ext subjectAltName | grep -q "IP Address:127.0.0.1" ||
	fail "an IP name"
end=$(openssl x509 -in "$T/pki/127.0.0.1.pem" -noout -enddate | cut -d= -f2)
[ $(($(date -d "$end" +%s) - $(date +%s))) -lt $((3 * 86400)) ] || fail "--days 2 gave $end"
echo "ok: init and issue"

# --- bad arguments: a clear message, exit 2, nothing written --------------------
before=$(ls "$T/pki" | wc -l)
run 2 pki issue "$T/pki" --role admin x
grep -q "role must be gateway, host or broker" <<<"$out" || fail "bad role: $out"
run 2 pki issue "$T/pki" --role host ../evil
grep -q "is not a node name" <<<"$out" || fail "a path as name: $out"
run 2 pki issue "$T/pki" --role host ca
run 2 pki issue "$T/pki" --role host "$(head -c 300 /dev/zero | tr '\0' a)"
run 2 pki issue "$T/pki" --role host "a b"
run 2 pki issue "$T/pki" --role host ok1 --san 'x,/etc/passwd'
grep -q -- "--san takes host names" <<<"$out" || fail "bad --san: $out"
run 2 pki issue "$T/pki" --role host ok2 --san "$(head -c 5000 /dev/zero | tr '\0' b)"
run 2 pki issue "$T/pki" --role host ok3 --days 0
run 2 pki issue "$T/pki" --role host ok4 --days abc
run 2 pki issue "$T/pki" --role host
run 2 pki issue "$T/pki" ok5
run 2 pki issue "$T/pki" --role host ok6 extra
run 2 pki init
run 2 pki frobnicate "$T/pki"
run 2 pki init "$T/pki" --role host
[ "$(ls "$T/pki" | wc -l)" = "$before" ] || fail "a refused command wrote files: $(ls "$T/pki")"
# Issued twice: refused, the first kept.
cert=$(sha256sum "$T/pki/n-host.pem")
run 1 pki issue "$T/pki" --role host n-host
grep -q "issued already" <<<"$out" || fail "a second issue: $out"
[ "$(sha256sum "$T/pki/n-host.pem")" = "$cert" ] || fail "a certificate was written over"
[ "$(sha256sum "$T/pki/ca.key")" = "$sum" ] || fail "the CA key changed"
# No CA there.
run 1 pki issue "$T/nothing" --role host h1
grep -q "cannot load the CA" <<<"$out" || fail "no CA: $out"
# A CA key that is not a key.
mkdir -p "$T/bad" && cp "$T/pki/ca.pem" "$T/bad/" && echo garbage >"$T/bad/ca.key"
run 1 pki issue "$T/bad" --role host h1
grep -q "cannot load the CA's key" <<<"$out" || fail "a broken CA key: $out"
[ ! -e "$T/bad/h1.key" ] || fail "a key was left behind"
echo "ok: bad arguments"
echo "ok: pki"
