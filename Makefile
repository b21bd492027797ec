# The two commands a new user runs: `make demo` and `make test`. Both start
# what they need (a throwaway PostgreSQL from the machine's own binaries,
# an embedded NATS) unless CARAVAN_TEST_PG_URL points at a server.

GO      ?= go
WITHPG  := $(GO) run ./internal/cmd/withpg --

.PHONY: build demo test test-short bench bench-issue lint

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

# make bench: every tool side by side on a small dataset, two rounds; then
# the cutover (migrate, 0.1% changed and sync, verify) on the same dataset.
# make bench-issue: the same on issue 9's 2 GB shape (pgbench -s 30, 1M wide
# rows, 500k composite-key rows, 300k keyless rows).
BENCH ?= Compare|Cutover|LoadBatch|CopyBatch
BENCH_ROUNDS ?= 2
bench: build
	$(WITHPG) $(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCH_ROUNDS)x -timeout 180m ./bench/...

bench-issue:
	CARAVAN_BENCH_SCALE=30 CARAVAN_BENCH_WIDE_ROWS=1000000 CARAVAN_BENCH_COMPOSITE_ROWS=500000 \
		CARAVAN_BENCH_KEYLESS_ROWS=300000 $(MAKE) bench BENCH=Compare

lint:
	gofmt -l . | (! grep .)
	$(GO) vet ./...
