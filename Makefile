# dedup-snapshotter: make build | make test | make dist | make demo | make install | make uninstall | make bench
SHELL := /bin/bash
PREFIX ?= /usr/local
DESTDIR ?=
MVN := mvn -B -q -Dstyle.color=never
# the shared tools (conformance harness, containerd-pull) for the tests, wherever this checkout was cloned to
export DEDUP_SHARED := $(shell bash scripts/shared-dir.sh)

.PHONY: build dist tools test fuzz conformance demo deps bench-deps install uninstall bench bench-ksm bench-lazy bench-peers clean

# what make build and make test need (scripts/install-deps.sh run|build|test|bench|all: by purpose)
deps:
	@bash scripts/install-deps.sh

# what the bench and demo scripts need beyond that (skopeo, umoci, fuse3, debootstrap, jq)
bench-deps:
	@bash scripts/install-deps.sh bench

build: deps bin/dedup-runc bin/dedup-fdholder
	@source scripts/find-jdk.sh && rm -rf build/lib && $(MVN) install -DskipTests && bash scripts/extract-natives.sh build/lib
	@# the JDK AOT caches of the daemon and dedupctl (decision 37): a training run of ~15-20 s on 2 cores
	@bash scripts/aot-train.sh
	@echo "built: bin/dedup-snapshotter bin/dedupctl bin/dedup-runc bin/dedup-fdholder (jars and AOT caches in build/lib)"

# The release tarball: build/dist/dedup-snapshotter-VERSION-linux-ARCH.tar.gz with a jlink'ed Java runtime, the jars,
# the C helpers, AOT caches trained with that runtime, the unit, the config and the containerd snippets (decision 51).
dist: build
	@bash scripts/dist.sh

# The runc wrapper for KSM is C, not Java: it runs on every runc call (see docs/ksm.md). Static: no loader cost.
bin/dedup-runc: ksm/src/main/c/dedup-runc.c
	@$(CC) -O2 -Wall -Wextra -Werror -static -o $@ $< 2>/dev/null || $(CC) -O2 -Wall -Wextra -Werror -o $@ $<

# Keeps the lazy loader's fanotify group alive across daemon restarts (docs/lazy-pull.md): tiny, static, C.
bin/dedup-fdholder: lazy/src/main/c/dedup-fdholder.c
	@$(CC) -O2 -Wall -Wextra -Werror -static -o $@ $< 2>/dev/null || $(CC) -O2 -Wall -Wextra -Werror -o $@ $<

# Unit tests, then integration tests against real containerd/runc/registry, then containerd's conformance suite.
# containerd 2.4 and 2.2 and crictl, built from their Go modules at pinned versions into build/tools (cached)
tools:
	@bash scripts/go-tools.sh

# dist before the itests: DistInstallTest installs the tarball
test: build tools dist
	@source scripts/find-jdk.sh && mvn -B -Dstyle.color=never verify -Ditest.skip=false 2>&1 | grep -Ev '^\[INFO\] (Download|---|$$)|^WARNING: ' ; test $${PIPESTATUS[0]} -eq 0
	@# verify rewrote build/lib's jars, so the build's caches no longer match them: trained again, the conformance
	@# runs start the daemon as an install does, with its AOT cache
	@bash scripts/aot-train.sh
	@# the README's first command as a user runs it (its two images are built once into the bench's image cache)
	@bash scripts/install-deps.sh bench && bash scripts/demo.sh >build/demo.log 2>&1 && grep -E 'dedup uses|python started' build/demo.log \
	  || { tail -n 40 build/demo.log; echo "make test: make demo failed (build/demo.log)"; exit 1; }
	@export CONFORMANCE_WORK=$$(mktemp -d /tmp/dedup-conformance.XXXXXX); bash scripts/conformance.sh; rc=$$?; \
	  bash scripts/test-summary.sh $$CONFORMANCE_WORK; exit $$rc

# The property-based fuzz tests of what images send (TOCs, tars, gzip members): FUZZ_TRIES each (make test runs 1000).
FUZZ_TRIES ?= 100000
fuzz:
	@source scripts/find-jdk.sh && mvn -B -Dstyle.color=never -pl lazy,daemon -am test -Djqwik.tries.default=$(FUZZ_TRIES) -Djqwik.reporting.onlyfailures=false \
	  -Dtest='*FuzzTest' -Dsurefire.failIfNoSpecifiedTests=false 2>&1 | grep -Ev '^\[INFO\] (Download|---|$$)|^WARNING: ' ; test $${PIPESTATUS[0]} -eq 0

conformance: build
	@bash scripts/conformance.sh

demo: build tools bench-deps
	@bash scripts/demo.sh

bench: build bench-deps
	@bash bench/run.sh

# Memory dedup (KSM): replicas' memory with KSM off vs on, and the start cost of bin/dedup-runc.
bench-ksm: build bench-deps
	@bash bench/ksm.sh

# Lazy pull: cold start of real workloads over a slow link, lazy vs a full pull through overlayfs; read throughput.
bench-lazy: build bench-deps
	@bash bench/lazy.sh

# dedup beside SOCI, containerd's EROFS snapshotter and overlayfs (issue 21): peers built by bench/peers/build.sh
bench-peers: build bench-deps
	@bash bench/peers.sh

# make install FROM=build/dist/dedup-snapshotter-….tar.gz installs that release instead of this checkout's build
install:
	@DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" bash scripts/install.sh $(if $(FROM),--from "$(FROM)")

uninstall:
	@DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" bash scripts/install.sh uninstall

clean:
	@rm -rf build && source scripts/find-jdk.sh && $(MVN) clean
