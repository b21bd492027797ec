// Package bench measures caravan against what a user would otherwise pick
// for a PostgreSQL to PostgreSQL copy, and against the floor such a copy
// can reach on the same machine: a raw
// `COPY TO STDOUT (FORMAT binary) | COPY FROM STDIN (FORMAT binary)` pipe
// per table. It reports and never gates: the code is benchmarks only, so
// `go test ./...` runs nothing here.
//
// Run it with `make bench` (a throwaway PostgreSQL unless
// CARAVAN_TEST_PG_URL names a server). BenchmarkCompare copies the dataset
// with every tool side by side, two rounds (BENCH_ROUNDS), each into a fresh
// target, and prints per round a table of wall time, ratio to the raw pipe
// of the same round, peak RSS and what the tool validates, with the
// machine's load average at the start and end of the round:
//
//   - raw: the binary pipe, two tables at a time, each key built after its load;
//   - raw-readback: the same, then every table of the target read back once
//     (binary COPY TO, two at a time): the least a copy proven by reading
//     the target back can cost;
//   - caravan: caravan migrate, every validation level (count, keys,
//     per-chunk digests, foreign keys);
//   - caravan-count: caravan migrate --validate count;
//   - pgcopydb: pgcopydb clone --table-jobs 2 --index-jobs 2 (installed with
//     apt-get when missing and the benchmark runs as root, else skipped);
//   - pg_dump: pg_dump --data-only | psql, the tables created and their keys
//     built around it.
//
// Peak RSS is the process's ru_maxrss (from its rusage: for a tool that
// forks, the largest of its processes) and the sum over its process tree
// sampled every 100 ms (pgcopydb runs a dozen processes). Every tool's
// target is checked: row counts per table must equal the source's. On a
// shared machine absolute times move with the load; compare ratios within
// a round.
//
// The dataset has the shape of issue 9: the pgbench tables, a wide table
// (bench_wide: numeric, float, text with escapes and multi-byte UTF-8,
// boolean, date, timestamptz, uuid, jsonb, 0-2 kB of bytea, integer[]), a
// table with a composite key (bench_lines) and a keyless one
// (bench_events). `make bench` uses a tenth of the size (about 250
// MB of COPY text); `make bench-issue` the 2 GB. The knobs:
//
//	CARAVAN_BENCH_SCALE           pgbench scale factor (default 3; issue: 30)
//	CARAVAN_BENCH_WIDE_ROWS       rows of bench_wide (default 100000; issue: 1000000)
//	CARAVAN_BENCH_COMPOSITE_ROWS  rows of bench_lines (default 50000; issue: 500000)
//	CARAVAN_BENCH_KEYLESS_ROWS    rows of bench_events (default 30000; issue: 300000)
//	CARAVAN_BENCH_TOOLS           comma-separated tools to run besides raw (default all)
//	CARAVAN_BENCH_ARGS            extra arguments for `caravan migrate`, space-separated
//	                              (e.g. --cpu-profile FILE)
//	CARAVAN_BENCH_SYNC_ARGS       the same for the cutover's `caravan sync`
//	CARAVAN_BENCH_BINARY          a caravan binary to use instead of building one
//	CARAVAN_BENCH_KEEP_SOURCE     keep the source database at the end
//	CARAVAN_BENCH_SOURCE_DB       use that kept database instead of building one
//
// BenchmarkCutover (also in `make bench`) measures issue 11's cutover on
// the same dataset, per round on a fresh copy of the source (CREATE
// DATABASE ... TEMPLATE) and a fresh target: a full caravan migrate; then
// 0.1% of every table's rows changed on the source (a third updated, a
// third inserted with keys above the largest, a third deleted, picked at
// random with a fixed seed; the keyless table gets duplicates) and
// `caravan sync` of that run; then `caravan verify` of the now identical
// databases, which must exit 0. It prints each time with the load average
// and the two ratios of the goals: sync / migrate (goal <= 0.40)
// and verify / (the migrate's validation phase + one source read) (goal
// <= 1.0). The validation phase is the union of the run's validate_*
// audit intervals (validation of one table overlaps the load of another);
// one source read is a raw COPY TO of every table, two at a time.
//
// BenchmarkLoadBatch and BenchmarkCopyBatch time the loader's COPY of one
// default-sized batch; the extractor's per-row and per-chunk hot paths are
// benchmarked in proto (BenchmarkSplitRowHash) and extractor
// (BenchmarkExtractChunk). WHERE_THE_TIME_GOES.md breaks a run down from a
// CPU profile.
//
// With CARAVAN_TEST_MSSQL_URL set, BenchmarkTSQLCompare (tsql_test.go)
// measures a T-SQL source too: a table of CARAVAN_BENCH_TSQL_ROWS rows
// (default 1,000,000; bigint key, numeric, datetime2, uniqueidentifier,
// float, bit and money) migrated by caravan, against the engine's own floor
// (Babelfish: COPY TO STDOUT on its PostgreSQL port,
// CARAVAN_TEST_BABELFISH_PG_URL) and against pgloader when installed.
package bench
