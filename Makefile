# dgrid — see README.md. `make demo` and `make test` work on a fresh Debian 12 with Swift.
SWIFT ?= swift
RELEASE_FLAGS = -c release --static-swift-stdlib
DEMO_DIR ?= $(shell mktemp -d /tmp/dgrid-demo.XXXXXX)

.PHONY: all build release demo test test-unit bench clean deps-build deps-test deps-bench

all: build

deps-build:
	@scripts/install-deps.sh build
deps-test:
	@scripts/install-deps.sh test
deps-bench:
	@scripts/install-deps.sh bench

build: deps-build
	$(SWIFT) build

release: deps-build
	$(SWIFT) build $(RELEASE_FLAGS)

demo: release
	@scripts/install-deps.sh demo
	@scripts/demo.sh "$$($(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)/dgrid" "$(DEMO_DIR)"

# The unit suites run first, as nobody (no root needed, seconds); the system
# suites (kernel, binaries, servers) then run as root, serially. CI runs as root.
test: deps-test
	$(SWIFT) build --build-tests
	@SWIFT=$(SWIFT) scripts/run-tests.sh all

# The unit suites alone: no root, no kernel features, no servers.
test-unit: deps-build
	$(SWIFT) build --build-tests
	@SWIFT=$(SWIFT) scripts/run-tests.sh unit

bench: deps-bench release
	@bench/run.sh "$$($(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)/dgrid"

clean:
	rm -rf .build
