package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/caravan-db/caravan/target"
)

// The rate covers the table's own window and stops moving once the table
// is done; a table of one batch has no rate.
func TestRateFreezesWhenTableIsDone(t *testing.T) {
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	last := first.Add(10 * time.Second)
	p := target.TableProgress{Table: "a", Status: target.StatusFinalized, EstRows: 1000, Rows: 1000, Batches: 4, Chunks: 4, ChunksLoaded: 4, FirstRead: &first, LastLoad: &last}
	for _, now := range []time.Time{last, last.Add(time.Hour)} {
		if l := tableLine(p, nil, nil, now); l.RowsPerSec == nil || *l.RowsPerSec != 100 || l.Seconds != 10 || l.ETASeconds != nil {
			t.Errorf("at %s: %+v", now, l)
		}
	}
	p.Status, p.Rows, p.Batches, p.ChunksLoaded = target.StatusPending, 500, 2, 2
	if l := tableLine(p, nil, nil, first.Add(5*time.Second)); l.RowsPerSec == nil || *l.RowsPerSec != 100 || l.ETASeconds == nil || *l.ETASeconds != 5 || l.Phase != PhaseLoading {
		t.Errorf("half way: %+v", l)
	}
	tenth := first.Add(100 * time.Millisecond)
	p = target.TableProgress{Table: "tiny", Status: target.StatusFinalized, Rows: 1, Batches: 1, Chunks: 1, ChunksLoaded: 1, FirstRead: &first, LastLoad: &tenth}
	if l := tableLine(p, nil, nil, last); l.RowsPerSec != nil {
		t.Errorf("a table of one batch has a rate: %v rows/s", *l.RowsPerSec)
	}
}

// A table is failed only when something failed; one not judged yet is
// validating. The run's status decides the exit code.
func TestPhasesAndExitCodes(t *testing.T) {
	now := time.Now()
	all := map[string]bool{"count": true, "keys": true, "digest": true}
	n := int64(5)
	for _, c := range []struct {
		name     string
		p        target.TableProgress
		verdicts []target.VerdictRow
		want     string
	}{
		{"nothing yet", target.TableProgress{Status: target.StatusPending}, nil, PhasePending},
		{"rows arriving", target.TableProgress{Status: target.StatusPending, Rows: 3}, nil, PhaseLoading},
		{"chunks in", target.TableProgress{Status: target.StatusLoaded, Rows: 5}, nil, PhaseFinalizing},
		{"finalized, unjudged", target.TableProgress{Status: target.StatusFinalized, Rows: 5}, nil, PhaseValidating},
		{"finalized, partly judged", target.TableProgress{Status: target.StatusFinalized, Rows: 5},
			[]target.VerdictRow{{Level: "count", OK: true, TargetRows: &n}}, PhaseValidating},
		{"judged", target.TableProgress{Status: target.StatusFinalized, Rows: 5},
			[]target.VerdictRow{{Level: "count", OK: true}, {Level: "keys", OK: true}, {Level: "digest", OK: true}}, PhaseOK},
		{"judged wrong", target.TableProgress{Status: target.StatusFinalized, Rows: 5},
			[]target.VerdictRow{{Level: "count", OK: false, Detail: "4 rows, source 5"}}, PhaseFailed},
		{"chunk rejected", target.TableProgress{Status: target.StatusFailed, Error: "chunk 0: bad"}, nil, PhaseFailed},
	} {
		if l := tableLine(c.p, c.verdicts, all, now); l.Phase != c.want || l.OK != (c.want == PhaseOK) || (c.want == PhaseFailed) != (l.Detail != "") {
			t.Errorf("%s: phase %s ok %v detail %q, want %s", c.name, l.Phase, l.OK, l.Detail, c.want)
		}
	}

	table := []target.TableProgress{{Table: "a", Status: target.StatusFinalized}}
	for _, c := range []struct {
		run    target.Run
		tables []target.TableProgress
		want   int
	}{
		{target.Run{Status: target.RunSucceeded}, table, ExitOK},
		{target.Run{Status: target.RunFailed}, table, ExitFailed},
		{target.Run{Status: target.RunFailed}, nil, ExitRefused},
		{target.Run{Status: target.RunInterrupted}, table, ExitInterrupted},
		{target.Run{Status: target.RunLoading, Abandoned: true}, table, ExitInterrupted},
		{target.Run{Status: target.RunLoading}, table, ExitRunning},
	} {
		rep := assemble(&c.run, c.tables, nil, now)
		if rep.ExitCode != c.want {
			t.Errorf("%s (abandoned %v): exit %d, want %d", c.run.Status, c.run.Abandoned, rep.ExitCode, c.want)
		}
		if c.run.Abandoned && rep.Status != target.RunAbandoned {
			t.Errorf("a run without heartbeat reports %s", rep.Status)
		}
	}
}

