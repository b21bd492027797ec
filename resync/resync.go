// Package resync is `caravan sync`: after a finished migrate run it brings
// the target up to the source's current state. Every chunk of the run's
// recorded plan is read again in one new snapshot and its digest and count
// compared with those recorded when it was loaded (caravan.chunks); a
// chunk that changed is compared with the target row by row, by key, and
// only the rows that differ are deleted, updated or inserted, in one
// transaction that also records the chunk's new digest
// (target.ReplaceChunks). Tables
// whose chunks the target cannot re-select (no key, other key orders) are
// compared whole and replaced whole. The tables it touched are judged
// again by the validator's checks, in this process.
package resync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/caravan-db/caravan/coordinator"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/source"
	"github.com/caravan-db/caravan/target"
	"github.com/caravan-db/caravan/validator"
	"github.com/caravan-db/caravan/verify"
)

// Config shapes a sync.
type Config struct {
	Run string
	// Workers is how many chunks are compared (and re-copied) at once.
	Workers int
	// SourceOptions given to the sync override the run's recorded ones.
	SourceOptions map[string]string
	Log           *slog.Logger
}

// Table is what a sync did to one table.
type Table struct {
	Table   string
	Chunks  int  // in the run's plan
	Changed int  // chunks that differed and were copied again
	Whole   bool // compared and replaced whole
	Rows    int64
	Judged  bool
	OK      bool   // the verdicts, when judged
	Detail  string // why not OK
}

// Result is a sync's outcome.
type Result struct {
	Tables []*Table
	// Consistency says how the source was read (its snapshot's note).
	Consistency string
}

// OK says whether every judged table passed.
func (r *Result) OK() bool {
	for _, t := range r.Tables {
		if t.Judged && !t.OK {
			return false
		}
	}
	return true
}

// Copied is the number of chunks copied again.
func (r *Result) Copied() int {
	n := 0
	for _, t := range r.Tables {
		n += t.Changed
	}
	return n
}

// job compares one chunk of a keyed table, or a whole table.
type job struct {
	out    *Table
	t      *schema.Table
	chunks []target.ChunkState // one, or the whole table's
	whole  bool
}

type syncer struct {
	src  source.Source
	pool *pgxpool.Pool
	cfg  Config
	run  *target.Run
	opts map[string]string
	snap string

	mu      sync.Mutex
	touched map[string]bool // tables whose verdicts were dropped
}

// Run syncs a finished run's target with the source.
func Run(ctx context.Context, src source.Source, pool *pgxpool.Pool, cfg Config) (*Result, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	run, err := finishedRun(ctx, pool, cfg.Run)
	if err != nil {
		return nil, err
	}
	opts, err := coordinator.RecordedOptions(run)
	if err != nil {
		return nil, fmt.Errorf("run %s options: %w", run.ID, err)
	}
	for k, v := range cfg.SourceOptions {
		if opts.SourceOptions == nil {
			opts.SourceOptions = map[string]string{}
		}
		opts.SourceOptions[k] = v
	}
	snap, err := src.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("source snapshot: %w", err)
	}
	if snap.Release != nil {
		defer func() { _ = snap.Release(context.WithoutCancel(ctx)) }()
	}
	// After the snapshot: a change of schema committed before it, which
	// the chunks read in it would see, is seen here too.
	if err := checkDrift(ctx, src, run, opts); err != nil {
		return nil, err
	}
	s := &syncer{src: src, pool: pool, cfg: cfg, run: run, opts: opts.SourceOptions, snap: snap.ID, touched: map[string]bool{}}
	res := &Result{Consistency: snap.Note}
	started := time.Now()
	_ = target.Audit(ctx, pool, target.AuditEntry{Run: run.ID, Operation: "sync", Status: "started", Metadata: map[string]any{"consistency": snap.Note}})
	jobs, err := s.jobs(ctx, res)
	if err != nil {
		return nil, err
	}
	cfg.Log.InfoContext(ctx, "sync: comparing the run's chunks with the source", "run", run.ID, "tables", len(res.Tables), "checks", len(jobs),
		"consistency", snap.Note)
	if err := s.compareAll(ctx, jobs); err != nil {
		return nil, err
	}
	if err := s.resetSequences(ctx); err != nil {
		return nil, err
	}
	if err := s.judge(ctx, res); err != nil {
		return nil, err
	}
	status := target.RunSucceeded
	if !res.OK() {
		status = target.RunFailed
	}
	if err := target.SetRunStatus(ctx, pool, run.ID, status, ""); err != nil {
		return nil, err
	}
	copied := int64(res.Copied())
	_ = target.Audit(ctx, pool, target.AuditEntry{Run: run.ID, Operation: "sync", Status: "ok", Rows: &copied, Started: started,
		Metadata: map[string]any{"chunks_copied": copied, "verdicts_ok": res.OK()}})
	return res, nil
}

