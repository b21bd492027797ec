package target

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// AuditEntry is one row of caravan.audit: one step of a run.
type AuditEntry struct {
	Run       string
	Table     string // "" for run-wide steps
	Operation string // plan, create_table, chunk_extracted, chunk_loaded, finalize_*, validate_*
	Rows      *int64
	Status    string // ok, failed
	Error     string
	Started   time.Time
	Completed time.Time
	Metadata  map[string]any
}

// Audit appends an entry. Callers pass only redacted text: the audit trail
// is read by people who must not see credentials.
func Audit(ctx context.Context, pool *pgxpool.Pool, e AuditEntry) error {
	if e.Metadata == nil {
		e.Metadata = map[string]any{}
	}
	meta, err := json.Marshal(e.Metadata)
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.Operation, err)
	}
	if e.Completed.IsZero() {
		e.Completed = time.Now()
	}
	if e.Started.IsZero() {
		e.Started = e.Completed
	}
	_, err = pool.Exec(ctx, `INSERT INTO caravan.audit (run_id, table_name, operation, rows, status, error, started_at, completed_at, metadata)
		VALUES ($1, nullif($2, ''), $3, $4, $5, nullif($6, ''), $7, $8, $9)`,
		e.Run, e.Table, e.Operation, e.Rows, e.Status, e.Error, e.Started, e.Completed, meta)
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.Operation, err)
	}
	return nil
}

// VerdictRow is one row of caravan.verdicts.
type VerdictRow struct {
	Run        string
	Table      string
	Level      string // count, keys, digest, fk
	OK         bool
	SourceRows *int64
	TargetRows *int64
	Detail     string
	Seconds    float64
}

// SaveVerdict records (or replaces) a verdict.
func SaveVerdict(ctx context.Context, pool *pgxpool.Pool, v VerdictRow) error {
	_, err := pool.Exec(ctx, `INSERT INTO caravan.verdicts (run_id, table_id, level, ok, source_rows, target_rows, detail, seconds)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (run_id, table_id, level) DO UPDATE SET ok = excluded.ok, source_rows = excluded.source_rows,
			target_rows = excluded.target_rows, detail = excluded.detail, seconds = excluded.seconds, checked_at = now()`,
		v.Run, v.Table, v.Level, v.OK, v.SourceRows, v.TargetRows, v.Detail, v.Seconds)
	if err != nil {
		return fmt.Errorf("verdict %s %s: %w", v.Table, v.Level, err)
	}
	return nil
}

// DeleteVerdicts removes a table's verdicts (table "*" with level "fk" is
// the run's foreign-key verdict): a table loaded again is judged again, and
// a stale verdict must not outlive the data it judged.
func DeleteVerdicts(ctx context.Context, pool *pgxpool.Pool, run, table string) error {
	if _, err := pool.Exec(ctx, `DELETE FROM caravan.verdicts WHERE run_id = $1 AND table_id = $2`, run, table); err != nil {
		return fmt.Errorf("forget verdicts of %s: %w", table, err)
	}
	return nil
}

// Verdicts lists a run's verdicts.
func Verdicts(ctx context.Context, pool *pgxpool.Pool, run string) ([]VerdictRow, error) {
	rows, err := pool.Query(ctx, `SELECT run_id::text, table_id, level, ok, source_rows, target_rows, detail, seconds
		FROM caravan.verdicts WHERE run_id = $1 ORDER BY table_id, level`, run)
	if err != nil {
		return nil, fmt.Errorf("verdicts of run %s: %w", run, err)
	}
	defer rows.Close()
	var out []VerdictRow
	for rows.Next() {
		var v VerdictRow
		if err := rows.Scan(&v.Run, &v.Table, &v.Level, &v.OK, &v.SourceRows, &v.TargetRows, &v.Detail, &v.Seconds); err != nil {
			return nil, fmt.Errorf("verdicts of run %s: %w", run, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
