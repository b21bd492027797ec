// Package report turns a run's state in the target into what a person or a
// script reads: the per-table verdict table printed at the end of a run,
// and the same as JSON.
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

// Table is one table's line of the report.
type Table struct {
	Table      string `json:"table"`
	Status     string `json:"status"`
	SourceRows int64  `json:"source_rows"`
	TargetRows *int64 `json:"target_rows"`
	DigestOK   *bool  `json:"digest_ok"`
	OK         bool   `json:"ok"`
	// Validated is false when the run asked for no validation (--validate
	// none): OK then says only that the table loaded.
	Validated  bool    `json:"validated"`
	Seconds    float64 `json:"seconds"`
	RowsPerSec float64 `json:"rows_per_sec"`
	Detail     string  `json:"detail,omitempty"`
}

// Report is a run's outcome.
type Report struct {
	Run         string   `json:"run"`
	Status      string   `json:"status"`
	Source      string   `json:"source"`
	Consistency string   `json:"consistency"`
	Error       string   `json:"error,omitempty"`
	Seconds     float64  `json:"seconds"`
	Tables      []Table  `json:"tables"`
	ForeignKeys []string `json:"foreign_key_problems,omitempty"`
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

// Build reads a run's report from the target.
func Build(ctx context.Context, pool *pgxpool.Pool, run string) (*Report, error) {
	r, err := target.LoadRun(ctx, pool, run)
	if err != nil {
		return nil, err
	}
	rep := &Report{Run: r.ID, Status: r.Status, Source: r.Source, Consistency: r.Consistency, Error: r.Error}
	end := time.Now()
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

	timing, err := tableTimes(ctx, pool, r.ID)
	if err != nil {
		return nil, err
	}
	tables, err := target.Tables(ctx, pool, r.ID)
	if err != nil {
		return nil, err
	}
	verdicts, err := target.Verdicts(ctx, pool, r.ID)
	if err != nil {
		return nil, err
	}
	byTable := map[string][]target.VerdictRow{}
	for _, v := range verdicts {
		byTable[v.Table] = append(byTable[v.Table], v)
	}
	for _, t := range tables {
		line := Table{Table: t.Table, Status: t.Status, OK: t.Status != target.StatusFailed, Validated: validating(r), Detail: t.Error}
		line.SourceRows = timing[t.Table].rows
		line.Seconds = timing[t.Table].seconds
		if line.Seconds > 0 {
			line.RowsPerSec = float64(line.SourceRows) / line.Seconds
		}
		vs := byTable[t.Table]
		if len(vs) == 0 && validating(r) {
			line.OK = false // not judged (yet)
		}
		var problems []string
		for _, v := range vs {
			if v.Level == "count" || (v.Level == "digest" && line.TargetRows == nil) {
				line.TargetRows = v.TargetRows
			}
			if v.Level == "digest" {
				ok := v.OK
				line.DigestOK = &ok
			}
			if !v.OK {
				line.OK = false
				if v.Level == "fk" {
					rep.ForeignKeys = append(rep.ForeignKeys, t.Table+": "+v.Detail)
				}
				problems = append(problems, v.Level+": "+v.Detail)
			}
		}
		if len(problems) > 0 {
			line.Detail = strings.Join(problems, "; ")
		}
		rep.Tables = append(rep.Tables, line)
	}
	return rep, nil
}

type timing struct {
	rows    int64
	seconds float64
}

// tableTimes measures each table from its first chunk's read to its last
// chunk's load: the table's own copy time in a run that moves many tables
// at once (time spent queued behind other tables does not count).
func tableTimes(ctx context.Context, pool *pgxpool.Pool, run string) (map[string]timing, error) {
	rows, err := pool.Query(ctx, `SELECT table_id, coalesce(sum(rows), 0)::bigint,
			coalesce(extract(epoch FROM max(loaded_at) - min(coalesce(read_at, published_at))), 0)::float8
		FROM caravan.chunks WHERE run_id = $1 GROUP BY table_id`, run)
	if err != nil {
		return nil, fmt.Errorf("table timings: %w", err)
	}
	defer rows.Close()
	out := map[string]timing{}
	for rows.Next() {
		var id string
		var t timing
		if err := rows.Scan(&id, &t.rows, &t.seconds); err != nil {
			return nil, fmt.Errorf("table timings: %w", err)
		}
		out[id] = t
	}
	return out, rows.Err()
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
		verdict := "ok"
		switch {
		case !t.OK:
			verdict = "FAILED"
		case !t.Validated:
			verdict = "not validated"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%.2f\t%.0f\t%s\t\n", t.Table, t.SourceRows, target, digest, t.Seconds, t.RowsPerSec, verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range r.Tables {
		if !t.OK && t.Detail != "" {
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

// WriteJSON writes the report as JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// validating says whether the run asked for any validation level.
func validating(r *target.Run) bool {
	levels, _ := r.Config["validation"].([]any)
	for _, l := range levels {
		if l == "none" {
			return false
		}
	}
	return len(levels) > 0
}