// finishedRun loads a migrate run whose tables are all finalized: sync
// compares with what a run loaded, not with a half-loaded table.
func finishedRun(ctx context.Context, pool *pgxpool.Pool, id string) (*target.Run, error) {
	run, err := target.LoadRun(ctx, pool, id)
	if err != nil {
		return nil, err
	}
	if kind, _ := run.Config["kind"].(string); kind != "" && kind != "migrate" {
		return nil, source.Permanent(fmt.Errorf("run %s is a %s run, not a migration: there is nothing to sync", run.ID, kind))
	}
	if run.Model == nil {
		return nil, source.Permanent(fmt.Errorf("run %s stopped before its plan was recorded: nothing to sync", run.ID))
	}
	if slices.Contains([]string{target.RunPlanning, target.RunLoading, target.RunValidating}, run.Status) && !run.Abandoned {
		return nil, source.Permanent(fmt.Errorf("run %s is still %s: sync it once it has finished", run.ID, run.Status))
	}
	states, err := target.Tables(ctx, pool, run.ID)
	if err != nil {
		return nil, err
	}
	if len(states) < len(run.Model.Tables) {
		return nil, source.Permanent(fmt.Errorf("run %s recorded %d of its %d tables: it never loaded; start a new run with caravan migrate",
			run.ID, len(states), len(run.Model.Tables)))
	}
	for _, st := range states {
		if st.Status != target.StatusFinalized {
			return nil, source.Permanent(fmt.Errorf("run %s: table %s is %s, not loaded: finish the run first (caravan resume %s)",
				run.ID, st.Table, st.Status, run.ID))
		}
	}
	return run, nil
}

// checkDrift discovers the source again, with the run's filter and names,
// and refuses to go on when its tables or columns are not those the run
// loaded: a chunk read with the old columns would copy a wrong row.
func checkDrift(ctx context.Context, src source.Source, run *target.Run, opts coordinator.Options) error {
	now, err := src.Discover(ctx, opts.Filter)
	if err != nil {
		return fmt.Errorf("sync: read the source's catalog: %w", err)
	}
	if err := coordinator.NamePolicy(src, opts).Apply(now); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	drift := Drift(run.Model, now)
	if len(drift) == 0 {
		return nil
	}
	return source.Permanent(fmt.Errorf("sync: the source's schema changed since run %s, nothing was copied: %s; "+
		"migrate the changed tables again (caravan migrate) or undo the change", run.ID, strings.Join(drift, "; ")))
}

// Drift lists the differences between the tables a run loaded and those
// the source has now: tables new or gone, columns added, dropped or of
// another type, another primary key.
func Drift(was, now *schema.Database) []string {
	var out []string
	for _, t := range was.Tables {
		n := now.Table(t.Source)
		if n == nil {
			out = append(out, fmt.Sprintf("table %s is gone from the source", t.Source))
			continue
		}
		for _, c := range t.Columns {
			nc := n.Column(c.Name)
			switch {
			case nc == nil:
				out = append(out, fmt.Sprintf("table %s: column %s was dropped", t.Source, c.Name))
			case nc.SourceType != c.SourceType || nc.Type != c.Type:
				out = append(out, fmt.Sprintf("table %s: column %s changed type from %s to %s", t.Source, c.Name, c.SourceType, nc.SourceType))
			}
		}
		for _, nc := range n.Columns {
			if t.Column(nc.Name) == nil {
				out = append(out, fmt.Sprintf("table %s: column %s was added (%s)", t.Source, nc.Name, nc.SourceType))
			}
		}
		if !slices.Equal(t.PrimaryKey, n.PrimaryKey) {
			out = append(out, fmt.Sprintf("table %s: primary key changed from (%s) to (%s)", t.Source,
				strings.Join(t.PrimaryKey, ", "), strings.Join(n.PrimaryKey, ", ")))
		}
	}
	for _, n := range now.Tables {
		if was.Table(n.Source) == nil {
			out = append(out, fmt.Sprintf("table %s is new on the source", n.Source))
		}
	}
	return out
}

