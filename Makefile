# rl's build, install, tests and demo. Every Go build is static (no cgo) and
# uses the image library's pure-Go OpenPGP instead of gpgme.

GO           ?= go
TAGS         := containers_image_openpgp
export CGO_ENABLED := 0

# Root installs system-wide; anyone else into ~/.local/bin.
ifeq ($(shell id -u),0)
PREFIX       ?= /usr/local
else
PREFIX       ?= $(HOME)/.local
endif

TEST_TIMEOUT ?= 30m
# make demo: as root the shell runs as DEMO_USER (created with subordinate
# ids if missing); otherwise as the caller. Its HOME is DEMO_DIR/home-USER.
DEMO_USER    ?= rltest
DEMO_DIR     ?= /tmp/rl-demo-$(shell id -un)

.PHONY: all build deps install test fmt-check vet unit integration demo bench clean

all: build

# rl is the host side and the container's init (no storage, no image
# library: it starts in ~2 ms); rl-core runs the store commands and rl-image
# the pulls, rl-net a container's user-mode network (docs/process-model.md).
# rl finds them beside itself or in ../libexec/rl.
BINARIES     := rl rl-core rl-image rl-net
# rl-core's entry point enters rl's user namespace before Go's runtime
# starts, when rl execs it in its own place (cmd/rl-core/entry_amd64.s);
# without it rl-core still works, by a second exec of rl.
LDFLAGS_rl-core := $(if $(filter amd64,$(shell $(GO) env GOARCH)),-E=main.joinEntry)
# rl's entry point takes rl run's fast path before Go's runtime starts
# (cmd/rl/entry_amd64.s, userns/fastpath.go); without it rl goes the usual way.
LDFLAGS_rl := $(if $(filter amd64,$(shell $(GO) env GOARCH)),-E=main.fastEntry)

build:
	@$(foreach b,$(BINARIES),echo "$(GO) build -o bin/$(b) ./cmd/$(b)"; $(GO) build -tags $(TAGS) -ldflags='$(LDFLAGS_$(b))' -o bin/$(b) ./cmd/$(b) || exit 1;)

bin/rl-testenv: FORCE
	$(GO) build -tags $(TAGS) -o $@ ./tests/cmd/rl-testenv

# Debian packages for the tests and the demo (as root; otherwise a check).
deps:
	@.ci/deps

install: build
	install -D -m 0755 bin/rl $(DESTDIR)$(PREFIX)/bin/rl
	install -D -m 0755 bin/rl-core $(DESTDIR)$(PREFIX)/libexec/rl/rl-core
	install -D -m 0755 bin/rl-image $(DESTDIR)$(PREFIX)/libexec/rl/rl-image
	install -D -m 0755 bin/rl-net $(DESTDIR)$(PREFIX)/libexec/rl/rl-net

test: deps fmt-check vet unit integration

fmt-check:
	@files=$$(gofmt -l .); if [ -n "$$files" ]; then echo "gofmt needed:"; echo "$$files"; exit 1; fi

vet:
	$(GO) vet -tags $(TAGS) ./...

# Unit tests: every package but tests/, which drives the built binary.
unit:
	$(GO) test -tags $(TAGS) -count=1 $$($(GO) list -tags $(TAGS) ./... | grep -v '/tests$$')

# Integration tests: as root they create the test users; otherwise they skip
# (or run as yourself with RL_TEST_USER=$$USER).
integration: build
	RL_BINARY=$(CURDIR)/bin/rl $(GO) test -tags $(TAGS) -count=1 -timeout $(TEST_TIMEOUT) -v ./tests/

# Serves the test busybox image as a docker.io mirror, then runs
# `rl run -it busybox sh` as a non-root user; the registry stops on exit.
demo: deps install bin/rl-testenv
	@set -e; \
	if [ "$$(id -u)" = 0 ]; then user=$(DEMO_USER); create=--create-user; else user=$$(id -un); create=; fi; \
	home=$(DEMO_DIR)/home-$$user; \
	mkdir -p $(DEMO_DIR); chmod 0755 $(DEMO_DIR); \
	: > $(DEMO_DIR)/serve.out; \
	bin/rl-testenv serve --dir $(DEMO_DIR)/env --user $$user --home $$home $$create >$(DEMO_DIR)/serve.out & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null || true' EXIT; \
	i=0; until grep -q '^RL_TEST_REGISTRY=' $(DEMO_DIR)/serve.out; do \
		kill -0 $$pid 2>/dev/null || { echo "rl-testenv serve failed" >&2; exit 1; }; \
		i=$$((i+1)); [ $$i -lt 600 ] || { echo "rl-testenv serve: no registry after 60 s" >&2; exit 1; }; \
		sleep 0.1; \
	done; \
	echo "== $$(cat $(DEMO_DIR)/serve.out); running 'rl run -it busybox sh' as $$user (HOME=$$home); exit the shell to end the demo"; \
	set +e; \
	if [ "$$(id -u)" = 0 ]; then \
		setpriv --reuid=$$(id -u $$user) --regid=$$(id -g $$user) --init-groups \
			env -i HOME=$$home USER=$$user LOGNAME=$$user TERM="$${TERM:-xterm}" PATH=/usr/local/bin:/usr/bin:/bin \
			$(PREFIX)/bin/rl run -it busybox sh; \
	else \
		HOME=$$home $(PREFIX)/bin/rl run -it busybox sh; \
	fi

bench: build
	@if [ -x bench/run ]; then bench/run; else echo "bench/run: not present yet"; fi

clean:
	rm -rf bin

FORCE:
