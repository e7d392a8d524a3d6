# Thin wrapper: the real build is CMake. `make run` and `make test` do all set-up on a fresh
# Debian bookworm machine (packages installed idempotently, with sudo when not root).

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CONFIG     ?= examples/quickstart.lua
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

BUILD_PKGS := build-essential cmake pkg-config libetpan-dev libgmime-3.0-dev liblua5.4-dev \
	libspf2-dev libopendkim-dev libpsl-dev libcurl4-gnutls-dev libssl-dev libevent-dev \
	libunbound-dev libpcre2-dev libjansson-dev libsqlite3-dev publicsuffix openssl \
	libexpat1-dev zlib1g-dev
# dovecot-imapd, dovecot-lmtpd: test_lmtp.py runs a private Dovecot (its system service may stay
# stopped). libnet-ssleay-perl: swaks speaks STARTTLS only with it, and it is a Recommends, which
# ensure-packages does not install. prometheus: promtool tests the example alerts, and
# test_dashboard.py runs a private Prometheus (its system service may stay stopped).
TEST_PKGS  := python3 python3-yaml swaks libnet-ssleay-perl nsd opendkim-tools clang haproxy rspamd clamav-daemon clamav groff-base \
              iproute2 dovecot-imapd dovecot-lmtpd prometheus
# Postfix is the yardstick of `make bench` (its smtp-source/smtp-sink, and a private instance).
BENCH_PKGS := postfix

.PHONY: all deps test-deps build run test test-asan cert clean bench-rules bench-lua fuzz install \
	soak bench-deps bench c10k conformance

all: build

# dpkg-query first, so that a machine with everything installed never touches apt.
deps:
	@scripts/ensure-packages $(BUILD_PKGS)

test-deps: deps
	@scripts/ensure-packages $(TEST_PKGS)
	@scripts/ensure-s3rver $(CURDIR)/build-tools/s3rver
	@scripts/ensure-mailauth $(CURDIR)/build-tools/mailauth

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

cert: deps
	@scripts/make-cert var/tls

run: build cert
	./$(BUILD)/sluice serve -c $(CONFIG)

test: test-deps build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The same tests under AddressSanitizer + UndefinedBehaviorSanitizer (CI runs this too).
test-asan: test-deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

bench-rules: build
	@cmake --build $(BUILD) --target bench_rule_match -j $(JOBS) >/dev/null
	./$(BUILD)/bench_rule_match

bench-lua: build
	@cmake --build $(BUILD) --target bench_lua_invoke -j $(JOBS) >/dev/null
	./$(BUILD)/bench_lua_invoke

# The long crash test (100 SIGKILL cycles under load) and the core integration suites under
# valgrind's leak check.
SOAK_CYCLES ?= 100
SOAK_SUITES ?= test_smtp_basic test_rules test_actions test_webhook test_relay
soak: test-deps build
	@scripts/ensure-packages valgrind
	cd tests/integration && SLUICE_BIN=$(CURDIR)/$(BUILD)/sluice SLUICE_SOURCE_DIR=$(CURDIR) \
		SLUICE_CRASH_CYCLES=$(SOAK_CYCLES) /usr/bin/python3 -m unittest test_crash.KillNine
	cd tests/integration && SLUICE_BIN=$(CURDIR)/$(BUILD)/sluice SLUICE_SOURCE_DIR=$(CURDIR) \
		SLUICE_VALGRIND=1 /usr/bin/python3 -m unittest $(SOAK_SUITES)

# sluice's SPF/DKIM/DMARC verdicts against rspamd and mailauth on CONFORMANCE_CASES generated
# cases (tests/conformance/); a new seed each run unless SEED is given. Writes the figures into
# docs/conformance.md.
CONFORMANCE_CASES ?= 2000
conformance: test-deps build
	SLUICE_BIN=$(abspath $(BUILD))/sluice SLUICE_SOURCE_DIR=$(CURDIR) /usr/bin/python3 \
		tests/conformance/run.py --cases $(CONFORMANCE_CASES) $(if $(SEED),--seed $(SEED)) \
		--doc docs/conformance.md

# Standard paths (GNUInstallDirs) under PREFIX; DESTDIR for staging, as usual.
PREFIX ?= /usr/local
install: build
	@cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	cmake --install $(BUILD)

# Postfix's package asks what to configure: "No configuration" leaves the system's own
# instance unconfigured and stopped; the benchmark runs a private one on loopback.
bench-deps: test-deps
	@dpkg-query -W -f='$${Status}' postfix 2>/dev/null | grep -q 'install ok installed' || \
		echo 'postfix postfix/main_mailer_type select No configuration' | \
		$(SUDO) debconf-set-selections
	@scripts/ensure-packages $(BENCH_PKGS)

# sluice against Postfix on loopback, then C10K; writes bench/results.md. BENCH_MESSAGES
# (default 20000 per run) and BENCH_LEVELS (default 1,10,50) make it shorter.
# SLUICE_BASELINE_BIN=path/to/an/older/sluice races that binary in the same rounds too.
bench: bench-deps build
	@$(CC) -O2 -Wall -Wextra -Werror -pthread bench/fsync_rate.c -o $(BUILD)/fsync_rate
	$(SUDO) env SLUICE_BIN=$(abspath $(BUILD))/sluice \
		$(if $(SLUICE_BASELINE_BIN),SLUICE_BASELINE_BIN=$(abspath $(SLUICE_BASELINE_BIN))) \
		/usr/bin/python3 bench/bench.py --c10k

# 10,000 idle sessions after EHLO while a sender measures latency (also part of `make bench`).
c10k: test-deps build
	SLUICE_BIN=$(abspath $(BUILD))/sluice /usr/bin/python3 bench/c10k.py

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

# libFuzzer targets (clang, ASan+UBSan) in their own build; each runs FUZZ_SECONDS.
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
fuzz: test-deps
	@cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DSLUICE_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_BUILD)
