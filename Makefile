# The two commands a new user runs: `make demo` and `make test`. Both start
# what they need (a throwaway PostgreSQL from the machine's own binaries,
# an embedded NATS) unless CARAVAN_TEST_PG_URL points at a server.

GO      ?= go
WITHPG  := $(GO) run ./internal/cmd/withpg --

.PHONY: build demo test test-short bench lint

# Version and commit for `caravan --version`, also where Go's own VCS
# stamping is off (GOFLAGS=-buildvcs=false) or there is no .git.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)

build:
	$(GO) build -ldflags "-X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o bin/caravan ./cmd/caravan

demo: build
	$(WITHPG) bash scripts/demo.sh

test:
	$(WITHPG) $(GO) test -race -count=1 -timeout 40m ./...

bench: build
	$(WITHPG) $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./bench/...

lint:
	gofmt -l . | (! grep .)
	$(GO) vet ./...
