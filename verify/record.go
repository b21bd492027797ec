package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caravan-db/caravan/report"
	"github.com/caravan-db/caravan/target"
)

// Levels are the verdicts a verification gives each table: count (rows on
// both sides) and digest (every row the same, Detail naming those that
// differ).
var Levels = []string{"count", "digest"}

// maxDetail caps how many differences a verdict's detail lists; the
// command's output lists them all.
const maxDetail = 20

// Recorder keeps a verification as a run in the target's caravan schema.
type Recorder struct {
	pool *pgxpool.Pool
	run  string
	stop func() // the heartbeat's (target.KeepAlive)
}

// Start records a live run and heartbeats it until Finish, so a
// verification killed midway reads as abandoned, not as running forever.
func Start(ctx context.Context, pool *pgxpool.Pool, run, sourceKind, sourceURL string, sample float64) (*Recorder, error) {
	if err := target.EnsureState(ctx, pool); err != nil {
		return nil, err
	}
	// The kind tells `caravan status` and `caravan report` what the run was.
	cfg := map[string]any{"kind": report.KindVerify, "validation": Levels}
	if sample > 0 && sample < 1 {
		cfg["sample"] = sample
	}
	err := target.CreateRun(ctx, pool, &target.Run{ID: run, Status: target.RunValidating, SourceKind: sourceKind, Source: sourceURL, Config: cfg})
	if err != nil {
		return nil, err
	}
	return &Recorder{pool: pool, run: run, stop: target.KeepAlive(ctx, pool, run, slog.New(slog.DiscardHandler))}, nil
}

// Run is the run's id.
func (r *Recorder) Run() string { return r.run }

// Finish records the tables' verdicts and the run's outcome: succeeded
// when every table is identical, failed otherwise, interrupted when the
// verification did not end (err, with ctx cancelled), failed with the
// error when it broke.
func (r *Recorder) Finish(ctx context.Context, res *Result, runErr error) error {
	r.stop()
	ctx = context.WithoutCancel(ctx)
	if runErr != nil {
		status := target.RunFailed
		if ctxErr(runErr) {
			status = target.RunInterrupted
		}
		return target.SetRunStatus(ctx, r.pool, r.run, status, runErr.Error())
	}
	if err := r.saveRun(ctx, res); err != nil {
		return err
	}
	for _, t := range res.Tables {
		if err := r.saveTable(ctx, t); err != nil {
			return err
		}
	}
	status := target.RunSucceeded
	if !res.Identical() {
		status = target.RunFailed
	}
	return target.SetRunStatus(ctx, r.pool, r.run, status, "")
}

func ctxErr(err error) bool { return errors.Is(err, context.Canceled) }

// saveRun keeps how the source was read and the tables verified (the
// model, names included), as a migrate run keeps them.
func (r *Recorder) saveRun(ctx context.Context, res *Result) error {
	run, err := target.LoadRun(ctx, r.pool, r.run)
	if err != nil {
		return err
	}
	run.Model, run.Consistency = res.DB, res.Consistency
	return target.CreateRun(ctx, r.pool, run)
}

func (r *Recorder) saveTable(ctx context.Context, t *Table) error {
	err := target.AddTable(ctx, r.pool, r.run, target.TableState{Table: t.Table, SourceName: t.Source, Status: target.StatusFinalized,
		Chunks: t.Chunks, EstRows: t.SourceRows})
	if err != nil {
		return err
	}
	src, dst := t.SourceRows, t.TargetRows
	count := target.VerdictRow{Run: r.run, Table: t.Table, Level: "count", OK: src == dst && !t.Absent, SourceRows: &src, TargetRows: &dst, Seconds: t.Seconds}
	switch {
	case t.Absent:
		count.Detail = "the table is not on the target"
	case t.Columns != "":
		count.OK, count.TargetRows = false, nil
		count.Detail = "not counted: other columns on the target: " + t.Columns
	case !count.OK:
		count.Detail = fmt.Sprintf("the source has %d rows, the target %d", src, dst)
	}
	digest := target.VerdictRow{Run: r.run, Table: t.Table, Level: "digest", OK: t.OK(), SourceRows: &src, TargetRows: &dst, Seconds: t.Seconds}
	if !digest.OK {
		digest.Detail = detail(t)
	}
	for _, v := range []target.VerdictRow{count, digest} {
		if err := target.SaveVerdict(ctx, r.pool, v); err != nil {
			return err
		}
	}
	return nil
}

// detail is a verdict's text: the summary and the first differences.
func detail(t *Table) string {
	lines := []string{t.Summary()}
	for i, d := range t.Diffs {
		if i == maxDetail {
			lines = append(lines, fmt.Sprintf("... and %d more", len(t.Diffs)-maxDetail))
			break
		}
		lines = append(lines, strings.Join(strings.Fields(d.String()), " "))
	}
	return strings.Join(lines, "; ")
}
