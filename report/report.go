// Package report turns a run's state in the target into what a person or a
// script reads: the live view (a header and a phase per table), the
// per-table verdicts printed at the end of a run, and the same as JSON.
// `caravan status`, migrate's and the coordinator's progress and the final
// report are all built here from one Report, so they cannot disagree.
package report

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caravan-db/caravan/target"
)

// SchemaVersion is the version of the JSON document (Report) that `status
// --json` prints and --report-json writes. It changes when a field is
// renamed or removed or changes meaning; new fields do not change it.
const SchemaVersion = 1

// Table phases: where a table is in the run.
const (
	PhasePending    = "pending"    // nothing committed yet
	PhaseLoading    = "loading"    // rows arriving
	PhaseFinalizing = "finalizing" // every chunk loaded; keys, indexes, sequences being built
	PhaseValidating = "validating" // finalized, verdicts outstanding
	PhaseOK         = "ok"         // loaded, and validated when the run validates
	PhaseFailed     = "failed"     // a chunk, the finalization or a verdict failed (Detail says why)
)

// Run phases beyond the table phases: planning (no table recorded yet) and
// done (every table ok or failed).
const (
	PhasePlanning = "planning"
	PhaseDone     = "done"
)

// Run kinds (Report.Kind): what the run recorded in caravan.runs.config
// did.
const (
	KindMigrate = "migrate"
	KindVerify  = "verify"
)

// Process exit codes, the same for migrate, coordinator, resume and status
// (README, "Exit codes").
const (
	ExitOK          = 0 // the run succeeded
	ExitError       = 1 // usage, connection or other error: the run did not end
	ExitFailed      = 2 // the run ended and a table failed to load or validate
	ExitRefused     = 3 // the run was refused at setup; nothing was loaded
	ExitInterrupted = 4 // interrupted (Ctrl-C, SIGTERM) or abandoned: caravan resume goes on
	ExitRunning     = 5 // status only: the run is still going
)

// Table is one table's line of the report and of the live view.
type Table struct {
	Table  string `json:"table"`
	Phase  string `json:"phase"`
	Status string `json:"status"` // as recorded in caravan.tables
	// Chunks and rows: EstRows is the plan's estimate, Rows those committed
	// to the target so far, SourceRows those the extractors read.
	Chunks       int    `json:"chunks"`
	ChunksLoaded int    `json:"chunks_loaded"`
	ChunksFailed int    `json:"chunks_failed"`
	EstRows      int64  `json:"est_rows"`
	Rows         int64  `json:"rows"`
	Bytes        int64  `json:"bytes"`
	SourceRows   int64  `json:"source_rows"`
	TargetRows   *int64 `json:"target_rows"` // counted by the validator
	DigestOK     *bool  `json:"digest_ok"`
	OK           bool   `json:"ok"` // phase ok
	// Validated is false when the run asked for no validation (--validate
	// none): OK then says only that the table loaded.
	Validated bool `json:"validated"`
	// Seconds is the table's own copy window (tableSeconds); RowsPerSec is
	// null until a rate can be measured (Rate).
	Seconds    float64  `json:"seconds"`
	RowsPerSec *float64 `json:"rows_per_sec"`
	ETASeconds *float64 `json:"eta_seconds"`
	Detail     string   `json:"detail,omitempty"` // why it failed
}

// Report is a run's state and outcome: `status --json` and --report-json.
type Report struct {
	SchemaVersion int    `json:"schema_version"`
	Run           string `json:"run"`
	// Kind is what the run did: migrate, or verify (caravan verify: a
	// comparison, whose tables have count and digest verdicts and no
	// loading).
	Kind string `json:"kind"`
	// Status: planning, loading, validating, succeeded, failed,
	// interrupted or abandoned (target.Run.Outcome).
	Status      string     `json:"status"`
	Phase       string     `json:"phase"`
	ExitCode    int        `json:"exit_code"`
	Source      string     `json:"source"`
	Consistency string     `json:"consistency"`
	Error       string     `json:"error,omitempty"`
	StartedAt   time.Time  `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at"`
	Seconds     float64    `json:"elapsed_seconds"`
	EstRows     int64      `json:"est_rows"`
	Rows        int64      `json:"rows"`
	Bytes       int64      `json:"bytes"`
	RowsPerSec  *float64   `json:"rows_per_sec"`
	Tables      []Table    `json:"tables"`
	ForeignKeys []string   `json:"foreign_key_problems"`
	// NotMigrated are the objects the run left behind, as the user
	// accepted before it started.
	NotMigrated []NotMigrated `json:"not_migrated"`
}

