# flowyfs build. `make` installs missing Debian packages, then builds
# build/flowyfs. `make test` runs the C unit tests (plain and ASan/UBSan),
# the libFuzzer targets for a bounded time, the bats tests against real
# mounts of both builds, and, when the pjdfstest source is there
# (PJDFSTEST_SRC, default ../shared/third_party/pjdfstest beside the
# repository), `make conformance`: pjdfstest on pipelines/ of a root
# allow_other mount. `make bench` prints speed ratios against the
# baselines it names.

PKGS     := libfuse3-dev fuse3 libsqlite3-dev libzstd-dev libgit2-dev slurm-wlm \
            libcjson-dev libssl-dev bats pkg-config git zstd \
            clang libclang-rt-14-dev sqlite3 autoconf automake groff-base \
            libgraphviz-dev libmicrohttpd-dev chromium libxml2-utils
LIBS_PC  := fuse3 sqlite3 libzstd libgit2 libcjson libcrypto libgvc libmicrohttpd
PREFIX   ?= /usr/local
MNT      ?= /mnt/flowy
PJDFSTEST_SRC ?= $(CURDIR)/../shared/third_party/pjdfstest

CC       ?= cc
WARN     := -Wall -Wextra -Wno-unused-parameter
BASEFLAGS = -std=gnu11 -D_GNU_SOURCE -Iinclude $(WARN) -MMD -MP \
            $(shell pkg-config --cflags $(LIBS_PC) 2>/dev/null)
LDLIBS    = $(shell pkg-config --libs $(LIBS_PC) 2>/dev/null) -lpthread -lm
OPT      := -O2 -g
SANFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
            -fno-sanitize-recover=undefined

SRCS     := $(wildcard src/*.c src/*/*.c)
LIBSRCS  := $(filter-out src/main.c,$(SRCS))
UNITSRCS := $(wildcard tests/unit/test_*.c)

OBJS      = $(SRCS:%.c=build/%.o)
ASAN_OBJS = $(SRCS:%.c=build/asan/%.o)
UNITS     = $(UNITSRCS:tests/unit/%.c=build/tests/%)
ASAN_UNITS= $(UNITSRCS:tests/unit/%.c=build/asan/tests/%)

# libFuzzer targets, built with clang into build/fuzz/ from only the
# objects each needs. `make fuzz` runs each for FUZZ_SECONDS from its seed
# corpus in tests/fuzz/corpus/<t> (read only; what the fuzzer finds goes to
# build/fuzz/work/<t>) and fails on a crash, leak or timeout, leaving the
# input in build/fuzz/artifacts/.
FUZZ_CC      := clang
FUZZFLAGS    := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                -fno-sanitize-recover=undefined
FUZZ_SECONDS ?= 30
FUZZ_MAXLEN_ctl  := 8192
FUZZ_MAXLEN_step := 16384
FUZZ_OPTS     = -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
                -print_final_stats=1
