package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caravan-db/caravan/coordinator"
	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/target"
)

// batchBytes is caravan's default --batch-bytes.
const batchBytes = coordinator.DefaultBatchBytes

// loadFixture is a target with caravan's state tables, one run and chunk,
// an empty keyless bench_wide (keys are built after the load, so COPY never
// maintains one), and one default-sized batch of bench_wide rows.
type loadFixture struct {
	pool  *pgxpool.Pool
	batch proto.RowBatch
	data  []byte
}

func newLoadFixture(b *testing.B) *loadFixture {
	b.Helper()
	ctx := context.Background()
	name, dbURL := newDatabase(ctx, b, "caravan_bench_load")
	b.Cleanup(func() {
		if err := dropDatabase(context.Background(), name); err != nil {
			b.Error(err)
		}
	})
	wide := wideTable()
	// The batch comes from real PostgreSQL output: the same canonical text
	// an extractor would send.
	if err := execAll(ctx, dbURL, "CREATE SCHEMA sample", strings.Replace(wide.Create, "bench_wide", "sample.bench_wide", 1)); err != nil {
		b.Fatal(err)
	}
	if err := execAll(ctx, dbURL, strings.Replace(wideRowsSQL(1, 10_000), "INSERT INTO bench_wide", "INSERT INTO sample.bench_wide", 1), wide.Create); err != nil {
		b.Fatal(err)
	}
	pool, err := pgutil.Pool(ctx, dbURL, "caravan-bench", 4)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var all bytes.Buffer
	_, err = conn.Conn().PgConn().CopyTo(ctx, &all, "COPY sample.bench_wide TO STDOUT")
	conn.Release()
	if err != nil {
		b.Fatalf("sample rows: %v", err)
	}
	f := &loadFixture{pool: pool}
	rows := 0
	for line := range bytes.Lines(all.Bytes()) {
		if len(f.data)+len(line) > batchBytes {
			break
		}
		f.data = append(f.data, line...)
		rows++
	}

	run := uuid.NewString()
	cols := []string{"id", "n", "amount", "ratio", "note", "code", "flag", "day", "at", "uid", "doc", "blob", "tags"}
	if err := target.EnsureState(ctx, pool); err != nil {
		b.Fatal(err)
	}
	if err := target.CreateRun(ctx, pool, &target.Run{ID: run, Status: target.RunLoading, SourceKind: "postgres", Source: "bench",
		Config: map[string]any{}, Model: &schema.Database{}}); err != nil {
		b.Fatal(err)
	}
	if err := target.AddTable(ctx, pool, run, target.TableState{Table: "public.bench_wide", SourceName: "public.bench_wide",
		Status: target.StatusPending, Chunks: 1, Created: true}); err != nil {
		b.Fatal(err)
	}
	if err := target.AddChunks(ctx, pool, run, []target.ChunkState{{Table: "public.bench_wide", Chunk: 0, Attempt: 1, Range: proto.RangeAll}}); err != nil {
		b.Fatal(err)
	}
	f.batch = proto.RowBatch{V: proto.Version, Run: run, Table: "public.bench_wide", Chunk: 0, Attempt: 1, Rows: rows,
		Encoding: proto.EncodingCopyText, Target: proto.TableRef{Schema: "public", Name: "bench_wide"}, Cols: cols, Key: []int{0}}
	return f
}

// batchesPerOp makes one op a run of batches rather than one: make bench
// runs every benchmark exactly once (-benchtime 1x), and a single batch is
// too short to time.
const batchesPerOp = 16

// BenchmarkLoadBatch is the loader's hot path: default-sized batches, each
// committed exactly once (chunk check, ledger row, COPY, commit). One op is
// batchesPerOp batches.
func BenchmarkLoadBatch(b *testing.B) {
	f := newLoadFixture(b)
	ctx := context.Background()
	b.SetBytes(batchesPerOp * int64(len(f.data)))
	b.ReportAllocs()
	seq := 0
	for b.Loop() {
		for range batchesPerOp {
			f.batch.Seq = seq
			seq++
			res, err := target.LoadBatch(ctx, f.pool, &f.batch, f.data)
			if err != nil {
				b.Fatal(err)
			}
			if res.Duplicate || res.Stale {
				b.Fatalf("batch %d not loaded: %+v", f.batch.Seq, res)
			}
		}
	}
	b.ReportMetric(float64(seq*f.batch.Rows)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkCopyBatch is the same COPY (autocommit) without the ledger and
// chunk check around it: the difference to BenchmarkLoadBatch is the price of
// exactly-once.
func BenchmarkCopyBatch(b *testing.B) {
	f := newLoadFixture(b)
	ctx := context.Background()
	conn, err := f.pool.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	sql := target.CopySQL(f.batch.Target, f.batch.Encoding, f.batch.Cols)
	b.SetBytes(batchesPerOp * int64(len(f.data)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for range batchesPerOp {
			if _, err := conn.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(f.data), sql); err != nil {
				b.Fatal(err)
			}
			n++
		}
	}
	b.ReportMetric(float64(n*f.batch.Rows)/b.Elapsed().Seconds(), "rows/s")
}