// NotMigrated is an object the run did not migrate.
type NotMigrated struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Build reads a run's report from the target; run "" is the newest run.
func Build(ctx context.Context, pool *pgxpool.Pool, run string) (*Report, error) {
	r, err := target.LoadRun(ctx, pool, run)
	if err != nil {
		return nil, err
	}
	progress, err := target.Progress(ctx, pool, r.ID)
	if err != nil {
		return nil, err
	}
	verdicts, err := target.Verdicts(ctx, pool, r.ID)
	if err != nil {
		return nil, err
	}
	return assemble(r, progress, verdicts, time.Now()), nil
}

// assemble builds the report from what the target holds, as of now.
func assemble(r *target.Run, progress []target.TableProgress, verdicts []target.VerdictRow, now time.Time) *Report {
	rep := &Report{SchemaVersion: SchemaVersion, Run: r.ID, Status: r.Outcome(), Source: r.Source, Consistency: r.Consistency,
		Error: r.Error, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, Tables: []Table{}, ForeignKeys: []string{}, Kind: KindMigrate}
	if k, ok := r.Config["kind"].(string); ok && k != "" {
		rep.Kind = k
	}
	end := now
	if r.FinishedAt != nil {
		end = *r.FinishedAt
	}
	rep.Seconds = end.Sub(r.StartedAt).Seconds()
	rep.NotMigrated = []NotMigrated{}
	if r.Model != nil {
		for _, u := range r.Model.Unmigrated {
			rep.NotMigrated = append(rep.NotMigrated, NotMigrated{Kind: u.Kind, Name: u.Name, Reason: u.Reason})
		}
	}
	byTable := map[string][]target.VerdictRow{}
	for _, v := range verdicts {
		byTable[v.Table] = append(byTable[v.Table], v)
	}
	want := levels(r)
	var batches int64
	for _, p := range progress {
		// A run that ended stops every clock at its end.
		line := tableLine(p, byTable[p.Table], want, end)
		for _, v := range byTable[p.Table] {
			if v.Level == "fk" && !v.OK {
				rep.ForeignKeys = append(rep.ForeignKeys, p.Table+": "+v.Detail)
			}
		}
		rep.EstRows += max(p.EstRows, p.Rows)
		rep.Rows += p.Rows
		rep.Bytes += p.Bytes
		batches += p.Batches
		rep.Tables = append(rep.Tables, line)
	}
	rep.RowsPerSec = Rate(rep.Rows, batches, rep.Seconds)
	rep.Phase = runPhase(rep)
	rep.ExitCode = exitCode(rep)
	return rep
}

