package report

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// StatusOptions shape `caravan status`.
type StatusOptions struct {
	JSON  bool
	Watch bool
	// Terminal: the output is a terminal, so --watch redraws in place;
	// otherwise it prints plain lines.
	Terminal bool
	// Every is how often --watch looks again (1 s on a terminal, 10 s
	// otherwise when zero).
	Every time.Duration
}

// Status prints a run's state and verdicts and returns the report it
// printed last; with Watch it follows the run until it ends (or ctx does).
// JSON prints the Report document; with Watch, one line of it per look
// (JSON Lines).
func Status(ctx context.Context, pool *pgxpool.Pool, run string, w io.Writer, opts StatusOptions) (*Report, error) {
	every := opts.Every
	if every <= 0 {
		every = 10 * time.Second
		if opts.Terminal {
			every = time.Second
		}
	}
	lines := 0
	var changes changeTracker
	for {
		rep, err := Build(ctx, pool, run)
		if err != nil {
			return nil, err
		}
		run = rep.Run // the newest run, once: it stays the one watched
		last := !opts.Watch || rep.Over()
		switch {
		case opts.JSON && opts.Watch:
			if err := rep.WriteJSONLine(w); err != nil {
				return rep, err
			}
		case opts.JSON:
			if err := rep.WriteJSON(w); err != nil {
				return rep, err
			}
		case !last && opts.Terminal:
			lines = drawBars(w, rep, lines, true)
		case !last:
			if changed := changes.changed(rep); len(changed) > 0 {
				writeLines(w, rep, changed)
			}
		default:
			if lines > 0 {
				fmt.Fprintf(w, "\x1b[%dA\x1b[J", lines) // the final view replaces the live one
			}
			fmt.Fprintf(w, "source %s (%s)\n", rep.Source, rep.Consistency)
			if rep.Kind != KindVerify { // a verification loads nothing: no bars
				drawBars(w, rep, 0, false)
				fmt.Fprintln(w)
			}
			if err := rep.WriteText(w); err != nil {
				return rep, err
			}
		}
		if last {
			return rep, nil
		}
		select {
		case <-ctx.Done():
			return rep, nil
		case <-time.After(every):
		}
	}
}
