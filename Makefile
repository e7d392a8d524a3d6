# Thin wrapper: the real build is CMake. `make run` and `make test` do all set-up on a fresh
# Debian bookworm machine (packages installed idempotently, with sudo when not root).

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CONFIG     ?= examples/quickstart.lua
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

BUILD_PKGS := build-essential cmake pkg-config libetpan-dev libgmime-3.0-dev liblua5.4-dev \
	libspf2-dev libopendkim-dev libopendmarc-dev libcurl4-gnutls-dev libssl-dev libevent-dev \
	libunbound-dev libpcre2-dev libjansson-dev libsqlite3-dev publicsuffix openssl \
	libexpat1-dev zlib1g-dev
TEST_PKGS  := python3 swaks nsd opendkim-tools clang haproxy rspamd clamav-daemon clamav

.PHONY: all deps test-deps build run test test-asan cert clean bench-rules bench-lua fuzz

all: build

# dpkg-query first, so that a machine with everything installed never touches apt.
deps:
	@scripts/ensure-packages $(BUILD_PKGS)

test-deps: deps
	@scripts/ensure-packages $(TEST_PKGS)
	@scripts/ensure-s3rver $(CURDIR)/build-tools/s3rver

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
