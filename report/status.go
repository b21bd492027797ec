package report

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caravan-db/caravan/target"
)

// StatusOptions shape `caravan status`.
type StatusOptions struct {
	JSON  bool
	Watch bool
}

// statusDoc is `caravan status --json`.
type statusDoc struct {
	Report   *Report                `json:"report"`
	Progress []target.TableProgress `json:"progress"`
}

// Status prints a run's progress and verdicts; with Watch it redraws until
// the run ends.
func Status(ctx context.Context, pool *pgxpool.Pool, run string, w io.Writer, opts StatusOptions) error {
	lines := 0
	for {
		rep, err := Build(ctx, pool, run)
		if err != nil {
			return err
		}
		progress, err := target.Progress(ctx, pool, rep.Run)
		if err != nil {
			return err
		}
		over := rep.Status == target.RunSucceeded || rep.Status == target.RunFailed
		switch {
		case opts.JSON:
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			if err := enc.Encode(statusDoc{Report: rep, Progress: progress}); err != nil {
				return err
			}
		case opts.Watch && !over:
			lines = drawBars(w, progress, lines, true)
		default:
			if lines > 0 {
				fmt.Fprintf(w, "\x1b[%dA\x1b[J", lines) // the final view replaces the live one
			}
			fmt.Fprintf(w, "run %s: %s (source %s; %s)\n", rep.Run, rep.Status, rep.Source, rep.Consistency)
			drawBars(w, progress, 0, false)
			fmt.Fprintln(w)
			if err := rep.WriteText(w); err != nil {
				return err
			}
		}
		if !opts.Watch || over {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}
