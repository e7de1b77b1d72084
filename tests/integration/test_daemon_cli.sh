#!/bin/bash
# The daemons' command lines: -t on a good file, a missing file, a bad one;
# unknown options and stray arguments.  What an admin sees, and the exit
# codes a service manager acts on.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh # a sanitizer report of a daemon started here fails the test
BUILD=${BUILD:-build}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
printf '[broker]\nlisten = 127.0.0.1:99999\n' >"$T/bad.conf"
printf '[gateway]\nvnc_listen =\nrdp_listen =\nhttps_listen =\n' >"$T/novnc.conf"
printf '[sessiond]\nrun_dir = /run/%s\n' "$(head -c 80 /dev/zero | tr '\0' x)" >"$T/longrun.conf"
for d in broker gateway sessiond; do
	bin=$BUILD/bin/portico-$d
	out=$("$bin" -t -c etc/portico.conf 2>&1) && [ "$out" = "etc/portico.conf: configuration OK" ] ||
		fail "$d -t on the sample: $out"
	out=$("$bin" -t -c "$T/missing.conf" 2>&1)
	[ $? = 1 ] && [ "$(wc -l <<<"$out")" = 1 ] && grep -q "missing.conf: cannot open" <<<"$out" ||
		fail "$d on a missing file: $out"
	out=$("$bin" -t -c "$T/bad.conf" 2>&1)
	[ $? = 1 ] && grep -q "bad.conf:2:" <<<"$out" || fail "$d on a bad file: $out"
	out=$("$bin" -x 2>&1)
	[ $? = 2 ] && grep -q "usage: portico-$d \[-c FILE\] \[-v\] \[-t\]" <<<"$out" || fail "$d -x: $out"
	out=$("$bin" -c etc/portico.conf stray 2>&1)
	[ $? = 2 ] && grep -q "usage: portico-$d" <<<"$out" || fail "$d with a stray argument: $out"
	out=$("$bin" -c 2>&1)
	[ $? = 2 ] || fail "$d -c without a file: $out"
done
out=$("$BUILD/bin/portico-sessiond" -t -c "$T/longrun.conf" 2>&1)
[ $? = 1 ] && grep -q "run_dir must be an absolute path of at most 64 bytes" <<<"$out" || fail "long run_dir: $out"
out=$("$BUILD/bin/portico-gateway" -c "$T/novnc.conf" 2>&1)
[ $? = 1 ] && grep -q "vnc_listen, rdp_listen and https_listen are all empty" <<<"$out" || fail "gateway without listeners: $out"
# The gateway's login process is its own: run by hand, or fed garbage,
# it says so and leaves.
G=$BUILD/bin/portico-gateway
for feed in "" "not json" '{"peer":"x"}' "$(head -c 2000000 /dev/zero | tr '\0' '{')"; do
	out=$(printf '%s' "$feed" | "$G" --rdp-login 4<&0 3</dev/null 2>&1)
	[ $? = 1 ] && grep -q -- "--rdp-login is the gateway's own" <<<"$out" || fail "--rdp-login fed '${feed:0:20}': $out"
done
out=$("$G" --rdp-login 4<&- 2>&1)
[ $? = 1 ] && grep -q -- "--rdp-login: cannot read its parameters" <<<"$out" || fail "--rdp-login without fd 4: $out"
echo "ok: daemon command lines"
