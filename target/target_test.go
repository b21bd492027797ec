package target

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caravan-db/caravan/internal/testenv"
	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func pool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	p, err := pgutil.Pool(context.Background(), testenv.Database(t, "target"), "test", 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	if err := EnsureState(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

// The validator reads a chunk back from the target and digests it; that
// must equal the extractor's digest of the same rows (proto.SplitRow and
// proto.RowHash over the lines it read) for every kind of value, or a
// correct copy would look corrupt.
func TestReadDigestMatchesExtractor(t *testing.T) {
	ctx := context.Background()
	p := pool(t)
	_, err := p.Exec(ctx, `CREATE TABLE v (id integer, b boolean, i inet, ip inet, by bytea, a text[], ts timestamptz, tsn timestamp, f float8,
		n numeric(10,3), c char(4), j jsonb, js json, t text, e text)`)
	if err != nil {
		t.Fatal(err)
	}
	// Each line is what PostgreSQL prints under pgutil's settings, as the
	// extractor reads it from a PostgreSQL source.
	data := "1\tt\t10.0.0.1\t10.0.0.0/8\t\\\\x00ff\t{a,\"b c\",NULL,\"x\\\\\\\\y\"}\t2020-01-01 10:00:00.5+00\t2020-02-29 23:59:59.999999\t1.5e-07\t12.300\tab  \t{\"a\": 1}\t{\"b\":  [1, 2.50]}\tunicode 😀 𝄞 tab\\there\t\\N\n" +
		"2\tf\t::1\t\\N\t\\\\x\t{}\t-infinity\t4713-01-01 00:00:00 BC\tNaN\t-0.001\t    \t[]\t\\N\t\t\n" +
		"3\t\\N\t\\N\t2001:db8::/32\t\\\\x5c0a09\t\\N\tinfinity\t\\N\t-Infinity\t0.000\t\\N\t{\"k\": \"tab\\\\there\"}\t\"\"\tline\\nbreak back\\\\slash cr\\r\t\\\\N is not null\n"
	b := &proto.RowBatch{Run: "00000000-0000-0000-0000-000000000001", Table: "public.v", Target: proto.TableRef{Schema: "public", Name: "v"},
		Cols: []string{"id", "b", "i", "ip", "by", "a", "ts", "tsn", "f", "n", "c", "j", "js", "t", "e"}}
	if _, err := p.Exec(ctx, `INSERT INTO caravan.runs (run_id, status, source_kind, source) VALUES ($1, 'loading', 'test', 'x')`, b.Run); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Exec(ctx, `INSERT INTO caravan.tables (run_id, table_id, source_name, status) VALUES ($1, 'public.v', 'v', 'pending')`, b.Run); err != nil {
		t.Fatal(err)
	}
	if err := AddChunks(ctx, p, b.Run, []ChunkState{{Table: "public.v", Chunk: 0, Attempt: 1, Range: proto.RangeAll}}); err != nil {
		t.Fatal(err)
	}
	b.Attempt = 1
	if _, err := LoadBatch(ctx, p, b, []byte(data)); err != nil {
		t.Fatal(err)
	}
	digest := func(lines []string) proto.Digest {
		var d proto.Digest
		var scratch []byte
		for _, line := range lines {
			fields, err := proto.SplitRow(nil, []byte(line))
			if err != nil {
				t.Fatal(err)
			}
			if len(fields) != len(b.Cols) {
				t.Fatalf("%d fields in %q", len(fields), line)
			}
			var h uint64
			h, scratch = proto.RowHash(fields, scratch)
			d.Add(h)
		}
		return d
	}
	lines := strings.SplitAfter(strings.TrimSuffix(data, "\n"), "\n")
	want := digest(lines)
	got, err := ReadDigest(ctx, p, schema.Name{Schema: "public", Name: "v"}, proto.EncodingCopyText, b.Cols, "TRUE")
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("read-back digest %s over %d rows, extractor's %s over %d", got, got.Rows, want, want.Rows)
	}
	// A range bound as the validator binds a chunk's selects that range only.
	where, args := pgutil.RangePredicateWith([]string{"id"}, []string{"integer"}, []string{"2"}, nil, pgutil.BoundSetting)
	got, err = ReadDigest(ctx, p, schema.Name{Schema: "public", Name: "v"}, proto.EncodingCopyText, b.Cols, where, args...)
	if err != nil {
		t.Fatal(err)
	}
	if want := digest(lines[1:]); got != want {
		t.Errorf("rows id >= 2: read-back digest %s over %d rows, extractor's %s over %d", got, got.Rows, want, want.Rows)
	}

	// The same rows in binary: read as the PostgreSQL source reads a binary
	// chunk, loaded as the loader loads a binary batch into a table of the
	// same types, and read back as the validator does, digest alike, and
	// the copy holds the same values.
	tx, err := p.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var tuples []byte
	var wantBin proto.Digest
	var fields []proto.Field
	var scratch []byte
	err = pgutil.CopyRows(ctx, tx, proto.EncodingCopyBinary, `SELECT id, b, i, ip, by, a, ts, tsn, f, n, c, j, js, t, e FROM v ORDER BY id`, nil, func(row []byte) error {
		if fields, err = proto.SplitTuple(fields[:0], row); err != nil {
			return err
		}
		var h uint64
		h, scratch = proto.RowHash(fields, scratch)
		wantBin.Add(h)
		tuples = append(tuples, row...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tx.Rollback(ctx)
	if wantBin.Rows != 3 || wantBin == want {
		t.Fatalf("binary digest %s over %d rows (text: %s)", wantBin, wantBin.Rows, want)
	}
	if _, err := p.Exec(ctx, `CREATE TABLE w (LIKE v)`); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Exec(ctx, `INSERT INTO caravan.tables (run_id, table_id, source_name, status) VALUES ($1, 'public.w', 'v', 'pending')`, b.Run); err != nil {
		t.Fatal(err)
	}
	if err := AddChunks(ctx, p, b.Run, []ChunkState{{Table: "public.w", Chunk: 0, Attempt: 1, Range: proto.RangeAll}}); err != nil {
		t.Fatal(err)
	}
	bin := *b
	bin.Table, bin.Target, bin.Encoding, bin.Rows = "public.w", proto.TableRef{Schema: "public", Name: "w"}, proto.EncodingCopyBinary, 3
	if _, err := LoadBatch(ctx, p, &bin, tuples); err != nil {
		t.Fatal(err)
	}
	got, err = ReadDigest(ctx, p, schema.Name{Schema: "public", Name: "w"}, proto.EncodingCopyBinary, b.Cols, "TRUE")
	if err != nil {
		t.Fatal(err)
	}
	if got != wantBin {
		t.Errorf("binary read-back digest %s over %d rows, source's %s over %d", got, got.Rows, wantBin, wantBin.Rows)
	}
	var same bool
	if err := p.QueryRow(ctx, `SELECT (SELECT string_agg(v::text, ',' ORDER BY id) FROM v) = (SELECT string_agg(w::text, ',' ORDER BY id) FROM w)`).Scan(&same); err != nil || !same {
		t.Errorf("binary copy differs from the original (%v)", err)
	}
}

// Four loaders receiving the same batch at once commit it once.
func TestLoadBatchIsExactlyOnceUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	p := pool(t)
	run := "00000000-0000-0000-0000-000000000002"
	for _, q := range []string{
		`CREATE TABLE t (id integer, v text)`,
		`INSERT INTO caravan.runs (run_id, status, source_kind, source) VALUES ('` + run + `', 'loading', 'test', 'x')`,
		`INSERT INTO caravan.tables (run_id, table_id, source_name, status) VALUES ('` + run + `', 'public.t', 't', 'pending')`,
	} {
		if _, err := p.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := AddChunks(ctx, p, run, []ChunkState{{Table: "public.t", Chunk: 0, Attempt: 2, Range: proto.RangeAll}}); err != nil {
		t.Fatal(err)
	}
	b := &proto.RowBatch{Run: run, Table: "public.t", Chunk: 0, Attempt: 2, Seq: 0, Rows: 3, Target: proto.TableRef{Schema: "public", Name: "t"}, Cols: []string{"id", "v"}}
	data := []byte("1\ta\n2\tb\n3\tc\n")
	var wg sync.WaitGroup
	var mu sync.Mutex
	committed := 0
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := LoadBatch(ctx, p, b, data)
			if err != nil {
				t.Error(err)
				return
			}
			if !res.Duplicate {
				mu.Lock()
				committed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var rows int
	if err := p.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if committed != 1 || rows != 3 {
		t.Errorf("%d commits and %d rows, want 1 and 3", committed, rows)
	}
	// A batch of an attempt the chunk has moved past changes nothing.
	old := *b
	old.Attempt, old.Seq = 1, 1
	res, err := LoadBatch(ctx, p, &old, data)
	if err != nil || !res.Stale {
		t.Errorf("stale batch: %+v, %v", res, err)
	}
}

// A refused batch is explained by table, column, key and value.
func TestExplainRejectedRow(t *testing.T) {
	ctx := context.Background()
	p := pool(t)
	if _, err := p.Exec(ctx, `CREATE TABLE r ("Id" integer, "Name" varchar(3))`); err != nil {
		t.Fatal(err)
	}
	b := &proto.RowBatch{Target: proto.TableRef{Schema: "public", Name: "r"}, Cols: []string{"Id", "Name"}, Key: []int{0}}
	data := []byte("1\tab\n2\ttoo long\n")
	_, err := p.Exec(ctx, "SELECT 1") // keep the pool warm; the COPY below fails
	if err != nil {
		t.Fatal(err)
	}
	conn, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	_, copyErr := conn.Conn().PgConn().CopyFrom(ctx, strings.NewReader(string(data)), CopySQL(b.Target, proto.EncodingCopyText, b.Cols))
	if copyErr == nil || !pgutil.IsDataError(copyErr) {
		t.Fatalf("want a data error, got %v", copyErr)
	}
	r := Explain(copyErr, b, data)
	if r.Column != "Name" || r.Key != `Id="2"` || r.Row != "2\ttoo long" || !strings.Contains(r.Error, "too long") {
		t.Errorf("explained as %+v", r)
	}
	if s := r.Summary("public.r"); !strings.Contains(s, "table public.r, column Name, key Id=\"2\"") {
		t.Errorf("summary %q", s)
	}
}

// A refused binary batch names the row too: its key and fields as their
// send-format bytes, the row text still a COPY line of those bytes.
func TestExplainRejectedBinaryRow(t *testing.T) {
	ctx := context.Background()
	p := pool(t)
	if _, err := p.Exec(ctx, `CREATE TABLE rb ("Id" integer, "Name" varchar(3))`); err != nil {
		t.Fatal(err)
	}
	b := &proto.RowBatch{Target: proto.TableRef{Schema: "public", Name: "rb"}, Cols: []string{"Id", "Name"}, Key: []int{0}, Encoding: proto.EncodingCopyBinary}
	tuple := func(id byte, name string) []byte {
		out := []byte{0, 2, 0, 0, 0, 4, 0, 0, 0, id, 0, 0, 0, byte(len(name))}
		return append(out, name...)
	}
	data := append(tuple(1, "ab"), tuple(2, "too long")...)
	conn, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	_, copyErr := conn.Conn().PgConn().CopyFrom(ctx, copyStream(b.Encoding, data), CopySQL(b.Target, b.Encoding, b.Cols))
	if copyErr == nil || !pgutil.IsDataError(copyErr) {
		t.Fatalf("want a data error, got %v", copyErr)
	}
	r := Explain(copyErr, b, data).Escaped()
	if r.Column != "Name" || r.Key != `Id="\x00\x00\x00\x02"` || r.Row != `\x00\x00\x00\x02`+"\ttoo long" || !strings.Contains(r.Error, "too long") {
		t.Errorf("explained as %+v", r)
	}
}

// A chunk failed by a rejected batch before its extractor's report came
// still gets what was read (the table's real source rows), and stays failed.
func TestMarkExtractedRecordsRowsOfAFailedChunk(t *testing.T) {
	ctx := context.Background()
	p := pool(t)
	run := "00000000-0000-0000-0000-000000000003"
	if _, err := p.Exec(ctx, `INSERT INTO caravan.runs (run_id, status, source_kind, source) VALUES ($1, 'loading', 'test', 'x')`, run); err != nil {
		t.Fatal(err)
	}
	if err := AddTable(ctx, p, run, TableState{Table: "public.r", SourceName: "r", Status: StatusPending}); err != nil {
		t.Fatal(err)
	}
	if err := AddChunks(ctx, p, run, []ChunkState{{Table: "public.r", Chunk: 0, Attempt: 1, Range: proto.RangeAll},
		{Table: "public.r", Chunk: 1, Attempt: 1, Range: proto.RangeAll}}); err != nil {
		t.Fatal(err)
	}
	if err := FailChunk(ctx, p, run, "public.r", 0, 1, "rejected"); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []int{0, 1} {
		if err := MarkExtracted(ctx, p, run, "public.r", ch, 1, 2, 500, 4000, "00000000000000ff", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	// A redelivered report for the failed chunk changes nothing.
	if err := MarkExtracted(ctx, p, run, "public.r", 0, 1, 9, 9, 9, "0000000000000009", time.Now()); err != nil {
		t.Fatal(err)
	}
	chunks, err := Chunks(ctx, p, run, "public.r")
	if err != nil {
		t.Fatal(err)
	}
	if c := chunks[0]; c.Status != StatusFailed || c.Rows != 500 || c.Digest != "00000000000000ff" || c.Error != "rejected" {
		t.Errorf("failed chunk: %+v", c)
	}
	if c := chunks[1]; c.Status != "extracted" || c.Rows != 500 {
		t.Errorf("pending chunk: %+v", c)
	}
}