FUZZ_LIBS     = $(shell pkg-config --libs libcjson 2>/dev/null)
FUZZ_OBJS_ctl  := build/fuzz/src/ctl.o build/fuzz/src/util.o
# The definition layer without catalog.c (which needs the daemon's state).
FUZZ_OBJS_step := $(patsubst %.c,build/fuzz/%.o,$(filter-out src/def/catalog.c,\
                  $(wildcard src/def/*.c))) build/fuzz/src/util.o

.PHONY: all deps asan test unit unit-asan bats bats-asan bench demo install \
        clean undemo fuzz fuzz-ctl fuzz-step conformance

all: deps build/flowyfs

# Install what is missing, once; the stamp records that it was checked.
deps: build/.deps
build/.deps: Makefile
	@mkdir -p build
	@missing=""; for p in $(PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' \
	    || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi
	@touch $@

build/flowyfs: $(OBJS)
	$(CC) $(OPT) -o $@ $^ $(LDLIBS)

build/asan/flowyfs: $(ASAN_OBJS)
	$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS)

build/%.o: %.c | build/.deps
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(BASEFLAGS) -c -o $@ $<

build/asan/%.o: %.c | build/.deps
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) $(BASEFLAGS) -c -o $@ $<

build/fuzz/%.o: %.c | build/.deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZFLAGS) -fsanitize=fuzzer-no-link $(BASEFLAGS) -c -o $@ $<

build/fuzz/fuzz_ctl: build/fuzz/tests/fuzz/fuzz_ctl.o $(FUZZ_OBJS_ctl)
	$(FUZZ_CC) $(FUZZFLAGS) -fsanitize=fuzzer -o $@ $^ $(FUZZ_LIBS)

build/fuzz/fuzz_step: build/fuzz/tests/fuzz/fuzz_step.o $(FUZZ_OBJS_step)
	$(FUZZ_CC) $(FUZZFLAGS) -fsanitize=fuzzer -o $@ $^ $(FUZZ_LIBS)

build/tests/%: tests/unit/%.c $(filter-out build/src/main.o,$(OBJS))
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(BASEFLAGS) -Itests/unit -o $@ $^ $(LDLIBS)

build/asan/tests/%: tests/unit/%.c $(filter-out build/asan/src/main.o,$(ASAN_OBJS))
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) $(BASEFLAGS) -Itests/unit -o $@ $^ $(LDLIBS)

asan: deps build/asan/flowyfs

unit: deps $(UNITS)
	@set -e; for t in $(UNITS); do echo "== $$t"; $$t; done

unit-asan: deps $(ASAN_UNITS)
	@set -e; for t in $(ASAN_UNITS); do echo "== $$t"; \
	  ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp $$t; done

bats: all
	FLOWYFS_BIN=$(CURDIR)/build/flowyfs bats tests/bats

# Under ASan the crash trial runs 8 of its 20 iterations (each is a full
# daemon start and kill; the plain run does all 20), and the two files that
# spend their time in other programs (a Slurm cluster, Chromium and 200
# client connections) run in the plain pass only, to keep `make test`
# near 20 minutes; BATS_ASAN_FILES=tests/bats runs them all.
BATS_ASAN_FILES ?= $(filter-out tests/bats/slurm.bats tests/bats/dashboard.bats,\
                     $(wildcard tests/bats/*.bats))
bats-asan: deps build/asan/flowyfs
	CRASH_ITERATIONS=$${CRASH_ITERATIONS:-8} LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  FLOWYFS_BIN=$(CURDIR)/build/asan/flowyfs bats $(BATS_ASAN_FILES)

fuzz-ctl fuzz-step: fuzz-%: deps build/fuzz/fuzz_%
	@mkdir -p build/fuzz/work/$* build/fuzz/artifacts
	@echo "== fuzz_$* for $(FUZZ_SECONDS)s"
	build/fuzz/fuzz_$* $(FUZZ_OPTS) -max_len=$(FUZZ_MAXLEN_$*) \
	  -dict=tests/fuzz/$*.dict -artifact_prefix=build/fuzz/artifacts/$*- \
	  build/fuzz/work/$* tests/fuzz/corpus/$*

fuzz: fuzz-ctl fuzz-step

# pjdfstest groups on pipelines/ (needs root); see docs/conformance.md.
conformance: all
	PJDFSTEST_SRC=$(PJDFSTEST_SRC) FLOWYFS_BIN=$(CURDIR)/build/flowyfs \
	  bash tests/conformance/run.sh

# The whole suite: what README.md and .ci/run call.
test: unit unit-asan fuzz bats bats-asan $(if $(wildcard $(PJDFSTEST_SRC)/pjdfstest.c),conformance)

# Each script prints its own table and appends its rows to BENCH_ROWS;
# bench/summary.sh prints them all as one table with ok/MISS.
BENCH_SCRIPTS := run engine slurm gc pictures
bench: all build/bench/store_tool build/bench/exec_floor
	@mkdir -p build/bench && : > build/bench/rows.tsv && : > build/bench/times.tsv
	@set -e; for b in $(BENCH_SCRIPTS); do t0=$$(date +%s); \
	  BENCH_ROWS=$(CURDIR)/build/bench/rows.tsv bash bench/$$b.sh; \
	  printf '%s\t%s\n' "bench/$$b.sh" "$$(( $$(date +%s) - t0 ))" >> build/bench/times.tsv; done
	bash bench/summary.sh build/bench/rows.tsv build/bench/times.tsv

# The store's hash, put and a random-read probe as commands (bench/run.sh).
build/bench/store_tool: bench/store_tool.c $(filter-out build/src/main.o,$(OBJS))
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(BASEFLAGS) -o $@ $^ $(LDLIBS)

# The floor of a step's start: posix_spawn vs the daemon's isolated start.
build/bench/exec_floor: bench/exec_floor.c build/src/exec.o build/src/util.o
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(BASEFLAGS) -o $@ $^ $(LDLIBS)

# Mount the default store on $(MNT) (default /mnt/flowy; `make demo
# MNT=DIR` or MNT in the environment) and run the quickstart; `make undemo`
# unmounts the same path.
demo: all
	MNT='$(MNT)' bash examples/demo.sh

undemo:
	fusermount3 -u '$(MNT)'

install: all
	install -D -m 755 build/flowyfs $(DESTDIR)$(PREFIX)/bin/flowyfs
	install -D -m 644 docs/flowyfs.1 $(DESTDIR)$(PREFIX)/share/man/man1/flowyfs.1

clean:
	rm -rf build

-include $(OBJS:.o=.d) $(ASAN_OBJS:.o=.d) $(wildcard build/fuzz/*/*.d build/fuzz/*/*/*.d)