// tableLine judges one table from its progress and its verdicts. A table
// is failed only when something did fail: a table not judged yet is
// validating, never failed.
func tableLine(p target.TableProgress, vs []target.VerdictRow, want map[string]bool, now time.Time) Table {
	line := Table{Table: p.Table, Status: p.Status, Chunks: p.Chunks, ChunksLoaded: p.ChunksLoaded, ChunksFailed: p.ChunksFailed,
		EstRows: p.EstRows, Rows: p.Rows, Bytes: p.Bytes, SourceRows: p.SourceRows, Validated: len(want) > 0}
	var problems []string
	judged := map[string]bool{}
	for _, v := range vs {
		if v.Level == "fk" {
			continue
		}
		judged[v.Level] = true
		if v.Level == "count" || (v.Level == "digest" && line.TargetRows == nil) {
			line.TargetRows = v.TargetRows
		}
		if v.Level == "count" && p.SourceRows == 0 && v.SourceRows != nil {
			// Nothing was read through chunks (a verify run, or an empty
			// table): the source rows are the ones the verdict counted.
			line.SourceRows = *v.SourceRows
		}
		if v.Level == "digest" {
			ok := v.OK
			line.DigestOK = &ok
		}
		if !v.OK {
			problems = append(problems, v.Level+": "+v.Detail)
		}
	}
	for _, v := range vs {
		if v.Level == "fk" && !v.OK {
			problems = append(problems, "fk: "+v.Detail)
		}
	}
	complete := judged["load"] || judged["table"] // judged at once: the load failed, or it could not be judged
	if !complete {
		complete = true
		for l := range want {
			complete = complete && judged[l]
		}
	}
	switch {
	case len(problems) > 0:
		line.Phase, line.Detail = PhaseFailed, strings.Join(problems, "; ")
	case p.Status == target.StatusFailed:
		line.Phase, line.Detail = PhaseFailed, p.Error
	case p.Status == target.StatusPending && p.Rows == 0:
		line.Phase = PhasePending
	case p.Status == target.StatusPending:
		line.Phase = PhaseLoading
	case p.Status == target.StatusLoaded:
		line.Phase = PhaseFinalizing
	case len(want) > 0 && !complete:
		line.Phase = PhaseValidating
	default:
		line.Phase = PhaseOK
	}
	line.OK = line.Phase == PhaseOK
	line.Seconds = tableSeconds(p, now)
	line.RowsPerSec = Rate(p.Rows, p.Batches, line.Seconds)
	if total := max(p.EstRows, p.Rows); line.RowsPerSec != nil && total > p.Rows && line.Phase == PhaseLoading {
		eta := float64(total-p.Rows) / *line.RowsPerSec
		line.ETASeconds = &eta
	}
	return line
}

// tableSeconds is a table's own copy window: from its first chunk's read
// to its last batch's commit, or to now while chunks are outstanding. Time
// a table spent queued behind other tables does not count.
func tableSeconds(p target.TableProgress, now time.Time) float64 {
	if p.FirstRead == nil {
		return 0
	}
	end := now
	if p.Chunks > 0 && p.ChunksLoaded+p.ChunksFailed >= p.Chunks {
		end = *p.FirstRead
		if p.LastLoad != nil && p.LastLoad.After(end) {
			end = *p.LastLoad
		}
	}
	return max(end.Sub(*p.FirstRead).Seconds(), 0)
}

// Rate is rows per second over a window of seconds in which batches
// batches were committed: the one definition the live view, status, the
// JSON and the HTML report share. It is nil until more than one batch is
// in: a single batch's time is latency, not throughput (one row in a tenth
// of a second is not "10 rows/s"); and for a window under minRateWindow.
func Rate(rows, batches int64, seconds float64) *float64 {
	if batches < 2 || seconds < minRateWindow.Seconds() {
		return nil
	}
	r := float64(rows) / seconds
	return &r
}

const minRateWindow = 100 * time.Millisecond

// runPhase is the furthest-behind phase of any table: a run is loading
// while any table loads, and validating while any verdict is outstanding.
func runPhase(rep *Report) string {
	if len(rep.Tables) == 0 {
		if rep.Status == target.RunPlanning {
			return PhasePlanning
		}
		return PhaseDone
	}
	order := []string{PhasePending, PhaseLoading, PhaseFinalizing, PhaseValidating}
	rank := map[string]int{}
	for i, ph := range order {
		rank[ph] = i + 1
	}
	best := 0
	for _, t := range rep.Tables {
		if r := rank[t.Phase]; r > 0 && (best == 0 || r < best) {
			best = r
		}
	}
	switch {
	case best == 1: // some table has not started: the run is loading
		return PhaseLoading
	case best > 0:
		return order[best-1]
	case rep.Status == target.RunValidating:
		return PhaseValidating // the foreign keys' verdict
	}
	return PhaseDone
}

