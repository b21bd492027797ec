# The two commands a new user runs: `make demo` and `make test`. Both start
# what they need (a throwaway PostgreSQL from the machine's own binaries,
# an embedded NATS) unless CARAVAN_TEST_PG_URL points at a server.

GO      ?= go
WITHPG  := $(GO) run ./internal/cmd/withpg --

.PHONY: build demo test test-short bench lint

build:
	$(GO) build -o bin/caravan ./cmd/caravan

demo: build
	$(WITHPG) bash scripts/demo.sh

test:
	$(WITHPG) $(GO) test -race -count=1 -timeout 40m ./...

bench: build
	$(WITHPG) $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./bench/...

lint:
	gofmt -l . | (! grep .)
	$(GO) vet ./...
