# Portico - one Makefile for the whole tree.
#
#   make              build everything into build/ (binaries in build/bin/)
#   make check        install dependencies, build, run every test
#   make bench        install dependencies, build, run the benchmarks
#   make demo         install dependencies, build, start Portico on loopback
#   make deps         install the Debian packages that build, tests and benchmarks need
#   make SAN=address,undefined check   the same tests under sanitizers
#   make install PREFIX=/usr/local     (DESTDIR honoured)
#   make format       clang-format every C file
#   make fuzz         libFuzzer targets of every parser that sees outside bytes (clang)
#   make fuzz-run SECONDS=N   run each of them for N seconds
#
# check, bench and demo run `deps` first and then call make again, so that
# pkg-config is asked only once the packages are there.

.DEFAULT_GOAL := all

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
CC      ?= cc
SAN     ?=
CFLAGS  ?= -O2 -g

# Debian packages: the build, the tests (real servers and clients) and the
# benchmarks (the peers they are measured against).
# What `make demo` needs: the build, and the programs the demo runs (PAM
# and NSS wrappers, Xvnc, xrdp, xterm and xclock, noVNC for the portal) or
# prints (TigerVNC's viewer, xfreerdp).  Nothing of the tests': no QEMU or
# guest kernel, no browser, no PostgreSQL server, no haproxy or nginx.
DEMO_PKGS := build-essential pkg-config openssl procps util-linux passwd curl jq \
	libuv1-dev libssl-dev libjansson-dev libsqlite3-dev libpq-dev libcurl4-openssl-dev \
	libhttp-parser-dev libpam0g-dev freerdp2-dev libpam-wrapper libnss-wrapper \
	tigervnc-standalone-server tigervnc-viewer xterm x11-apps x11-utils xrdp freerdp2-x11 novnc
# And what `make check` and `make bench` need besides.
TEST_PKGS := clang libclang-rt-14-dev clang-format iproute2 strace sqlite3 binutils \
	libcriterion-dev libvncserver-dev haproxy nginx libnginx-mod-stream xvfb \
	qemu-system-x86 qemu-utils busybox-static syslinux syslinux-common mtools dosfstools \
	linux-image-amd64 cpio python3 freerdp2-shadow-x11 winpr-utils \
	systemd postgresql chromium rdesktop libpam-oath oathtool python3-prometheus-client logrotate \
	mmdebstrap qemu-guest-agent e2fsprogs
DEB_PKGS := $(DEMO_PKGS) $(TEST_PKGS)

PKGS    := libuv openssl sqlite3 libpq jansson libcurl
# No .pc files in Debian for these (libresolv: glibc's base64, session/qga.c).
EXTRA_LIBS := -lhttp_parser -lpam -lresolv
WARN    := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wno-unused-parameter -Werror
ifeq ($(MAKECMDGOALS),deps)
PKG_CFLAGS :=
PKG_LIBS :=
else
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) $(EXTRA_LIBS)
CRIT_CFLAGS := $(shell pkg-config --cflags criterion 2>/dev/null)
CRIT_LIBS   := $(shell pkg-config --libs criterion 2>/dev/null)
# The gateway's RDP login step is a FreeRDP server peer (system headers:
# WinPR's do not build with our warnings).
FREERDP_CFLAGS := $(patsubst -I%,-isystem %,$(shell pkg-config --cflags freerdp2 winpr2 2>/dev/null))
FREERDP_LIBS   := $(shell pkg-config --libs freerdp2 winpr2 2>/dev/null)
endif

# Hardening, on by default and kept whatever CFLAGS/LDFLAGS the user sets
# (they live here, not in CFLAGS): stack protector, position-independent
# executables, full RELRO with now-binding (the GOT read-only before main),
# and glibc's checked string and I/O calls.  _FORTIFY_SOURCE works only when
# optimising (glibc warns otherwise, and -Werror makes that an error), so it
# follows the last -O of CFLAGS: on for -O1/-O2/-O3/-Os/-Og..., off for -O0
# or none.  tests/integration/test_hardening.sh checks the binaries.
HARDEN_CFLAGS  := -fstack-protector-strong -fPIE
ifneq ($(filter-out -O0,$(lastword $(filter -O%,$(CFLAGS)))),)
HARDEN_CFLAGS  += -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2
endif
HARDEN_LDFLAGS := -pie -Wl,-z,relro,-z,now

