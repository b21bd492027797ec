package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/caravan-db/caravan/target"
)

func TestStatsFreezeWhenTableIsDone(t *testing.T) {
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	last := first.Add(10 * time.Second)
	p := target.TableProgress{EstRows: 1000, Rows: 1000, Chunks: 4, ChunksLoaded: 4, FirstLoad: &first, LastLoad: &last}
	for _, now := range []time.Time{last, last.Add(time.Hour)} {
		if s := Stats(p, now); s.RowsPerSec != 100 || s.Fraction != 1 || s.ETA != 0 {
			t.Errorf("at %s: %+v", now, s)
		}
	}
	p.Rows, p.ChunksLoaded = 500, 2
	if s := Stats(p, first.Add(5*time.Second)); s.RowsPerSec != 100 || s.ETA != 5*time.Second {
		t.Errorf("half way: %+v", s)
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
		{Table: "a", SourceRows: 5, TargetRows: &n, DigestOK: &ok, OK: true, Seconds: 1, RowsPerSec: 5},
		{Table: "b", SourceRows: 5, OK: false, Detail: "load: table b, column c, key id=\"1\": bad"},
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
