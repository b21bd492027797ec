package report

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Follow shows a run's progress until ctx ends: on a terminal (console
// non-nil) a header and a bar per table, redrawn every second; otherwise
// log records, every 10 s, for the run and for each table whose phase or
// rows changed since the last ones (a table that sits still says nothing).
func Follow(ctx context.Context, pool *pgxpool.Pool, run string, console *Console, log *slog.Logger) error {
	every := 10 * time.Second
	if console != nil {
		every = time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	var changes changeTracker
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		rep, err := Build(ctx, pool, run)
		if err != nil || len(rep.Tables) == 0 {
			continue // the run may not be recorded yet
		}
		if console != nil {
			var b bytes.Buffer
			drawBars(&b, rep, 0, false)
			console.draw(b.Bytes())
			continue
		}
		changed := changes.changed(rep)
		if len(changed) == 0 {
			continue
		}
		log.InfoContext(ctx, "run progress", "run", rep.Run, "status", rep.Status, "phase", rep.Phase, "elapsed_seconds", int64(rep.Seconds),
			"rows", rep.Rows, "rows_total", rep.EstRows, "bytes", rep.Bytes, "rows_per_sec", rateValue(rep.RowsPerSec))
		for _, t := range changed {
			attrs := []any{"run", rep.Run, "table", t.Table, "phase", t.Phase, "rows", t.Rows, "rows_total", max(t.EstRows, t.Rows),
				"bytes", t.Bytes, "rows_per_sec", rateValue(t.RowsPerSec), "chunks_loaded", t.ChunksLoaded, "chunks", t.Chunks}
			if t.ETASeconds != nil {
				attrs = append(attrs, "eta_seconds", int64(*t.ETASeconds))
			}
			if t.Detail != "" {
				attrs = append(attrs, "reason", oneLine(t.Detail))
			}
			log.InfoContext(ctx, "table progress", attrs...)
		}
	}
}

// changeTracker remembers each table's phase and rows, to say only what
// changed since it last looked.
type changeTracker struct{ seen map[string]string }

func (c *changeTracker) changed(rep *Report) []Table {
	if c.seen == nil {
		c.seen = map[string]string{}
	}
	var out []Table
	for _, t := range rep.Tables {
		state := fmt.Sprintf("%s %d %d", t.Phase, t.Rows, t.ChunksLoaded)
		if c.seen[t.Table] != state {
			c.seen[t.Table] = state
			out = append(out, t)
		}
	}
	return out
}

// drawBars prints the header, a bar per table and a total; with ansi it
// first moves the cursor up over the previous drawing (prev lines) to
// redraw in place. It returns the lines drawn.
func drawBars(w io.Writer, rep *Report, prev int, ansi bool) int {
	var b strings.Builder
	clear := ""
	if ansi {
		clear = "\x1b[2K"
		if prev > 0 {
			fmt.Fprintf(&b, "\x1b[%dA", prev)
		}
	}
	fmt.Fprintf(&b, "%s%s\n", clear, rep.Header())
	for _, t := range rep.Tables {
		total := max(t.EstRows, t.Rows)
		frac := fraction(t)
		eta := "-"
		if t.ETASeconds != nil {
			eta = (time.Duration(*t.ETASeconds) * time.Second).String()
		}
		phase := t.Phase
		if t.Phase == PhaseFailed && t.Detail != "" {
			phase += ": " + clip(oneLine(t.Detail), 60)
		}
		fmt.Fprintf(&b, "%s%-32.32s %s %5.1f%% %10d/%-10d %8.1f MB %9s rows/s ETA %-8s %s\n",
			clear, t.Table, bar(frac, 20), 100*frac, t.Rows, total, float64(t.Bytes)/1e6, rateText(t.RowsPerSec), eta, phase)
	}
	frac := 0.0
	if rep.EstRows > 0 {
		frac = float64(rep.Rows) / float64(rep.EstRows)
	}
	fmt.Fprintf(&b, "%s%-32s %s %5.1f%% %10d/%-10d %8.1f MB\n", clear, "total", bar(frac, 20), 100*frac, rep.Rows, rep.EstRows, float64(rep.Bytes)/1e6)
	io.WriteString(w, b.String())
	return len(rep.Tables) + 2
}

// fraction is how far a table's load is: rows against the estimate, or
// chunks where there is no estimate.
func fraction(t Table) float64 {
	if total := max(t.EstRows, t.Rows); total > 0 {
		return float64(t.Rows) / float64(total)
	}
	if t.Chunks > 0 {
		return float64(t.ChunksLoaded) / float64(t.Chunks)
	}
	return 0
}

// writeLines prints the plain (no terminal) form of the live view: the
// header and the tables in changed.
func writeLines(w io.Writer, rep *Report, changed []Table) {
	fmt.Fprintln(w, rep.Header())
	for _, t := range changed {
		line := fmt.Sprintf("  %s: %s, %d/%d rows, %d/%d chunks, %s rows/s", t.Table, t.Phase, t.Rows, max(t.EstRows, t.Rows),
			t.ChunksLoaded, t.Chunks, rateText(t.RowsPerSec))
		if t.Detail != "" {
			line += ": " + oneLine(t.Detail)
		}
		fmt.Fprintln(w, line)
	}
}

func bar(f float64, width int) string {
	n := int(f * float64(width))
	n = min(max(n, 0), width)
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

// rateValue is a rate for a log attribute: 0 where there is none.
func rateValue(r *float64) int64 {
	if r == nil {
		return 0
	}
	return int64(*r)
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
