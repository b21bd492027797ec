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

	"github.com/caravan-db/caravan/target"
)

// Follow shows a run's progress until ctx ends: a redrawn bar per table on
// a terminal (console non-nil), one log record per table otherwise.
func Follow(ctx context.Context, pool *pgxpool.Pool, run string, console *Console, log *slog.Logger) error {
	tty := console != nil
	every := 10 * time.Second
	if tty {
		every = time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		progress, err := target.Progress(ctx, pool, run)
		if err != nil || len(progress) == 0 {
			continue // the run may not be recorded yet
		}
		if tty {
			var b bytes.Buffer
			drawBars(&b, progress, 0, false)
			console.draw(b.Bytes())
			continue
		}
		for _, p := range progress {
			s := Stats(p, time.Now())
			log.InfoContext(ctx, "progress", "run", run, "table", p.Table, "status", displayStatus(p), "rows", p.Rows, "rows_total", p.EstRows,
				"bytes", p.Bytes, "rows_per_sec", int64(s.RowsPerSec), "eta_seconds", int64(s.ETA.Seconds()), "chunks_loaded", p.ChunksLoaded, "chunks", p.Chunks)
		}
	}
}

// TableStats derives rate and ETA from a table's progress.
type TableStats struct {
	Fraction   float64
	RowsPerSec float64
	ETA        time.Duration
}

// Stats computes a table's rate and remaining time.
func Stats(p target.TableProgress, now time.Time) TableStats {
	var s TableStats
	total := max(p.EstRows, p.Rows)
	if total > 0 {
		s.Fraction = float64(p.Rows) / float64(total)
	} else if p.Chunks > 0 {
		s.Fraction = float64(p.ChunksLoaded) / float64(p.Chunks)
	}
	// The rate covers the table's own loading window, and stops moving
	// once the table is done.
	end := now
	if p.Chunks > 0 && p.ChunksLoaded+p.ChunksFailed == p.Chunks && p.LastLoad != nil {
		end = *p.LastLoad
	}
	if p.FirstLoad != nil {
		if el := end.Sub(*p.FirstLoad).Seconds(); el > 0.1 {
			s.RowsPerSec = float64(p.Rows) / el
		}
	}
	if s.RowsPerSec > 0 && total > p.Rows {
		s.ETA = time.Duration(float64(total-p.Rows) / s.RowsPerSec * float64(time.Second))
	}
	return s
}

// drawBars prints a bar per table and a total; with ansi it first moves
// the cursor up over the previous drawing (prev lines) to redraw in place.
func drawBars(w io.Writer, progress []target.TableProgress, prev int, ansi bool) int {
	var b strings.Builder
	clear := ""
	if ansi {
		clear = "\x1b[2K"
		if prev > 0 {
			fmt.Fprintf(&b, "\x1b[%dA", prev)
		}
	}
	var rows, total, bytes int64
	for _, p := range progress {
		s := Stats(p, time.Now())
		rows += p.Rows
		total += max(p.EstRows, p.Rows)
		bytes += p.Bytes
		fmt.Fprintf(&b, "%s%-32.32s %s %5.1f%% %10d/%-10d %8.1f MB %9s rows/s ETA %s %s\n",
			clear, p.Table, bar(s.Fraction, 20), 100*s.Fraction, p.Rows, max(p.EstRows, p.Rows), float64(p.Bytes)/1e6, rate(s.RowsPerSec), eta(s.ETA), displayStatus(p))
	}
	frac := 0.0
	if total > 0 {
		frac = float64(rows) / float64(total)
	}
	fmt.Fprintf(&b, "%s%-32s %s %5.1f%% %10d/%-10d %8.1f MB\n", clear, "total", bar(frac, 20), 100*frac, rows, total, float64(bytes)/1e6)
	io.WriteString(w, b.String())
	return len(progress) + 1
}

// displayStatus says "loading" for a table whose rows are arriving; its
// recorded status only changes at milestones.
func displayStatus(p target.TableProgress) string {
	if p.Status == target.StatusPending && p.Rows > 0 {
		return "loading"
	}
	return p.Status
}

func bar(f float64, width int) string {
	n := int(f * float64(width))
	n = min(max(n, 0), width)
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

func rate(r float64) string {
	if r <= 0 {
		return "-" // not measurable yet (or the table took under 0.1 s)
	}
	return fmt.Sprintf("%.0f", r)
}

func eta(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return d.Round(time.Second).String()
}
