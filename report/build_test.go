package report

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/caravan-db/caravan/internal/testenv"
	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/target"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// A run that asked for no validation says so: its tables are "not
// validated", never "ok". A table whose every row was rejected reports the
// rows the source had.
func TestReportSaysWhatWasValidated(t *testing.T) {
	ctx := context.Background()
	pool, err := pgutil.Pool(ctx, testenv.Database(t, "report"), "test", 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := target.EnsureState(ctx, pool); err != nil {
		t.Fatal(err)
	}
	report := func(validation []any, verdicts ...target.VerdictRow) string {
		t.Helper()
		run := &target.Run{ID: uuid.NewString(), Status: target.RunSucceeded, SourceKind: "postgres", Source: "test",
			Config: map[string]any{"validation": validation}}
		if err := target.CreateRun(ctx, pool, run); err != nil {
			t.Fatal(err)
		}
		for _, tbl := range []struct {
			name, status string
			chunk        func(table string) error
		}{
			{"public.loaded", target.StatusFinalized, func(table string) error {
				return target.MarkExtracted(ctx, pool, run.ID, table, 0, 1, 1, 5, 50, "0000000000000001", time.Now())
			}},
			{"public.rejected", target.StatusFailed, func(table string) error {
				if err := target.FailChunk(ctx, pool, run.ID, table, 0, 1, "rejected"); err != nil {
					return err
				}
				return target.MarkExtracted(ctx, pool, run.ID, table, 0, 1, 1, 7, 70, "0000000000000002", time.Now())
			}},
		} {
			if err := target.AddTable(ctx, pool, run.ID, target.TableState{Table: tbl.name, SourceName: tbl.name, Status: tbl.status}); err != nil {
				t.Fatal(err)
			}
			if err := target.AddChunks(ctx, pool, run.ID, []target.ChunkState{{Table: tbl.name, Chunk: 0, Attempt: 1, Range: proto.RangeAll}}); err != nil {
				t.Fatal(err)
			}
			if err := tbl.chunk(tbl.name); err != nil {
				t.Fatal(err)
			}
		}
		for _, v := range verdicts {
			v.Run = run.ID
			if err := target.SaveVerdict(ctx, pool, v); err != nil {
				t.Fatal(err)
			}
		}
		rep, err := Build(ctx, pool, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := rep.WriteText(&out); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	line := func(text, table string) string {
		for _, l := range strings.Split(text, "\n") {
			if l = strings.TrimSpace(l); strings.HasPrefix(l, table+" ") {
				return strings.Join(strings.Fields(l), " ")
			}
		}
		t.Fatalf("no line for %s in\n%s", table, text)
		return ""
	}

	none := report([]any{"none"})
	if l := line(none, "public.loaded"); !strings.HasSuffix(l, "not validated") {
		t.Errorf("--validate none: %q", l)
	}
	if l := line(none, "public.rejected"); !strings.HasPrefix(l, "public.rejected 7 ") || !strings.HasSuffix(l, "FAILED") {
		t.Errorf("all rows rejected: %q", l)
	}

	n := int64(5)
	counted := report([]any{"count"}, target.VerdictRow{Table: "public.loaded", Level: "count", OK: true, SourceRows: &n, TargetRows: &n})
	if l := line(counted, "public.loaded"); !strings.HasPrefix(l, "public.loaded 5 5 ") || !strings.HasSuffix(l, " ok") {
		t.Errorf("validated: %q", l)
	}
}