// jobs lists the checks: a chunk of each table whose chunks the target
// re-selects by key range, the whole of every other table.
func (s *syncer) jobs(ctx context.Context, res *Result) ([]*job, error) {
	var jobs []*job
	for _, t := range s.run.Model.Tables {
		chunks, err := target.Chunks(ctx, s.pool, s.run.ID, t.ID())
		if err != nil {
			return nil, err
		}
		out := &Table{Table: t.ID(), Chunks: len(chunks)}
		res.Tables = append(res.Tables, out)
		if t.Partitioned() || len(chunks) == 0 {
			continue // its rows are its partitions', tables of the run of their own
		}
		if !byChunk(t, chunks) {
			out.Whole = true
			jobs = append(jobs, &job{out: out, t: t, chunks: chunks, whole: true})
			continue
		}
		for _, ch := range chunks {
			jobs = append(jobs, &job{out: out, t: t, chunks: []target.ChunkState{ch}})
		}
	}
	return jobs, nil
}

// byChunk says whether a table's chunks are key ranges PostgreSQL
// re-selects on the target exactly.
func byChunk(t *schema.Table, chunks []target.ChunkState) bool {
	if len(t.PrimaryKey) == 0 || !t.RangeSafe {
		return false
	}
	for _, ch := range chunks {
		if ch.Range != proto.RangeKey {
			return false
		}
	}
	return true
}

