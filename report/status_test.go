package report

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/caravan-db/caravan/internal/testenv"
	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/target"
)

// status --watch without a terminal prints plain lines (no escapes) while
// the run goes, only for what changed, and stops with the run; --json
// --watch prints one JSON document per line.
func TestWatchWithoutTerminal(t *testing.T) {
	ctx := context.Background()
	pool, err := pgutil.Pool(ctx, testenv.Database(t, "status"), "test", 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := target.EnsureState(ctx, pool); err != nil {
		t.Fatal(err)
	}
	for _, jsonLines := range []bool{false, true} {
		run := uuid.NewString()
		if err := target.CreateRun(ctx, pool, &target.Run{ID: run, Status: target.RunLoading, SourceKind: "postgres", Source: "test",
			Config: map[string]any{"validation": []any{"count"}}}); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"public.a", "public.b"} {
			if err := target.AddTable(ctx, pool, run, target.TableState{Table: name, SourceName: name, Status: target.StatusPending, Chunks: 1, EstRows: 5}); err != nil {
				t.Fatal(err)
			}
			if err := target.AddChunks(ctx, pool, run, []target.ChunkState{{Table: name, Chunk: 0, Attempt: 1, Range: proto.RangeAll}}); err != nil {
				t.Fatal(err)
			}
		}
		out := &testenv.SyncBuffer{}
		done := make(chan *Report, 1)
		go func() {
			rep, err := Status(ctx, pool, run, out, StatusOptions{Watch: true, JSON: jsonLines, Every: 20 * time.Millisecond})
			if err != nil {
				t.Error(err)
			}
			done <- rep
		}()
		testenv.Eventually(t, 10*time.Second, "the live view", func() bool { return strings.Contains(out.String(), run) })
		if err := target.SetTableStatus(ctx, pool, run, "public.a", target.StatusFailed, "chunk 0: a bad row\nsecond line"); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 10*time.Second, "the change to be shown", func() bool { return strings.Contains(out.String(), "a bad row") })
		if err := target.SetRunStatus(ctx, pool, run, target.RunFailed, "failed tables: public.a"); err != nil {
			t.Fatal(err)
		}
		var rep *Report
		select {
		case rep = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("--watch did not stop when the run ended")
		}
		if rep.ExitCode != ExitFailed {
			t.Errorf("exit code %d for a failed run", rep.ExitCode)
		}
		text := out.String()
		if strings.Contains(text, "\x1b") {
			t.Errorf("escapes without a terminal:\n%q", text)
		}
		if jsonLines {
			for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
				var doc Report
				if err := json.Unmarshal([]byte(line), &doc); err != nil || doc.SchemaVersion != SchemaVersion || doc.Run != run {
					t.Errorf("not a JSON line of the report: %q (%v)", line, err)
				}
			}
			continue
		}
		// Each table is said once while pending, public.a again when it
		// failed, public.b not again: it did not change.
		if n := strings.Count(text, "  public.b: pending"); n != 1 {
			t.Errorf("public.b's unchanged state printed %d times:\n%s", n, text)
		}
		for _, want := range []string{"run " + run + "  loading  phase loading", "  public.a: failed, 0/5 rows, 0/1 chunks, - rows/s: chunk 0: a bad row",
			"public.a: chunk 0: a bad row", "run " + run + " failed"} {
			if !strings.Contains(text, want) {
				t.Errorf("lacks %q:\n%s", want, text)
			}
		}
	}
}