// A log line written while bars are shown lands above them, and the bars
// come back below it.
func TestConsoleKeepsLogsAboveBars(t *testing.T) {
	var out bytes.Buffer
	c := NewConsole(&out)
	c.draw([]byte("bar 1\nbar 2\n"))
	out.Reset()
	if _, err := c.Write([]byte("log line\n")); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "\x1b[2A\x1b[Jlog line\nbar 1\nbar 2\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestReportText(t *testing.T) {
	n, ok := int64(5), true
	rep := &Report{Run: "r", Status: "failed", Error: "failed tables: b", Tables: []Table{
		{Table: "a", Phase: PhaseOK, SourceRows: 5, TargetRows: &n, DigestOK: &ok, OK: true, Validated: true, Seconds: 1, RowsPerSec: Rate(5, 2, 1)},
		{Table: "b", Phase: PhaseFailed, SourceRows: 5, OK: false, Detail: "load: table b, column c, key id=\"1\": bad"},
	}}
	var out bytes.Buffer
	if err := rep.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"source rows", "digest ok", "rows/s", "FAILED", `b: load: table b, column c, key id="1": bad`, "run r failed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// The terminal view: a header, then a bar per table with its phase (and a
// failed table's reason on one line), then the total; redrawn in place.
func TestBars(t *testing.T) {
	now := time.Now()
	first := now.Add(-2 * time.Second)
	rep := assemble(&target.Run{ID: "r", Status: target.RunLoading, StartedAt: now.Add(-3 * time.Second), Config: map[string]any{"validation": []any{"count"}}},
		[]target.TableProgress{
			{Table: "public.a", Status: target.StatusPending, EstRows: 100, Rows: 50, Batches: 5, Chunks: 2, ChunksLoaded: 1, FirstRead: &first},
			{Table: "public.b", Status: target.StatusFailed, Error: "chunk 0: value too long\ncontext", Chunks: 1, ChunksFailed: 1},
			{Table: "public.c", Status: target.StatusFinalized, Rows: 7, Chunks: 1, ChunksLoaded: 1},
		}, nil, now)
	var out bytes.Buffer
	if n := drawBars(&out, rep, 0, false); n != 5 {
		t.Errorf("drew %d lines, want 5", n)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "run r  loading  phase loading  elapsed 3s") {
		t.Fatalf("view:\n%s", out.String())
	}
	for i, want := range []string{"[##########..........]  50.0%", "failed: chunk 0: value too long", "validating"} {
		if !strings.Contains(lines[i+1], want) {
			t.Errorf("line %q lacks %q", lines[i+1], want)
		}
	}
	if strings.Contains(out.String(), "\x1b") || strings.Contains(lines[2], "context") {
		t.Errorf("escapes, or a reason over two lines:\n%q", out.String())
	}
	out.Reset()
	drawBars(&out, rep, 5, true)
	if !strings.HasPrefix(out.String(), "\x1b[5A\x1b[2K") {
		t.Errorf("a redraw does not move up over the last one: %q", out.String()[:12])
	}
}