// compareAll runs the checks, Workers at a time, saying every 30 s how far
// it is.
func (s *syncer) compareAll(ctx context.Context, jobs []*job) error {
	var done, copied int
	var mu sync.Mutex
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(30 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				mu.Lock()
				s.cfg.Log.InfoContext(ctx, "sync: still comparing", "checked", done, "of", len(jobs), "chunks_copied", copied)
				mu.Unlock()
			}
		}
	}()
	var refused []*job // refused by a foreign key: tried again after the others
	var refusal error
	attempt := func(ctx context.Context, j *job) error {
		changed, rows, err := s.sync(ctx, j)
		mu.Lock()
		defer mu.Unlock()
		if isForeignKeyViolation(err) {
			refused, refusal = append(refused, j), err
			s.cfg.Log.InfoContext(ctx, "sync: a foreign key refused a chunk for now, trying it again after the others", "table", j.t.ID(), "err", err)
			return nil
		}
		if err != nil {
			return err
		}
		done++
		copied += changed
		j.out.Changed += changed
		j.out.Rows += rows
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.Workers)
	for _, j := range jobs {
		g.Go(func() error { return attempt(gctx, j) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// A row removed from a referenced table waits for the referencing rows
	// to go, a row added to a referencing table for its referenced row to
	// come: another pass over what was refused, one at a time, until one
	// makes no progress.
	for len(refused) > 0 {
		again := refused
		refused = nil
		for _, j := range again {
			if err := attempt(ctx, j); err != nil {
				return err
			}
		}
		if len(refused) == len(again) {
			return fmt.Errorf("sync: %d chunks stay refused by foreign keys whatever the order: %w", len(refused), refusal)
		}
	}
	return nil
}

// isForeignKeyViolation says whether err is PostgreSQL refusing a row for
// a foreign key.
func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}

// sync compares one job's chunks with their recorded figures and copies
// them again when any differs. It returns the chunks copied and the
// source's rows in the job.
func (s *syncer) sync(ctx context.Context, j *job) (int, int64, error) {
	now := make([]proto.Digest, len(j.chunks))
	bytes := make([]int64, len(j.chunks))
	// A chunk compared by key range keeps each source row's key and hash as
	// it is read, so that, when it changed, only the rows that differ from
	// the target are copied: 0.1% of rows changed touches most chunks, but
	// few of their rows.
	var keyOf func(line []byte) ([]string, error)
	var rowsByKey map[string]sourceRow
	if !j.whole {
		var err error
		if keyOf, err = verify.KeyReader(j.t); err != nil {
			return 0, 0, err
		}
		rowsByKey = map[string]sourceRow{}
	}
	for i, ch := range j.chunks {
		d, err := s.read(ctx, j.t, ch.Chunk, chunkRange(ch), func(line []byte, h uint64) error {
			bytes[i] += int64(len(line))
			if keyOf == nil {
				return nil
			}
			key, err := keyOf(line)
			if err != nil {
				return err
			}
			rowsByKey[keyID(key)] = sourceRow{key: key, hash: h}
			return nil
		})
		if err != nil {
			return 0, 0, err
		}
		now[i] = d
	}
	var rows int64
	var changed []int
	for i, ch := range j.chunks {
		rows += now[i].Rows
		if now[i].Rows != ch.Rows || now[i].String() != ch.Digest {
			changed = append(changed, ch.Chunk)
		}
	}
	if len(changed) == 0 {
		return 0, rows, nil
	}
	if err := s.touch(ctx, j.t.ID()); err != nil {
		return 0, 0, err
	}
	started := time.Now()
	r := target.Replacement{Run: s.run.ID, Table: j.t.ID(), Target: j.t.Target, Cols: loadCols(j.t), Where: "TRUE"}
	for _, ch := range j.chunks {
		r.Chunks = append(r.Chunks, ch.Chunk)
	}
	for _, k := range j.t.PrimaryKey {
		r.Key = append(r.Key, j.t.TargetColumn(k))
	}
	if j.whole {
		return s.replaceWhole(ctx, j, r, started)
	}
	ch := j.chunks[0]
	// The rows that differ are chosen under the chunk's lock, in the
	// transaction that replaces them, so what the recorded digest says of
	// the rest of the chunk still holds when it commits.
	var differ [][]string    // keys whose rows differ, on either side
	var want map[string]bool // the source rows to copy
	r.Narrow = func(ctx context.Context, tx pgx.Tx) (string, []any, error) {
		differ, want = differ[:0], map[string]bool{}
		seen := make(map[string]bool, len(rowsByKey))
		where, args := target.KeyRange(j.t, ch, true)
		err := target.ReadLinesIn(ctx, tx, j.t.Target, loadCols(j.t), where, args, func(line []byte, h uint64) error {
			key, err := keyOf(line)
			if err != nil {
				return err
			}
			id := keyID(key)
			seen[id] = true
			src, ok := rowsByKey[id]
			switch {
			case !ok:
				differ = append(differ, key) // gone from the source
			case src.hash != h:
				differ, want[id] = append(differ, key), true
			}
			return nil
		})
		if err != nil {
			return "", nil, fmt.Errorf("sync %s chunk %d: compare with the target: %w", j.t.ID(), ch.Chunk, err)
		}
		for id, src := range rowsByKey {
			if !seen[id] {
				differ, want[id] = append(differ, src.key), true // new on the source
			}
		}
		w, a := keyList(j.t, differ)
		return w, a, nil
	}
	var copiedRows int64
	err := target.ReplaceChunks(ctx, s.pool, r,
		func(ctx context.Context, w io.Writer) ([]target.ChunkCopy, error) {
			copiedRows = 0
			if len(want) == 0 {
				return []target.ChunkCopy{{Chunk: ch.Chunk, Rows: now[0].Rows, Bytes: bytes[0], Digest: now[0].String()}}, nil
			}
			d, err := s.read(ctx, j.t, ch.Chunk, chunkRange(ch), func(line []byte, _ uint64) error {
				key, err := keyOf(line)
				if err != nil || !want[keyID(key)] {
					return err
				}
				copiedRows++
				_, err = w.Write(line)
				return err
			})
			if err != nil {
				return nil, err
			}
			if d != now[0] {
				return nil, fmt.Errorf("sync %s chunk %d: the source's rows changed within one snapshot", j.t.ID(), ch.Chunk)
			}
			// The chunk's new figures are those of the source's read: the
			// target now holds those rows.
			return []target.ChunkCopy{{Chunk: ch.Chunk, Rows: d.Rows, Bytes: bytes[0], Digest: d.String()}}, nil
		})
	if err != nil {
		return 0, 0, err
	}
	n := now[0].Rows
	_ = target.Audit(ctx, s.pool, target.AuditEntry{Run: s.run.ID, Table: j.t.ID(), Operation: "sync_chunk", Rows: &n, Status: "ok",
		Started: started, Metadata: map[string]any{"chunk": ch.Chunk, "whole": false, "rows_before": ch.Rows, "digest_before": ch.Digest,
			"digest": now[0].String(), "rows_differing": len(differ), "rows_copied": copiedRows}})
	s.cfg.Log.InfoContext(ctx, "sync: copied again", "table", j.t.ID(), "chunks", changed, "whole", false, "rows", n,
		"rows_differing", len(differ), "rows_copied", copiedRows)
	return 1, n, nil
}

// sourceRow is a source row of a changed chunk, as sync compares it.
type sourceRow struct {
	key  []string
	hash uint64
}

// keyID identifies a row by its key values (COPY text holds no NUL).
func keyID(key []string) string { return strings.Join(key, "\x00") }

// replaceWhole copies a table compared whole again, every chunk of it.
func (s *syncer) replaceWhole(ctx context.Context, j *job, r target.Replacement, started time.Time) (int, int64, error) {
	var copied []target.ChunkCopy
	err := target.ReplaceChunks(ctx, s.pool, r,
		func(ctx context.Context, w io.Writer) ([]target.ChunkCopy, error) {
			copied = copied[:0]
			for _, ch := range j.chunks {
				var n int64
				d, err := s.read(ctx, j.t, ch.Chunk, chunkRange(ch), func(line []byte, _ uint64) error {
					n += int64(len(line))
					_, err := w.Write(line)
					return err
				})
				if err != nil {
					return nil, err
				}
				copied = append(copied, target.ChunkCopy{Chunk: ch.Chunk, Rows: d.Rows, Bytes: n, Digest: d.String()})
			}
			return copied, nil
		})
	if err != nil {
		return 0, 0, err
	}
	var rows int64
	for i, c := range copied {
		rows += c.Rows
		was := j.chunks[i]
		if c.Rows == was.Rows && c.Digest == was.Digest {
			continue // copied with its table, unchanged itself
		}
		n := c.Rows
		_ = target.Audit(ctx, s.pool, target.AuditEntry{Run: s.run.ID, Table: j.t.ID(), Operation: "sync_chunk", Rows: &n, Status: "ok",
			Started: started, Metadata: map[string]any{"chunk": c.Chunk, "whole": j.whole, "rows_before": was.Rows, "digest_before": was.Digest,
				"digest": c.Digest}})
	}
	s.cfg.Log.InfoContext(ctx, "sync: copied again", "table", j.t.ID(), "chunks", len(j.chunks), "whole", true, "rows", rows)
	return len(j.chunks), rows, nil
}

// read streams a recorded chunk from the source in the sync's snapshot,
// digesting it as the extractor does; emit (when set) gets every line.
func (s *syncer) read(ctx context.Context, t *schema.Table, index int, ch source.Chunk, emit func(line []byte, h uint64) error) (proto.Digest, error) {
	var d proto.Digest
	var fields []proto.Field
	var scratch []byte
	task := coordinator.ChunkTask(t, index, 1, ch, s.snap, s.opts)
	err := s.src.Read(ctx, task, func(line []byte) error {
		var err error
		if fields, err = proto.SplitRow(fields[:0], line); err != nil {
			return fmt.Errorf("row %d: %w", d.Rows+1, err)
		}
		var h uint64
		h, scratch = proto.RowHash(fields, scratch)
		d.Add(h)
		return emit(line, h)
	})
	if err != nil {
		return d, fmt.Errorf("sync %s chunk %d: read the source: %w", t.ID(), index, err)
	}
	return d, nil
}

// touch drops a table's verdicts before its first chunk is copied again:
// they judged the rows being replaced. A sync interrupted after that finds
// the table unjudged and judges it.
func (s *syncer) touch(ctx context.Context, table string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.touched[table] {
		return nil
	}
	if err := target.DeleteVerdicts(ctx, s.pool, s.run.ID, table); err != nil {
		return err
	}
	s.touched[table] = true
	return nil
}

// judge re-judges, with the validator's checks, every table the sync
// copied into or that has no verdict (one an interrupted sync touched),
// after counting it on the source in the sync's snapshot.
func (s *syncer) judge(ctx context.Context, res *Result) error {
	verdicts, err := target.Verdicts(ctx, s.pool, s.run.ID)
	if err != nil {
		return err
	}
	judged := map[string]bool{}
	for _, v := range verdicts {
		if v.Level != coordinator.LevelFK {
			judged[v.Table] = true
		}
	}
	val := validator.New(nil, s.pool, validator.Config{Log: s.cfg.Log})
	for _, out := range res.Tables {
		if judged[out.Table] && !s.touched[out.Table] {
			continue
		}
		t := s.run.Model.Table(sourceName(s.run.Model, out.Table))
		if t == nil {
			return fmt.Errorf("sync: table %s is not in run %s's model", out.Table, s.run.ID)
		}
		if err := s.count(ctx, t); err != nil {
			return err
		}
		v, err := val.Judge(ctx, s.run, out.Table)
		if err != nil {
			return err
		}
		out.Judged, out.OK, out.Detail = true, v.OK, v.Detail
	}
	return nil
}

// resetSequences restarts the identity and serial sequences of every table
// copied into at the value the source would give next, as a run's
// finalization does: after a cutover the application's next insert must
// not collide with a row sync brought.
func (s *syncer) resetSequences(ctx context.Context) error {
	for _, t := range s.run.Model.Tables {
		if !s.touched[t.ID()] {
			continue
		}
		for _, r := range schema.SequenceResets(t) {
			var last *int64
			if err := s.pool.QueryRow(ctx, r.LastSQL).Scan(&last); err != nil {
				return fmt.Errorf("sync %s: sequence of %s: %w", t.ID(), r.Column, err)
			}
			if last == nil {
				continue // empty table: the sequence keeps its place
			}
			stmt := r.Restart(r.Next(*last))
			if _, err := s.pool.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("sync %s: %s: %w", t.ID(), stmt, err)
			}
			_ = target.Audit(ctx, s.pool, target.AuditEntry{Run: s.run.ID, Table: t.ID(), Operation: "sync_sequence", Status: "ok",
				Metadata: map[string]any{"sql": stmt}})
		}
	}
	return nil
}