# Where `make install` puts shared files (the portal's: [gateway] web_root's default).
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(HARDEN_CFLAGS) $(CFLAGS) -Iinclude $(PKG_CFLAGS) -MMD -MP \
	-DPT_DATADIR='"$(PREFIX)/share"'
ALL_LDFLAGS := $(HARDEN_LDFLAGS) $(LDFLAGS)
ifneq ($(SAN),)
ALL_CFLAGS  += -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
ALL_LDFLAGS += -fsanitize=$(SAN)
endif

LIB_SRC   := $(wildcard lib/*.c)
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIBPORTICO := $(BUILD)/lib/libportico.a

# Daemons: <dir>/<binary>.c holds main(); everything else in <dir> goes into
# a static library that the tests link too.
DAEMONS := broker:portico-broker gateway:portico-gateway session:portico-sessiond \
	client:portico client:portico-admin
BINS :=
define daemon_rules
$(eval dir := $(word 1,$(subst :, ,$(1))))
$(eval bin := $(word 2,$(subst :, ,$(1))))
ifneq ($(wildcard $(dir)/$(bin).c),)
BINS += $(BUILD)/bin/$(bin)
$(BUILD)/bin/$(bin): $(BUILD)/obj/$(dir)/$(bin).o $(BUILD)/lib/lib$(dir).a $(LIBPORTICO)
	@mkdir -p $$(@D)
	$$(CC) $$(ALL_CFLAGS) -o $$@ $$^ $$(PKG_LIBS) $$(ALL_LDFLAGS)
endif
endef
$(foreach d,$(DAEMONS),$(eval $(call daemon_rules,$(d))))
$(BUILD)/obj/gateway/%.o: ALL_CFLAGS += $(FREERDP_CFLAGS)
$(BUILD)/bin/portico-gateway: PKG_LIBS += $(FREERDP_LIBS)

define part_lib
$(BUILD)/lib/lib$(1).a: $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out $(patsubst %,$(1)/%.c,portico-broker portico-gateway portico-sessiond portico portico-admin),$(wildcard $(1)/*.c)))
	@mkdir -p $$(@D)
	rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach d,broker gateway session client,$(eval $(call part_lib,$(d))))

# Unit tests: one Criterion binary per folder of tests/unit/.
UNIT_PARTS := $(notdir $(wildcard tests/unit/*))
UNIT_BINS  := $(UNIT_PARTS:%=$(BUILD)/tests/unit-%)
define unit_rules
$(BUILD)/tests/unit-$(1): $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tests/unit/$(1)/*.c)) $(if $(filter lib,$(1)),,$(BUILD)/lib/lib$(1).a) $(LIBPORTICO)
	@mkdir -p $$(@D)
	$$(CC) $$(ALL_CFLAGS) -o $$@ $$^ $$(CRIT_LIBS) $$(PKG_LIBS) $$(ALL_LDFLAGS)
endef
$(foreach p,$(UNIT_PARTS),$(eval $(call unit_rules,$(p))))
# The gateway's library calls FreeRDP (the RDP login step).
$(BUILD)/tests/unit-gateway: PKG_LIBS += $(FREERDP_LIBS)
$(BUILD)/obj/tests/unit/gateway/%.o: ALL_CFLAGS += $(FREERDP_CFLAGS)

# Benchmarks and their tools: one program per tests/bench/*.c.
BENCH_BINS := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(wildcard tests/bench/*.c))
$(BUILD)/bench/%: $(BUILD)/obj/tests/bench/%.o $(LIBPORTICO)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(PKG_LIBS) $(ALL_LDFLAGS)

# The broker's benchmark links the broker's library too.
$(BUILD)/bench/bench-broker: $(BUILD)/obj/tests/bench/bench-broker.o $(BUILD)/lib/libbroker.a $(LIBPORTICO)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(PKG_LIBS) $(ALL_LDFLAGS)
$(BUILD)/obj/tests/bench/bench-broker.o: ALL_CFLAGS += -Ibroker
# The RD Gateway benchmark's client reads the gateway's packets with the
# gateway's own reader (rdg_proto.c, which needs nothing of FreeRDP).
$(BUILD)/bench/rdg-bulk: $(BUILD)/obj/tests/bench/rdg-bulk.o $(BUILD)/lib/libgateway.a $(LIBPORTICO)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(PKG_LIBS) $(ALL_LDFLAGS)
$(BUILD)/obj/tests/bench/rdg-bulk.o: ALL_CFLAGS += -Igateway

# Test tools: one program per tests/tools/*.c, run by integration tests.
TOOL_BINS := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(wildcard tests/tools/*.c))
$(BUILD)/tests/tools/%: $(BUILD)/obj/tests/tools/%.o $(LIBPORTICO)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(PKG_LIBS) $(ALL_LDFLAGS)

.PHONY: all check test bench bench-run demo deps deps-demo install format clean fuzz fuzz-run fuzz-bins FORCE
# Keep objects of pattern-built programs, so a second make does nothing.
# (Only these: a bare .SECONDARY: makes every target intermediate, and make
# then skips rebuilding some of them.)
# The VNC probe is a real VNC client: it links libvncclient.
$(BUILD)/tests/tools/vnc-probe: $(BUILD)/obj/tests/tools/vnc-probe.o
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(shell pkg-config --libs libvncclient 2>/dev/null) $(ALL_LDFLAGS)

.SECONDARY: $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tests/bench/*.c tests/tools/*.c))
all: $(LIBPORTICO) $(BINS) $(BENCH_BINS)

# Rebuild everything when the flags change (a SAN build after a plain one).
$(BUILD)/.flags: FORCE
	@mkdir -p $(@D)
	@echo '$(ALL_CFLAGS) $(ALL_LDFLAGS)' | cmp -s - $@ || echo '$(ALL_CFLAGS) $(ALL_LDFLAGS)' > $@

# A part's tests include its private headers (tests/unit/broker -> broker/).
$(BUILD)/obj/tests/unit/%.o: tests/unit/%.c $(BUILD)/.flags
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CRIT_CFLAGS) -I$(firstword $(subst /, ,$*)) -c -o $@ $<

$(BUILD)/obj/%.o: %.c $(BUILD)/.flags
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIBPORTICO): $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

# make deps: everything (the demo's, the tests' and the benchmarks');
# make deps-demo: the demo's alone.
deps: PKG_LIST = $(DEB_PKGS)
deps-demo: PKG_LIST = $(DEMO_PKGS)
deps deps-demo:
	@missing=$$(for p in $(PKG_LIST); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "deps: installing $$(echo $$missing)"; \
		if [ "$$(id -u)" != 0 ]; then echo "deps: run as root to install packages" >&2; exit 1; fi; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	fi
	@# The browser tests' driver (playwright-core, which drives Debian's
	@# chromium; it downloads no browser), pinned by tests/web/package-lock.json.
	@if [ "$@" = deps ] && [ -f tests/web/package-lock.json ] && [ ! -d tests/web/node_modules/playwright-core ]; then \
		command -v npm >/dev/null || { echo "deps: npm (Node.js 20) is needed for the browser tests" >&2; exit 1; }; \
		echo "deps: npm ci in tests/web"; \
		(cd tests/web && npm ci --no-audit --no-fund --ignore-scripts >/dev/null) || exit 1; \
	fi

# Two jobs: the golden VM image (mostly the mirror's downloads and dpkg)
# builds while the code compiles.
check: deps
	@$(MAKE) --no-print-directory -j2 test

test: all $(UNIT_BINS) $(TOOL_BINS) fuzz guest-image
	@BUILD=$(BUILD) SAN=$(SAN) FUZZ_BUILD=$(FUZZ_BUILD) tests/run-tests.sh $(UNIT_BINS)

bench: deps
	@$(MAKE) --no-print-directory bench-run

bench-run: all $(TOOL_BINS) guest-image
	@BUILD=$(BUILD) tests/bench/relay.sh
	@BUILD=$(BUILD) tests/bench/broker.sh
	@BUILD=$(BUILD) tests/bench/sessiond.sh
	@BUILD=$(BUILD) tests/bench/gateway.sh
	@BUILD=$(BUILD) tests/bench/rdp.sh
	@BUILD=$(BUILD) tests/bench/rdg.sh
	@BUILD=$(BUILD) tests/bench/portal.sh
	@BUILD=$(BUILD) tests/bench/scale.sh
	@BUILD=$(BUILD) tests/bench/vm.sh

include guest/guest.mk

demo: deps-demo
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) etc/demo.sh

# Where `make install` puts what an admin edits (PAM files, the
# configuration, logrotate's file).  Those are written only when none is
# there: a second install never overwrites an admin's file, and says so.
SYSCONFDIR ?= /etc
# install_new MODE SOURCE PATH: SOURCE to $(DESTDIR)PATH unless a file is there.
define install_new
	@if [ -e "$(DESTDIR)$(3)" ]; then \
		echo "install: $(DESTDIR)$(3) exists: kept as it is (the shipped one is $(2))"; \
	else \
		install -D -m $(1) $(2) "$(DESTDIR)$(3)" && echo "install: $(DESTDIR)$(3)"; \
	fi
endef

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/etc/portico $(DESTDIR)$(PREFIX)/share/doc/portico
	$(if $(BINS),install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/)
	# the sample, always the release's (every key, documented); the
	# configuration itself once (0640: it may hold the secrets)
	install -m 0644 etc/portico.conf $(DESTDIR)$(PREFIX)/etc/portico/portico.conf.sample
	$(call install_new,0640,etc/portico.conf,$(SYSCONFDIR)/portico/portico.conf)
	install -m 0644 README.md docs/*.md $(DESTDIR)$(PREFIX)/share/doc/portico/
	# PAM: the broker's sign-in ([broker] pam_service) and the session
	# agent's sessions ([sessiond] pam_service); the desktop's program
	$(call install_new,0644,etc/pam.d/portico,$(SYSCONFDIR)/pam.d/portico)
	$(call install_new,0644,etc/pam.d/portico-session,$(SYSCONFDIR)/pam.d/portico-session)
	$(call install_new,0755,etc/xsession,$(SYSCONFDIR)/portico/xsession)
	$(call install_new,0644,etc/logrotate.d/portico,$(SYSCONFDIR)/logrotate.d/portico)
	# the web portal ([gateway] web_root)
	cd web && find . -type f ! -name '.*' -exec install -D -m 0644 {} $(DESTDIR)$(PREFIX)/share/portico/web/{} \;
	# systemd units (ExecStart where the binaries went), the service users
	# and the directories the daemons write: these directories are in
	# systemd's search paths for /usr and /usr/local.
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(PREFIX)/lib/sysusers.d \
		$(DESTDIR)$(PREFIX)/lib/tmpfiles.d
	for u in etc/systemd/*.service; do \
		sed -e 's|/usr/local/bin/|$(PREFIX)/bin/|' -e 's|/usr/local/share/doc/|$(PREFIX)/share/doc/|' "$$u" \
			>$(DESTDIR)$(PREFIX)/lib/systemd/system/$${u##*/} && \
		chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/$${u##*/} || exit 1; \
	done
	install -m 0644 etc/sysusers.d/portico.conf $(DESTDIR)$(PREFIX)/lib/sysusers.d/portico.conf
	install -m 0644 etc/tmpfiles.d/portico.conf $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/portico.conf
	@echo "install: next: systemd-sysusers; systemd-tmpfiles --create portico.conf; edit $(SYSCONFDIR)/portico/portico.conf (docs/install.md)"

# libFuzzer targets (clang): one per tests/fuzz/fuzz_*.c.  They are built in
# a build directory of their own ($(BUILD)-fuzz), where every part is
# compiled by clang with ASan, UBSan and libFuzzer's coverage, and each
# target links the parts' libraries, so a target drives the real parsing
# code in-process.  A target may include a part's private headers
# (-Ibroker -Igateway -Isession).
#   make fuzz                    build them all
#   make fuzz-run SECONDS=N      run each for N seconds (tests/fuzz/run.sh)
FUZZ_BUILD ?= $(BUILD)-fuzz
SECONDS ?= 60
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
fuzz:
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=clang SAN=address,undefined \
		CFLAGS='-O1 -g -fsanitize=fuzzer-no-link' fuzz-bins
fuzz-run: fuzz
	@FUZZ_BUILD=$(FUZZ_BUILD) tests/fuzz/run.sh $(SECONDS)
fuzz-bins: $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
$(BUILD)/obj/tests/fuzz/%.o: tests/fuzz/%.c $(BUILD)/.flags
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(FREERDP_CFLAGS) -Ibroker -Igateway -Isession -c -o $@ $<
$(BUILD)/fuzz/%: $(BUILD)/obj/tests/fuzz/%.o $(foreach d,broker gateway session,$(BUILD)/lib/lib$(d).a) $(LIBPORTICO)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS) $(FREERDP_LIBS) $(ALL_LDFLAGS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
