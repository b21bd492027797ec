package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/caravan-db/caravan/coordinator"
	"github.com/caravan-db/caravan/internal/testenv"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/source"
)

// skippingReader drops every 97th row it reads, as a paging bug would: the
// extractor's counts and digests then describe exactly what was read, so
// only the count against the source itself can notice.
type skippingReader struct{ source.Source }

func (r skippingReader) Read(ctx context.Context, task *proto.ChunkTask, emit func(line []byte) error) error {
	n := 0
	return r.Source.Read(ctx, task, func(line []byte) error {
		n++
		if n%97 == 0 {
			return nil
		}
		return emit(line)
	})
}

// TestReaderThatSkipsRowsIsCaught: a reader bug that never reads some rows
// must fail the table's verdict, although every row that was read arrived.
func TestReaderThatSkipsRowsIsCaught(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src,
		`CREATE TABLE keyed (id integer PRIMARY KEY, v text)`,
		`INSERT INTO keyed SELECT g, 'v' || g FROM generate_series(1, 20000) g`,
		`CREATE TABLE heap (n integer, v text)`,
		`INSERT INTO heap SELECT g % 10, 'h' || g FROM generate_series(1, 5000) g`,
		`ANALYZE`)
	opts := coordinator.Options{RowsPerChunk: 5000, BatchRows: 1000}
	w := migrateInProcessWith(t, src, dst, opts, func(s source.Source) source.Source { return skippingReader{s} })
	if w.err == nil {
		t.Fatal("the run succeeded although the reader skipped rows")
	}
	for _, table := range []string{"public.keyed", "public.heap"} {
		detail := query[string](t, dst, `SELECT coalesce(string_agg(detail, '; '), '') FROM caravan.verdicts
			WHERE run_id = $1 AND table_id = $2 AND level = 'count' AND NOT ok`, w.run, table)
		if !strings.Contains(detail, "source") {
			t.Errorf("%s: no failed count verdict naming the source's count (got %q)", table, detail)
		}
	}
}