// count records the source's own count of a table, in the sync's snapshot,
// for the count verdict.
func (s *syncer) count(ctx context.Context, t *schema.Table) error {
	n, exact, err := s.src.Count(ctx, t, s.snap)
	if err != nil {
		return fmt.Errorf("sync: count %s on the source: %w", t.ID(), err)
	}
	how := target.CountLive
	if exact {
		how = target.CountSnapshot
	}
	return target.SetSourceCount(ctx, s.pool, s.run.ID, t.ID(), &n, how)
}

func sourceName(db *schema.Database, id string) schema.Name {
	for _, t := range db.Tables {
		if t.ID() == id {
			return t.Source
		}
	}
	return schema.Name{}
}

func loadCols(t *schema.Table) []string {
	cols := make([]string, 0, len(t.Columns))
	for _, c := range t.LoadColumns() {
		cols = append(cols, c.TargetName)
	}
	return cols
}

// chunkRange is a recorded chunk as the range a source reads.
func chunkRange(ch target.ChunkState) source.Chunk {
	return source.Chunk{Range: ch.Range, Lo: ch.Lo, Hi: ch.Hi}
}

// keyList selects the rows of the given keys on the target: one text
// array a key column, cast to the column's type. FALSE when there are none.
func keyList(t *schema.Table, keys [][]string) (string, []any) {
	if len(keys) == 0 {
		return "FALSE", nil
	}
	cols, types := keyColumns(t)
	arrays := make([]any, len(cols))
	unnest := make([]string, len(cols))
	for i := range cols {
		vals := make([]string, len(keys))
		for k, key := range keys {
			vals[k] = key[i]
		}
		arrays[i] = vals
		unnest[i] = fmt.Sprintf("$%d::text[]::%s[]", i+1, types[i])
	}
	return fmt.Sprintf("(%s) IN (SELECT * FROM unnest(%s))", strings.Join(cols, ", "), strings.Join(unnest, ", ")), arrays
}

func keyColumns(t *schema.Table) ([]string, []string) {
	cols := make([]string, len(t.PrimaryKey))
	types := make([]string, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		col := t.Column(k)
		cols[i], types[i] = schema.Quote(col.TargetName), col.Type
	}
	return cols, types
}