// exitCode is the process exit code that reports this run's outcome.
func exitCode(rep *Report) int {
	switch rep.Status {
	case target.RunSucceeded:
		return ExitOK
	case target.RunFailed:
		if len(rep.Tables) == 0 {
			return ExitRefused // setup is all or nothing: no table was recorded
		}
		return ExitFailed
	case target.RunInterrupted, target.RunAbandoned:
		return ExitInterrupted
	}
	return ExitRunning
}

// Over says whether the run has ended: nothing will change it until a
// `caravan resume`.
func (r *Report) Over() bool { return !target.Live(r.Status) }

// Header is the run's one-line summary: id, status, phase, elapsed, rows.
func (r *Report) Header() string {
	var b strings.Builder
	fmt.Fprintf(&b, "run %s  %s", r.Run, r.Status)
	if r.Phase != PhaseDone || r.Status != target.RunSucceeded {
		fmt.Fprintf(&b, "  phase %s", r.Phase)
	}
	fmt.Fprintf(&b, "  elapsed %s  rows %d/%d  %.1f MB  %s rows/s", elapsed(r.Seconds),
		r.Rows, r.EstRows, float64(r.Bytes)/1e6, rateText(r.RowsPerSec))
	return b.String()
}

// WriteText prints the report as an aligned table.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "table\tsource rows\ttarget rows\tdigest ok\tseconds\trows/s\tverdict\t")
	for _, t := range r.Tables {
		target := "-"
		if t.TargetRows != nil {
			target = fmt.Sprint(*t.TargetRows)
		}
		digest := "-"
		if t.DigestOK != nil {
			digest = map[bool]string{true: "yes", false: "NO"}[*t.DigestOK]
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%.2f\t%s\t%s\t\n", t.Table, t.SourceRows, target, digest, t.Seconds, rateText(t.RowsPerSec), verdict(t))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range r.Tables {
		if t.Phase == PhaseFailed && t.Detail != "" {
			fmt.Fprintf(w, "\n%s: %s", t.Table, t.Detail)
		}
	}
	fmt.Fprintf(w, "\nrun %s %s in %.1fs", r.Run, r.Status, r.Seconds)
	if r.Error != "" {
		fmt.Fprintf(w, ": %s", r.Error)
	}
	fmt.Fprintln(w)
	return r.writeNotMigrated(w)
}

// writeNotMigrated ends the report with what the run left behind.
func (r *Report) writeNotMigrated(w io.Writer) error {
	if len(r.NotMigrated) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nnot migrated (%d, accepted before the run):\n", len(r.NotMigrated))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  kind\tobject\treason")
	for _, n := range r.NotMigrated {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", n.Kind, n.Name, n.Reason)
	}
	return tw.Flush()
}

// verdict is a table's last column: FAILED only for what did fail.
func verdict(t Table) string {
	switch {
	case t.Phase == PhaseFailed:
		return "FAILED"
	case t.Phase == PhaseOK && !t.Validated:
		return "not validated"
	}
	return t.Phase
}

// WriteJSON writes the report as one indented JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteJSONLine writes the report as one line of JSON (JSON Lines).
func (r *Report) WriteJSONLine(w io.Writer) error {
	return json.NewEncoder(w).Encode(r)
}

// levels lists the per-table validation levels the run asked for (none for
// --validate none).
func levels(r *target.Run) map[string]bool {
	out := map[string]bool{}
	ls, _ := r.Config["validation"].([]any)
	for _, l := range ls {
		switch l {
		case "none":
			return map[string]bool{}
		case "count", "keys", "digest":
			out[l.(string)] = true
		}
	}
	return out
}

// elapsed prints seconds to a tenth under a minute, to the second above.
func elapsed(seconds float64) string {
	d := time.Duration(seconds * float64(time.Second))
	if d < time.Minute {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func rateText(r *float64) string {
	if r == nil {
		return "-" // not measurable (yet)
	}
	return fmt.Sprintf("%.0f", *r)
}
