#!/bin/bash
# The hardening the Makefile turns on by default (issue 13), as the built
# programs carry it: position-independent executables (ELF type DYN, PIE),
# full RELRO (a GNU_RELRO segment, BIND_NOW), the stack protector
# (__stack_chk_fail) and glibc's checked calls (_FORTIFY_SOURCE: __*_chk).
# Then: a user's CFLAGS/LDFLAGS keep them (and -O0 drops only FORTIFY,
# which needs the optimiser), and a program built with the Makefile's flags
# stops on a stack smash and on a checked buffer overflow, as a user
# would see it.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
BUILD=${BUILD:-build}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# --- the binaries -----------------------------------------------------------------------
n=0
for b in "$BUILD"/bin/*; do
	[ -x "$b" ] || continue
	n=$((n + 1))
	name=${b##*/}
	type=$(readelf -hW "$b" | awk '$1 == "Type:" { print $2 }')
	[ "$type" = DYN ] || fail "$name is ELF type $type, not DYN (PIE)"
	readelf -dW "$b" >"$T/dyn"
	grep -qE 'FLAGS_1.*Flags:.* PIE' "$T/dyn" || fail "$name: no PIE flag: $(grep FLAGS "$T/dyn")"
	grep -qE '\(FLAGS\).*BIND_NOW|FLAGS_1.*Flags:.* NOW' "$T/dyn" || fail "$name: no BIND_NOW (lazy binding)"
	readelf -lW "$b" | grep -q GNU_RELRO || fail "$name: no GNU_RELRO segment"
	readelf --dyn-syms -W "$b" >"$T/syms"
	grep -q ' __stack_chk_fail' "$T/syms" || fail "$name: no stack protector (__stack_chk_fail)"
	chk=$(grep -oE ' __[a-z0-9_]+_chk(@|$)' "$T/syms" | tr -d ' @' | sort -u | xargs)
	[ -n "$chk" ] || fail "$name: no fortified call (__*_chk): built without _FORTIFY_SOURCE"
	echo "   $name: PIE, BIND_NOW, RELRO, stack protector, fortified: $chk"
done
[ "$n" -ge 5 ] || fail "only $n programs in $BUILD/bin"
echo "ok: $n programs hardened"

# --- a user's flags keep them --------------------------------------------------------------------
flags() { # CFLAGS LDFLAGS: the Makefile's compile and link flags for them
	make --no-print-directory -s BUILD="$T/b" SAN= CFLAGS="$1" LDFLAGS="$2" \
		--eval 'pt-flags: ; @echo "$(ALL_CFLAGS)"; echo "$(ALL_LDFLAGS)"' pt-flags
}
for cf in "-O2 -g" "-Os" "-O1 -fno-omit-frame-pointer" "-O0 -g" "-g"; do
	out=$(flags "$cf" "-Wl,--as-needed") || fail "make with CFLAGS='$cf': $out"
	c=$(head -1 <<<"$out") l=$(tail -1 <<<"$out")
	for f in -fstack-protector-strong -fPIE; do
		grep -qw -- "$f" <<<"$c" || fail "CFLAGS='$cf' loses $f: $c"
	done
	for f in -pie -Wl,-z,relro,-z,now -Wl,--as-needed; do
		grep -qw -- "$f" <<<"$l" || fail "CFLAGS='$cf' LDFLAGS=-Wl,--as-needed: no $f in $l"
	done
	case $cf in
	*-O0* | -g) grep -q FORTIFY <<<"$c" && fail "CFLAGS='$cf' (no optimiser) asks for FORTIFY: $c" ;;
	*) grep -q -- "-D_FORTIFY_SOURCE=2" <<<"$c" || fail "CFLAGS='$cf' loses -D_FORTIFY_SOURCE=2: $c" ;;
	esac
done
echo "ok: CFLAGS and LDFLAGS of the user's keep the hardening"

# --- and it acts: a program with the Makefile's flags ------------------------------------------
out=$(flags "-O2 -g" "")
cat >"$T/victim.c" <<'C'
#include <stdio.h>
#include <string.h>
/* argv[1] "smash": a write past a local array, byte by byte in a function
 * that cannot know the array's size (FORTIFY cannot see it; the stack
 * protector's canary does); "copy": strcpy of argv[2] into 8 bytes
 * (FORTIFY's __strcpy_chk). */
static void __attribute__((noinline)) fill(char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = 'x';
	__asm__ volatile("" : : "r"(p) : "memory");
}
static void __attribute__((noinline)) smash(size_t n)
{
	char buf[16];
	fill(buf, n);
	__asm__ volatile("" : : "r"(buf) : "memory");
}
int main(int argc, char **argv)
{
	char small[8];
	if (argc > 1 && !strcmp(argv[1], "smash"))
		smash((size_t)argc * 24);
	if (argc > 2 && !strcmp(argv[1], "copy")) {
		strcpy(small, argv[2]);
		puts(small);
	}
	return 0;
}
C
# shellcheck disable=SC2046 # the flags are words
cc $(head -1 <<<"$out" | sed 's/-Werror//; s/-MMD -MP//') -o "$T/victim" "$T/victim.c" $(tail -1 <<<"$out") \
	>"$T/cc.log" 2>&1 || fail "cannot build a program with the Makefile's flags: $(cat "$T/cc.log")"
"$T/victim" copy short >/dev/null || fail "the victim fails on good input"
msg=$("$T/victim" smash 2>&1)
[ $? = 134 ] && grep -q "stack smashing detected" <<<"$msg" || fail "a stack smash went unseen: $msg"
msg=$("$T/victim" copy "$(head -c 64 /dev/zero | tr '\0' A)" 2>&1)
[ $? = 134 ] && grep -q "buffer overflow detected" <<<"$msg" || fail "an overflow through strcpy went unseen: $msg"
echo "ok: the stack protector and FORTIFY stop a program built with the Makefile's flags"
