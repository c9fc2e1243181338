# dgrid — see README.md. `make demo` and `make test` work on a fresh Debian 12 with Swift.
SWIFT ?= swift
RELEASE_FLAGS = -c release --static-swift-stdlib
DEMO_DIR ?= $(shell mktemp -d /tmp/dgrid-demo.XXXXXX)

.PHONY: all help build release demo test test-unit bench clean deps-build deps-test deps-bench man install uninstall deb

all: build

help:
	@echo "make build       debug build (installs the build dependencies when missing)"
	@echo "make release     release build: static Swift runtime, what install and deb ship"
	@echo "make demo        builds, then tours the sandbox and a grid"
	@echo "make test        every test: unit suites as nobody, then system suites as root"
	@echo "make test-unit   the unit suites only (seconds, no root)"
	@echo "make bench       benchmarks (bench/run.sh)"
	@echo "make install     PREFIX=/usr/local (and DESTDIR=): binaries, man pages, profiles, image recipe, dgrid-worker@.service"
	@echo "make uninstall   removes what install put there (not /var/lib/dgrid, not /etc/dgrid)"
	@echo "make deb         a Debian package in dist/, built with dpkg-deb"
	@echo "make man         man pages from the help text into .build/man"

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
# The package tests (DebPackageCLITests) install the release build, and the
# install tests generate man pages with swift-argument-parser's tool: both are
# built here, since a test must not run SwiftPM while `swift test` holds .build.
test: deps-test release
	$(SWIFT) build --build-tests
	@$(SWIFT) package generate-manual --help >/dev/null
	@DGRID_RELEASE_BIN="$(BIN_DIR)" SWIFT=$(SWIFT) scripts/run-tests.sh all

# The unit suites alone: no root, no kernel features, no servers.
test-unit: deps-build
	$(SWIFT) build --build-tests
	@SWIFT=$(SWIFT) scripts/run-tests.sh unit

bench: deps-bench release
	@bench/run.sh "$$($(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)/dgrid"

# Install paths (scripts/install.sh). BIN_DIR: the binaries to install; by
# default the release build, built first. MAN_DIR: where `make man` writes.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBEXECDIR ?= $(PREFIX)/libexec/dgrid
DATADIR ?= $(PREFIX)/share/dgrid
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/dgrid
UNITDIR ?= $(PREFIX)/lib/systemd/system
MAN_DIR ?= .build/man
ifeq ($(origin BIN_DIR), undefined)
BIN_DIR = $(shell $(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)
INSTALL_BUILD = release
endif
INSTALL_PATHS = DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" BINDIR="$(BINDIR)" LIBEXECDIR="$(LIBEXECDIR)" \
	DATADIR="$(DATADIR)" MANDIR="$(MANDIR)" DOCDIR="$(DOCDIR)" UNITDIR="$(UNITDIR)"

man: $(INSTALL_BUILD)
	@rm -rf "$(MAN_DIR)"
	@SWIFT=$(SWIFT) scripts/man-pages.sh "$(BIN_DIR)" "$(MAN_DIR)"

install: man
	@$(INSTALL_PATHS) BIN_DIR="$(BIN_DIR)" MAN_DIR="$(MAN_DIR)" scripts/install.sh install

uninstall:
	@$(INSTALL_PATHS) scripts/install.sh uninstall

# dist/dgrid_VERSION_ARCH.deb: `make install PREFIX=/usr` into a staging root,
# Depends from the binaries' shared libraries (dpkg-shlibdeps).
deb: man
	@scripts/install-deps.sh package
	@BIN_DIR="$(BIN_DIR)" MAN_DIR="$(MAN_DIR)" scripts/package-deb.sh dist

clean:
	rm -rf .build dist
