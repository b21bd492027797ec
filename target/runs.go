package target

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caravan-db/caravan/internal/every"
	"github.com/caravan-db/caravan/schema"
)

// Run statuses. Planning, loading and validating are live: a coordinator
// works on the run and heartbeats (heartbeat_at) while it does.
// Succeeded, failed and interrupted are recorded when the run ends.
// Abandoned is never stored: it is what a live status becomes once its
// coordinator has stopped heartbeating (it was killed, or lost the target).
const (
	RunPlanning    = "planning"
	RunLoading     = "loading"
	RunValidating  = "validating"
	RunSucceeded   = "succeeded"
	RunFailed      = "failed"
	RunInterrupted = "interrupted"
	RunAbandoned   = "abandoned"
)

// HeartbeatEvery is how often a coordinator stamps its run's heartbeat;
// AbandonedAfter is how old a live run's heartbeat may grow before the run
// counts as abandoned (several missed beats, so a slow target is not
// mistaken for a dead coordinator).
const (
	HeartbeatEvery = 5 * time.Second
	AbandonedAfter = 30 * time.Second
)

// liveStatuses are the statuses a coordinator is still working on; the
// SQL below takes them as a parameter, so this is their one definition.
var liveStatuses = []string{RunPlanning, RunLoading, RunValidating}

// Live says whether a status is one a coordinator is still working on.
func Live(status string) bool {
	for _, s := range liveStatuses {
		if s == status {
			return true
		}
	}
	return false
}

// Table and chunk statuses.
const (
	StatusPending   = "pending"
	StatusLoaded    = "loaded"
	StatusFinalized = "finalized"
	StatusFailed    = "failed"
)

// Run is one row of caravan.runs.
type Run struct {
	ID          string
	Status      string
	SourceKind  string
	Source      string // redacted URL
	Snapshot    string
	Consistency string
	Config      map[string]any
	Model       *schema.Database
	Error       string
	StartedAt   time.Time
	FinishedAt  *time.Time
	// Abandoned is set when the status is live but the coordinator's
	// heartbeat is older than AbandonedAfter (measured by the target's
	// clock, so the reader's clock does not matter).
	Abandoned bool
}

// Outcome is the status a person should be told: Status, or abandoned for
// a live run nobody works on any more.
func (r *Run) Outcome() string {
	if r.Abandoned {
		return RunAbandoned
	}
	return r.Status
}

// CreateRun records a new run with its schema model, which the validator and
// `caravan resume` read back instead of asking the source again. A run
// planned again (resumed after it was refused at setup) replaces its
// record.
func CreateRun(ctx context.Context, pool *pgxpool.Pool, r *Run) error {
	model, err := json.Marshal(r.Model)
	if err != nil {
		return fmt.Errorf("record run %s: %w", r.ID, err)
	}
	cfg, err := json.Marshal(r.Config)
	if err != nil {
		return fmt.Errorf("record run %s: %w", r.ID, err)
	}
	_, err = pool.Exec(ctx, `INSERT INTO caravan.runs (run_id, status, source_kind, source, snapshot, consistency, config, model, heartbeat_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
		ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, source_kind = excluded.source_kind, source = excluded.source,
			snapshot = excluded.snapshot, consistency = excluded.consistency, config = excluded.config, model = excluded.model,
			error = NULL, finished_at = NULL, heartbeat_at = now()`, r.ID, r.Status, r.SourceKind, r.Source, r.Snapshot, r.Consistency, cfg, model)
	if err != nil {
		return fmt.Errorf("record run %s: %w", r.ID, err)
	}
	return nil
}

