// Package bench measures caravan's speed against the floor a PostgreSQL to
// PostgreSQL copy can reach on the same machine: a raw
// `COPY TO STDOUT | COPY FROM STDIN` pipe per table. It reports and never
// gates: the code is benchmarks only, so `go test ./...` runs nothing here.
//
// Run it with `make bench` (a throwaway PostgreSQL unless
// CARAVAN_TEST_PG_URL names a server). The line to quote is printed by
// BenchmarkCompare:
//
//	caravan/raw-copy time ratio: X.XX (caravan N rows/s, raw M rows/s)
//
// It also prints the same ratio for `caravan migrate --validate count`
// (caravan's default validation proves content with per-chunk digests, key
// and foreign-key checks, which the baseline does not do) and, when
// pgcopydb is installed, pgcopydb's ratio as a third reference point. Every
// tool's target is checked: row counts per table must equal the source's.
// Absolute numbers move with the machine's load; the ratios, measured back
// to back, move much less. `-benchtime 3x` sums three rounds.
//
// The dataset is `pgbench -i -s 10` plus a wide mixed-type table of 300k
// rows. BenchmarkLoadBatch and BenchmarkCopyBatch time the loader's COPY of
// one default-sized batch; the extractor's per-row and per-chunk hot paths
// are benchmarked in proto (BenchmarkSplitRowHash) and extractor
// (BenchmarkExtractChunk). Environment knobs for quicker or bigger runs:
//
//	CARAVAN_BENCH_SCALE      pgbench scale factor (default 10)
//	CARAVAN_BENCH_WIDE_ROWS  rows of the wide table (default 300000)
//	CARAVAN_BENCH_ARGS       extra arguments for `caravan migrate`, space-separated
//	CARAVAN_BENCH_BINARY     a caravan binary to use instead of building one
package bench