// SetRunModel records a run's model again, in the caller's transaction:
// setup learns what the target refused (a view) only once it tries, and
// the report and resume read the model.
func SetRunModel(ctx context.Context, tx pgx.Tx, run string, db *schema.Database) error {
	model, err := json.Marshal(db)
	if err != nil {
		return fmt.Errorf("record run %s model: %w", run, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE caravan.runs SET model = $2 WHERE run_id = $1`, run, model); err != nil {
		return fmt.Errorf("record run %s model: %w", run, err)
	}
	return nil
}

// ErrNoRun is returned when a run id is not in caravan.runs.
var ErrNoRun = errors.New("no such run")

// ErrNoState is returned when a database holds no caravan state at all:
// no run ever used it as its target.
var ErrNoState = errors.New("no caravan schema in this database: no run has used it as its target (is this the run's --target-url?)")

// noState says whether err is PostgreSQL saying caravan's tables are not
// there (undefined table or schema).
func noState(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000")
}

// LoadRun reads a run; run "" means the newest.
func LoadRun(ctx context.Context, pool *pgxpool.Pool, run string) (*Run, error) {
	q := `SELECT run_id::text, status, source_kind, source, snapshot, consistency, config, model, coalesce(error, ''), started_at, finished_at,
			status = ANY($3) AND coalesce(heartbeat_at, started_at) < now() - make_interval(secs => $2)
		FROM caravan.runs WHERE ($1 = '' OR run_id::text = $1) ORDER BY started_at DESC LIMIT 1`
	var r Run
	var cfg, model []byte
	err := pool.QueryRow(ctx, q, run, AbandonedAfter.Seconds(), liveStatuses).Scan(&r.ID, &r.Status, &r.SourceKind, &r.Source, &r.Snapshot, &r.Consistency, &cfg, &model, &r.Error,
		&r.StartedAt, &r.FinishedAt, &r.Abandoned)
	if errors.Is(err, pgx.ErrNoRows) {
		if run == "" {
			return nil, fmt.Errorf("no run recorded in this database: %w", ErrNoRun)
		}
		return nil, fmt.Errorf("run %s: %w", run, ErrNoRun)
	}
	if noState(err) {
		return nil, ErrNoState
	}
	if err != nil {
		return nil, fmt.Errorf("read run %q: %w", run, err)
	}
	if err := json.Unmarshal(cfg, &r.Config); err != nil {
		return nil, fmt.Errorf("read run %s config: %w", r.ID, err)
	}
	if len(model) > 0 {
		r.Model = &schema.Database{}
		if err := json.Unmarshal(model, r.Model); err != nil {
			return nil, fmt.Errorf("read run %s model: %w", r.ID, err)
		}
	}
	return &r, nil
}

// SetRunStatus updates a run's status; a final status stamps finished_at,
// a live one the heartbeat (the coordinator setting it is alive).
func SetRunStatus(ctx context.Context, pool *pgxpool.Pool, run, status, errText string) error {
	_, err := pool.Exec(ctx, `UPDATE caravan.runs SET status = $2, error = nullif($3, ''),
		finished_at = CASE WHEN $2 = ANY($4) THEN NULL ELSE now() END,
		heartbeat_at = CASE WHEN $2 = ANY($4) THEN now() ELSE heartbeat_at END
		WHERE run_id = $1`, run, status, errText, liveStatuses)
	if err != nil {
		return fmt.Errorf("run %s status %s: %w", run, status, err)
	}
	return nil
}

// Heartbeat stamps a live run's heartbeat: its coordinator is working.
func Heartbeat(ctx context.Context, pool *pgxpool.Pool, run string) error {
	_, err := pool.Exec(ctx, `UPDATE caravan.runs SET heartbeat_at = now() WHERE run_id = $1`, run)
	if err != nil {
		return fmt.Errorf("run %s heartbeat: %w", run, err)
	}
	return nil
}

// KeepAlive stamps the run's heartbeat every HeartbeatEvery until the
// returned stop is called, so `caravan status` can tell a run being worked
// on from one whose process died (abandoned). A beat that fails (the target
// away) is only logged: the next one tries again, and a target away for
// long enough makes the run look abandoned, which it then is.
func KeepAlive(ctx context.Context, pool *pgxpool.Pool, run string, log *slog.Logger) (stop func()) {
	return every.Do(context.WithoutCancel(ctx), HeartbeatEvery, true, func(ctx context.Context) {
		if err := Heartbeat(ctx, pool, run); err != nil && ctx.Err() == nil {
			log.DebugContext(ctx, "heartbeat", "err", err)
		}
	})
}

// InterruptRun marks a live run interrupted (its process was told to
// stop); a run that already ended keeps its outcome. It says whether the
// run was marked.
func InterruptRun(ctx context.Context, pool *pgxpool.Pool, run string) (bool, error) {
	tag, err := pool.Exec(ctx, `UPDATE caravan.runs SET status = 'interrupted', finished_at = now()
		WHERE run_id = $1 AND status = ANY($2)`, run, liveStatuses)
	if err != nil {
		return false, fmt.Errorf("run %s: mark interrupted: %w", run, err)
	}
	return tag.RowsAffected() > 0, nil
}

// SetRunSnapshot records the snapshot a resumed run reads in.
func SetRunSnapshot(ctx context.Context, pool *pgxpool.Pool, run, snapshot, consistency string) error {
	_, err := pool.Exec(ctx, `UPDATE caravan.runs SET snapshot = $2, consistency = $3 WHERE run_id = $1`, run, snapshot, consistency)
	if err != nil {
		return fmt.Errorf("run %s snapshot: %w", run, err)
	}
	return nil
}

// SetRunSourceOptions records the source read options a resume was given
// over the recorded ones, so the next resume reads the same way.
func SetRunSourceOptions(ctx context.Context, pool *pgxpool.Pool, run string, opts map[string]string) error {
	_, err := pool.Exec(ctx, `UPDATE caravan.runs SET config = jsonb_set(config, '{source_options}', $2::jsonb) WHERE run_id = $1`, run, opts)
	if err != nil {
		return fmt.Errorf("run %s source options: %w", run, err)
	}
	return nil
}

// TableState is one row of caravan.tables.
type TableState struct {
	Table      string
	SourceName string
	Status     string
	Chunks     int
	EstRows    int64
	Created    bool // caravan created the table (and so owns its DDL)
	Error      string
	// SourceRows is the source's own count of the table (nil until counted,
	// or when it could not be); SourceCount says how it was taken.
	SourceRows  *int64
	SourceCount string
}

// Ways a source count is taken (TableState.SourceCount); anything else
// says why there is no count.
const (
	CountSnapshot = "snapshot" // in the run's point in time
	CountLive     = "live"     // of the live table, after the load
)

// SetSourceCount records the source's own row count of a table.
func SetSourceCount(ctx context.Context, pool *pgxpool.Pool, run, table string, rows *int64, how string) error {
	_, err := pool.Exec(ctx, `UPDATE caravan.tables SET source_rows = $3, source_count = $4 WHERE run_id = $1 AND table_id = $2`,
		run, table, rows, how)
	if err != nil {
		return fmt.Errorf("table %s source count: %w", table, err)
	}
	return nil
}

// AddTable records a table of a run.
func AddTable(ctx context.Context, pool *pgxpool.Pool, run string, t TableState) error {
	_, err := pool.Exec(ctx, `INSERT INTO caravan.tables (run_id, table_id, source_name, status, chunks, est_rows, created)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (run_id, table_id) DO UPDATE SET status = excluded.status, chunks = excluded.chunks, est_rows = excluded.est_rows`,
		run, t.Table, t.SourceName, t.Status, t.Chunks, t.EstRows, t.Created)
	if err != nil {
		return fmt.Errorf("record table %s: %w", t.Table, err)
	}
	return nil
}

// SetTableStatus updates a table's status and stamps its milestones.
func SetTableStatus(ctx context.Context, pool *pgxpool.Pool, run, table, status, errText string) error {
	_, err := pool.Exec(ctx, `UPDATE caravan.tables SET status = $3, error = nullif($4, ''),
		loaded_at = CASE WHEN $3 = 'loaded' THEN now() ELSE loaded_at END,
		finalized_at = CASE WHEN $3 = 'finalized' THEN now() ELSE finalized_at END
		WHERE run_id = $1 AND table_id = $2`, run, table, status, errText)
	if err != nil {
		return fmt.Errorf("table %s status %s: %w", table, status, err)
	}
	return nil
}

// TableOf reads one table of a run (nil when the run has no such table).
func TableOf(ctx context.Context, pool *pgxpool.Pool, run, table string) (*TableState, error) {
	all, err := Tables(ctx, pool, run)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].Table == table {
			return &all[i], nil
		}
	}
	return nil, nil
}

// Tables lists a run's tables.
func Tables(ctx context.Context, pool *pgxpool.Pool, run string) ([]TableState, error) {
	rows, err := pool.Query(ctx, `SELECT table_id, source_name, status, chunks, est_rows, created, coalesce(error, ''),
			source_rows, coalesce(source_count, '')
		FROM caravan.tables WHERE run_id = $1 ORDER BY table_id`, run)
	if err != nil {
		return nil, fmt.Errorf("list tables of run %s: %w", run, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (TableState, error) {
		var t TableState
		err := r.Scan(&t.Table, &t.SourceName, &t.Status, &t.Chunks, &t.EstRows, &t.Created, &t.Error, &t.SourceRows, &t.SourceCount)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("list tables of run %s: %w", run, err)
	}
	return out, nil
}
