// Package resync is `caravan sync`: after a finished migrate run it brings
// the target up to the source's current state. Every chunk of the run's
// recorded plan is read once in one new snapshot, keeping each row (its
// key, hash and line; a chunk that grew past a piece is worked on a piece
// at a time and split in the plan), and its digest and count compared
// with those recorded when it was loaded (caravan.chunks). A chunk that
// changed is read on the target with the same reader and hash and diffed
// by key, in its changed parts only; only the rows that differ are
// deleted, updated or inserted, in one transaction that proves the chunk's
// new target content and records its new digest (target.ReplaceChunks). Tables whose chunks the
// target cannot re-select (no key, other key orders) are compared whole
// and replaced whole. The tables it touched are judged again with the
// validator's checks, in this process: on the proved digests when their
// verdicts had passed, by reading them again otherwise.
package resync

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/zeebo/xxh3"
	"golang.org/x/sync/errgroup"

	"github.com/caravan-db/caravan/coordinator"
	"github.com/caravan-db/caravan/internal/every"
	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/source"
	"github.com/caravan-db/caravan/target"
	"github.com/caravan-db/caravan/validator"
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
	// known is a key-range chunk's digest on the target once synced: the
	// recorded one when unchanged, the one proved as it was written
	// otherwise; copied is how many rows were written.
	known  []proto.Digest
	copied int64
	// changed and rows count the chunks copied and the source rows read
	// so far, over the job's attempts (pieces a foreign key did not
	// refuse stay done).
	changed int
	rows    int64
	// unproved: a changed chunk of a binary table whose rows, compared as
	// text, could not be proved as written; its binary digest on the
	// target is not known, so the table is read again to be judged.
	unproved bool
}

type syncer struct {
	src  source.Source
	pool *pgxpool.Pool
	cfg  Config
	run  *target.Run
	opts map[string]string
	snap string

	// passed holds the tables whose every verdict passed before the
	// sync: what those verdicts proved of their unchanged chunks stands.
	passed map[string]bool

	// pieceRows bounds the rows a chunk is compared and copied in at once
	// (readPieces).
	pieceRows int64

	mu      sync.Mutex
	touched map[string]bool // tables whose verdicts were dropped
	next    map[string]int  // per table, the number of the next chunk a split adds
}

// Run syncs a finished run's target with the source.
func Run(ctx context.Context, src source.Source, pool *pgxpool.Pool, cfg Config) (_ *Result, err error) {
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
	// From here the target changes and verdicts are dropped: the run is
	// live (loading, with a heartbeat) until the sync has judged it, so a
	// sync that stops half-way never leaves it reading "succeeded".
	if err := target.SetRunStatus(ctx, pool, run.ID, target.RunLoading, ""); err != nil {
		return nil, err
	}
	defer target.KeepAlive(ctx, pool, run.ID, cfg.Log)()
	defer func() {
		if err != nil {
			stopped(context.WithoutCancel(ctx), pool, run.ID, ctx.Err() != nil, err, cfg.Log)
		}
	}()
	planned := opts
	planned.Defaults()
	s := &syncer{src: src, pool: pool, cfg: cfg, run: run, opts: opts.SourceOptions, snap: snap.ID,
		pieceRows: pieceChunks * planned.RowsPerChunk, touched: map[string]bool{}, next: map[string]int{}}
	res := &Result{Consistency: snap.Note}
	started := time.Now()
	_ = target.Audit(ctx, pool, target.AuditEntry{Run: run.ID, Operation: "sync", Status: "started", Metadata: map[string]any{"consistency": snap.Note}})
	jobs, err := s.jobs(ctx, res)
	if err != nil {
		return nil, err
	}
	if s.passed, err = passed(ctx, pool, run); err != nil {
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
	if err := s.judge(ctx, res, jobs); err != nil {
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

// stopped records a sync that did not finish: interrupted when it was told
// to stop, failed otherwise, saying that a sync run again finishes it.
func stopped(ctx context.Context, pool *pgxpool.Pool, run string, interrupted bool, cause error, log *slog.Logger) {
	var err error
	if interrupted {
		_, err = target.InterruptRun(ctx, pool, run)
	} else {
		err = target.SetRunStatus(ctx, pool, run, target.RunFailed, "sync stopped: "+cause.Error()+" (run caravan sync again)")
	}
	if err != nil {
		log.WarnContext(ctx, "sync: could not record that it stopped", "run", run, "err", err)
	}
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
		return nil, source.Permanent(fmt.Errorf("run %s is still %s: sync it once it has finished (a run whose process died counts as abandoned %s after its last heartbeat)",
			run.ID, run.Status, target.AbandonedAfter))
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
		for _, ch := range chunks {
			s.next[t.ID()] = max(s.next[t.ID()], ch.Chunk+1)
		}
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
	defer every.Do(ctx, 30*time.Second, false, func(ctx context.Context) {
		mu.Lock()
		checked, copiedSoFar := done, copied
		mu.Unlock()
		s.cfg.Log.InfoContext(ctx, "sync: still comparing", "checked", checked, "of", len(jobs), "chunks_copied", copiedSoFar)
		// A chunk's transaction may be waiting on someone's lock on the
		// target: say whose.
		if waits, err := target.LockWaits(ctx, s.pool); err != nil {
			s.cfg.Log.WarnContext(ctx, "sync: could not read the target's lock waits", "err", err)
		} else if len(waits) > 0 {
			s.cfg.Log.WarnContext(ctx, "sync: waiting for locks on the target", "waits", strings.Join(waits, "; "))
		}
	})()
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
	for _, j := range largestFirst(jobs) {
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

// largestFirst orders the checks by the bytes their chunks held when
// loaded, largest first: a large chunk started last would leave the other
// workers idle while it runs alone.
func largestFirst(jobs []*job) []*job {
	size := func(j *job) int64 {
		var n int64
		for _, ch := range j.chunks {
			n += ch.Bytes
		}
		return n
	}
	out := slices.Clone(jobs)
	slices.SortStableFunc(out, func(a, b *job) int { return cmp.Compare(size(b), size(a)) })
	return out
}

// isForeignKeyViolation says whether err is PostgreSQL refusing a row for
// a foreign key.
func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}

// sync compares one job's chunks with their recorded figures and copies
// again what changed. It returns the chunks copied and the source's rows
// in the job.
func (s *syncer) sync(ctx context.Context, j *job) (int, int64, error) {
	if j.whole {
		return s.syncWhole(ctx, j)
	}
	return s.syncChunk(ctx, j)
}

// syncWhole reads a table compared whole on the source and copies all of
// it again when any chunk's digest or count differs.
func (s *syncer) syncWhole(ctx context.Context, j *job) (int, int64, error) {
	var rows int64
	changed := false
	// The compare read keeps the rows (up to keepBytes in all): a changed
	// table is then written from it, not read again.
	kept := make([]wholeChunk, 0, len(j.chunks))
	size := 0
	for _, ch := range j.chunks {
		var c wholeChunk
		d, err := s.read(ctx, j.t, encoding(j.t), ch.Chunk, chunkRange(ch), func(line []byte, _ []proto.Field, _ uint64) error {
			c.bytes += int64(len(line))
			if kept != nil {
				if size += len(line); size > keepBytes {
					kept = nil // too large: the copy reads it again
				} else {
					c.data = append(c.data, line...)
				}
			}
			return nil
		})
		if err != nil {
			return 0, 0, err
		}
		rows += d.Rows
		changed = changed || d.Rows != ch.Rows || d.String() != ch.Digest
		if kept != nil {
			c.copy = target.ChunkCopy{Chunk: ch.Chunk, Rows: d.Rows, Bytes: c.bytes, Digest: d.String()}
			kept = append(kept, c)
		}
	}
	if !changed {
		return 0, rows, nil
	}
	if err := s.touch(ctx, j.t.ID()); err != nil {
		return 0, 0, err
	}
	r := s.replacement(j)
	r.Encoding = encoding(j.t)
	return s.replaceWhole(ctx, j, r, kept, time.Now())
}

// wholeChunk is a chunk of a table compared whole, as its compare read
// kept it.
type wholeChunk struct {
	data  []byte
	bytes int64
	copy  target.ChunkCopy
}

// encoding is the row encoding of a table's recorded digests: the one its
// chunks are compared in.
func encoding(t *schema.Table) string { return proto.EncodingOrText(t.Encoding) }

// replacement is the re-copy of a job's chunks.
func (s *syncer) replacement(j *job) target.Replacement {
	r := target.Replacement{Run: s.run.ID, Table: j.t.ID(), Target: j.t.Target, Cols: loadCols(j.t), Where: "TRUE"}
	for _, ch := range j.chunks {
		r.Chunks = append(r.Chunks, ch.Chunk)
	}
	key := map[string]bool{}
	for _, k := range j.t.PrimaryKey {
		r.Key = append(r.Key, j.t.TargetColumn(k))
		key[k] = true
	}
	for _, c := range j.t.Columns {
		if c.Identity != nil && c.Identity.Always && !key[c.Name] {
			r.Always = append(r.Always, j.t.TargetColumn(c.Name))
		}
	}
	return r
}

// syncChunk syncs one key-range chunk row by row. The source is read once,
// in the table's encoding, keeping each row (its key, hash and line); a
// chunk whose digest and count are those recorded at its last load is
// done. Otherwise, in one transaction under the chunk's lock, the target's
// rows of the range are read with the same encoding and hash, diffed by
// key, the keys that differ deleted or overwritten with the source's rows
// kept in memory, and the chunk's new digest recorded. The chunk's new
// target content is proved in that transaction: the target digest as
// read, less the rows replaced, plus the rows written read back by key,
// must be the source's. The key predicates bind key values as text,
// decoded from binary key fields for the key types binaryKeyText knows.
//
// Rows are kept one piece at a time (readPieces): a chunk that grew past
// pieceRows rows or keepBytes (the open last chunk of a table the
// application appends to, say) is cut where it is full, each piece
// compared and copied in its own transaction while the source read waits,
// and the chunk split in the run's plan at the same key
// (target.ChunkSplit), so memory stays bounded and the next sync finds
// chunks of the planned size. The source is read once either way, in one
// transaction: SQL Server's SNAPSHOT isolation is per transaction, and a
// second read of a source still being written would not match the first.
//
// A binary table with a key type binaryKeyText does not know is worked on
// in text (syncInText).
func (s *syncer) syncChunk(ctx context.Context, j *job) (int, int64, error) {
	enc := encoding(j.t)
	if enc == proto.EncodingCopyBinary && !binaryKeys(j.t) {
		return s.syncInText(ctx, j)
	}
	k, err := newKeyer(j.t, enc)
	if err != nil {
		return 0, 0, err
	}
	err = s.readPieces(ctx, j, k, func(p *piece) error {
		ch := j.chunks[0]
		if p.whole && p.digest.Rows == ch.Rows && p.digest.String() == ch.Digest {
			j.known = append(j.known, p.digest) // the target's, as its last verdict proved it
			j.rows += p.digest.Rows
			return nil
		}
		var split *target.ChunkSplit
		if p.hi != nil {
			split = &target.ChunkSplit{Hi: p.hi, Rest: s.newChunk(j.t.ID())}
			ch.Hi = p.hi // the piece's range: what is left stays for the next piece
		}
		if err := s.replaceRows(ctx, j, ch, k, p.rows, p.digest, p.digest, p.bytes, 1, split); err != nil {
			return err
		}
		j.changed++
		j.rows += p.digest.Rows
		if split != nil {
			// The rest of the chunk is now a chunk of its own, recorded
			// empty: a retry of this job (a foreign key refused a later
			// piece) starts from it.
			s.mu.Lock()
			j.out.Chunks++
			s.mu.Unlock()
			j.chunks[0] = target.ChunkState{Table: ch.Table, Chunk: split.Rest, Range: ch.Range, Lo: split.Hi, Hi: j.chunks[0].Hi,
				Status: target.StatusLoaded, Bytes: j.chunks[0].Bytes}
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return j.changed, j.rows, nil
}

// syncInText syncs a chunk of a binary table whose key binaryKeyText
// cannot turn into text: it is compared by its binary digest and, when
// changed, read again as text for the row work (recorded with its binary
// digest, which its text proof vouches for), the rows to write selected by
// key in the sync's snapshot (source.KeyReader), or kept from the text
// read by a source that cannot select by key.
func (s *syncer) syncInText(ctx context.Context, j *job) (int, int64, error) {
	ch := j.chunks[0]
	var bytes int64
	now, err := s.read(ctx, j.t, encoding(j.t), ch.Chunk, chunkRange(ch), func(line []byte, _ []proto.Field, _ uint64) error {
		bytes += int64(len(line))
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	if now.Rows == ch.Rows && now.String() == ch.Digest {
		j.known = append(j.known, now)
		return 0, now.Rows, nil
	}
	k, err := newKeyer(j.t, proto.EncodingCopyText)
	if err != nil {
		return 0, 0, err
	}
	_, byKey := s.src.(source.KeyReader)
	src, text, _, err := s.readRows(ctx, j, k, proto.EncodingCopyText, !byKey)
	if err != nil {
		return 0, 0, err
	}
	if err := s.replaceRows(ctx, j, ch, k, src, text, now, bytes, 2, nil); err != nil {
		return 0, 0, err
	}
	return 1, now.Rows, nil
}

// pieceChunks bounds the rows of a piece of a chunk (readPieces,
// syncer.pieceRows) as a multiple of the run's --chunk-rows: a chunk of
// the planned size is never cut, one that grew to more than twice it is.
const pieceChunks = 2

// keepBytes bounds the bytes of source rows a piece keeps in memory (each
// of --workers chunks at once): planned chunks hold about 64 MiB of table
// (coordinator.chunkBytes), so nearly all are one piece.
const keepBytes = 128 << 20

// piece is a run of a chunk's source rows in key order, compared and copied
// at once (see syncChunk).
type piece struct {
	rows   *chunkRows
	digest proto.Digest
	bytes  int64
	// hi is the key of the row that starts the next piece; nil for the
	// chunk's last. whole says the piece is the whole chunk.
	hi    []string
	whole bool
}

// readPieces reads a chunk on the source in k's encoding, in key order,
// keeping its rows, and hands done each piece: the whole chunk, or, once
// it holds pieceRows rows or keepBytes, the rows so far, cut before the
// row that would overfill it (whose key bounds the piece). done runs while
// the source read waits for it.
func (s *syncer) readPieces(ctx context.Context, j *job, k *keyer, done func(*piece) error) error {
	ch := j.chunks[0]
	start := func(first bool) *piece {
		src := s.newChunkRows(j, k.enc, true, min(ch.Rows, s.pieceRows))
		if !first {
			src.parts = nil // no recorded parts describe a piece
		}
		return &piece{rows: src, whole: first}
	}
	p := start(true)
	_, err := s.read(ctx, j.t, k.enc, ch.Chunk, chunkRange(ch), func(line []byte, fields []proto.Field, h uint64) error {
		id, err := k.id(line, fields)
		if err != nil {
			return err
		}
		if n := len(p.rows.rows); n > 0 && (int64(n) >= s.pieceRows || len(p.rows.data)+len(line) > keepBytes) {
			id = bytes.Clone(id) // the piece's work reuses k's buffer
			hi, err := k.keys([]string{string(id)})
			if err != nil {
				return err
			}
			// The chunk's recorded parts are of the whole chunk, not of
			// this piece: it is compared whole.
			p.hi, p.whole, p.rows.parts = hi[0], false, nil
			if err := done(p); err != nil {
				return err
			}
			p = start(false)
		}
		p.digest.Add(h)
		p.bytes += int64(len(line))
		return p.rows.add(ch.Chunk, j.t.ID(), id, line, fields, h)
	})
	if err != nil {
		return err
	}
	return done(p)
}

// newChunk is the number of a chunk the sync adds to a table's plan.
func (s *syncer) newChunk(table string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.next[table]
	s.next[table] = n + 1
	return n
}

// newChunkRows makes room for a chunk's source rows read in encoding enc
// (about rows of them), keeping the rows themselves when keep; it cuts
// them into parts as the chunk's recorded ones when it has parts in enc.
func (s *syncer) newChunkRows(j *job, enc string, keep bool, rows int64) *chunkRows {
	ch := j.chunks[0]
	// Sized by the chunk's figures at its last load: growing them row by
	// row copied them over and over.
	src := &chunkRows{enc: enc, rows: make([]sourceRow, 0, rows), keys: make([]byte, 0, 8*rows), partAt: -1, kept: keep}
	if keep {
		src.data = make([]byte, 0, min(ch.Bytes+ch.Bytes/8, keepBytes))
	}
	if enc == encoding(j.t) {
		// Parts are digests in the table's encoding: a chunk worked on in
		// another has none.
		src.partAt, src.partKind = partKey(j.t, ch)
		if src.partAt >= 0 && ch.Parts != nil {
			src.parts = ch.Parts.Like()
		}
	}
	return src
}

// add keeps a source row of key id id (and the line itself when kept).
func (c *chunkRows) add(chunk int, table string, id, line []byte, fields []proto.Field, h uint64) error {
	row := sourceRow{hash: h, part: -1}
	if c.partAt >= 0 {
		v, ok := proto.PartValue(c.enc, c.partKind, fields[c.partAt])
		if !ok {
			return fmt.Errorf("sync %s chunk %d: key %q has no part value", table, chunk, fields[c.partAt].Value)
		}
		row.value = v
		if c.parts != nil {
			row.part = int32(c.parts.Part(v))
			c.parts.Add(v, h)
		}
	}
	if c.kept {
		row.at = len(c.data)
		c.data = append(c.data, line...)
		row.end = len(c.data)
	}
	c.push(id, row)
	return nil
}

// readRows reads a whole chunk on the source in encoding enc, returning its
// rows (their keys by k and hashes; the rows themselves too when keep),
// digest and bytes.
func (s *syncer) readRows(ctx context.Context, j *job, k *keyer, enc string, keep bool) (*chunkRows, proto.Digest, int64, error) {
	ch := j.chunks[0]
	src := s.newChunkRows(j, enc, keep, ch.Rows)
	var bytes int64
	now, err := s.read(ctx, j.t, enc, ch.Chunk, chunkRange(ch), func(line []byte, fields []proto.Field, h uint64) error {
		bytes += int64(len(line))
		id, err := k.id(line, fields)
		if err != nil {
			return err
		}
		return src.add(ch.Chunk, j.t.ID(), id, line, fields, h)
	})
	if err != nil {
		return nil, proto.Digest{}, 0, err
	}
	return src, now, bytes, nil
}

// replaceRows replaces a changed chunk's rows that differ (see syncChunk).
// src holds the source's rows read in k's encoding, now their digest;
// record is the chunk's digest in the table's encoding (now, unless the
// row work is done in text for a binary table), what the chunk's row
// records once copied. ch is the chunk as recorded, its range the rows'
// (a piece's, when split cuts the chunk short at its end). reads is how
// many times the chunk was read on the source so far.
func (s *syncer) replaceRows(ctx context.Context, j *job, ch target.ChunkState, k *keyer, src *chunkRows, now, record proto.Digest, bytes int64, reads int, split *target.ChunkSplit) error {
	inTableEncoding := k.enc == encoding(j.t)
	if err := s.touch(ctx, j.t.ID()); err != nil {
		return err
	}
	started := time.Now()
	r := s.replacement(j)
	r.Encoding = k.enc
	changed, read := changedParts(src, ch.Parts)
	if id, twice := src.indexRows(changed); twice {
		return fmt.Errorf("sync %s chunk %d: key %q twice on the source", j.t.ID(), ch.Chunk, id)
	}
	var diff chunkDiff
	r.Narrow = func(ctx context.Context, tx pgx.Tx) (target.Narrowed, error) {
		var err error
		if diff, err = s.diffTarget(ctx, tx, j, ch, k, src, changed); err != nil {
			return target.Narrowed{}, err
		}
		if changed != nil && diff.before != recordedParts(ch.Parts, changed) {
			// The target's rows of the parts read are not those recorded:
			// it was written outside caravan, or the read missed rows.
			// Neither the parts not read nor this read can be trusted:
			// the whole range is compared, row by row.
			s.cfg.Log.WarnContext(ctx, "sync: the target's rows of a chunk's changed parts are not those recorded, comparing its whole range",
				"table", j.t.ID(), "chunk", ch.Chunk, "rows_read", diff.before.Rows)
			changed, read = nil, "all (the target's parts were not as recorded)"
			if id, twice := src.indexRows(nil); twice {
				return target.Narrowed{}, fmt.Errorf("sync %s chunk %d: key %q twice on the source", j.t.ID(), ch.Chunk, id)
			}
			if diff, err = s.diffTarget(ctx, tx, j, ch, k, src, nil); err != nil {
				return target.Narrowed{}, err
			}
		}
		// The keys to replace: those that differ. With none of the rows
		// to write on the target, only the keys gone from the source are
		// to be deleted: the rows written are copied straight in.
		replace, fresh := diff.differ, diff.updated == 0
		if fresh {
			replace = diff.gone()
		}
		keys, err := k.keys(replace)
		if err != nil {
			return target.Narrowed{}, err
		}
		w, a := keyList(j.t, keys, arrayParam)
		return target.Narrowed{Where: w, Args: a, New: fresh}, nil
	}
	r.Written = func(ctx context.Context, tx pgx.Tx) error {
		// What the target holds now: what it held, less the rows the
		// merge may have removed or overwritten, plus those it wrote,
		// read back by key. When it wrote more rows than it held (a piece
		// of rows new to the target), what it compared is read again
		// instead: a range reads faster than a long list of keys.
		proof := diff.before
		proof.Sum -= diff.replaced.Sum
		proof.Rows -= diff.replaced.Rows
		keys, err := k.keys(diff.want)
		if err != nil {
			return err
		}
		where, args := keyList(j.t, keys, pgutil.BoundSetting)
		if int64(len(diff.want)) > diff.before.Rows {
			proof, where, args = proto.Digest{}, diff.where, diff.args
		}
		err = target.ReadLinesIn(ctx, tx, j.t.Target, k.enc, loadCols(j.t), where, args, func(_ []byte, h uint64) error {
			proof.Add(h)
			return nil
		})
		if err != nil {
			return fmt.Errorf("sync %s chunk %d: read back the rows written: %w", j.t.ID(), ch.Chunk, err)
		}
		diff.proof = proof
		return nil
	}
	var copied int64
	err := target.ReplaceChunks(ctx, s.pool, r, func(ctx context.Context, w io.Writer) ([]target.ChunkCopy, error) {
		var err error
		if src.kept {
			copied, err = copyKept(src, diff.want, w)
		} else {
			copied, err = s.copyRows(ctx, j, ch, k, src, diff.want, w)
			if len(diff.want) > 0 {
				reads++ // the rows selected by key
			}
		}
		if err != nil {
			return nil, err
		}
		// The chunk's new figures are those of the source's read: the
		// target now holds those rows (the proof says whether it does).
		var parts *proto.Parts
		if inTableEncoding {
			parts = src.freshParts()
		}
		return []target.ChunkCopy{{Chunk: ch.Chunk, Rows: record.Rows, Bytes: bytes, Digest: record.String(), Parts: parts, Split: split}}, nil
	})
	if err != nil {
		return err
	}
	// Compared part by part, the proof covers the parts read; the others
	// hold what was recorded, as the source does.
	want, known := now, diff.proof
	if changed != nil {
		want = proto.Digest{}
		for i, c := range changed {
			if c {
				want.Merge(src.parts.Digest(i))
			} else {
				known.Merge(ch.Parts.Digest(i))
			}
		}
	}
	proved := diff.proof == want
	if !inTableEncoding {
		// The text proof says the target holds the source's rows: their
		// binary digest is the source's. Unproved, it is not known.
		known, j.unproved = record, j.unproved || !proved
	}
	j.known, j.copied = append(j.known, known), j.copied+copied
	n := now.Rows
	meta := map[string]any{"chunk": ch.Chunk, "whole": false, "rows_before": ch.Rows, "digest_before": ch.Digest,
		"digest": record.String(), "rows_differing": len(diff.differ), "rows_copied": copied, "rows_deleted": int64(len(diff.differ)) - copied,
		"target_digest": known.String(), "target_rows": known.Rows, "target_rows_read": diff.before.Rows, "proved": proved,
		"encoding": k.enc, "source_reads": reads, "parts": read}
	attrs := []any{"table", j.t.ID(), "chunk", ch.Chunk, "rows", n, "rows_differing", len(diff.differ), "rows_copied", copied,
		"proved", proved, "encoding", k.enc, "source_reads", reads, "parts", read}
	if split != nil {
		// The chunk grew past a piece: it ends here now, the rest of its
		// range is a chunk of its own.
		meta["split_at"], meta["rest_chunk"] = split.Hi, split.Rest
		attrs = append(attrs, "split_at", split.Hi, "rest_chunk", split.Rest)
	}
	_ = target.Audit(ctx, s.pool, target.AuditEntry{Run: s.run.ID, Table: j.t.ID(), Operation: "sync_chunk", Rows: &n, Status: "ok",
		Started: started, Metadata: meta})
	s.cfg.Log.InfoContext(ctx, "sync: copied again", attrs...)
	return nil
}

// changedParts compares a chunk's source rows, cut into parts, with the
// parts recorded when it was last copied: changed says which differ, nil
// to compare the whole chunk (no parts, or more than half of them
// changed: one range reads as fast then). read says what is read on the
// target, for the audit ("5 of 1024", or "all").
func changedParts(src *chunkRows, recorded *proto.Parts) (changed []bool, read string) {
	if src.parts == nil || !src.parts.Same(recorded) {
		return nil, "all"
	}
	changed = make([]bool, src.parts.Len())
	n := 0
	for i := range changed {
		if changed[i] = src.parts.Digest(i) != recorded.Digest(i); changed[i] {
			n++
		}
	}
	if n == 0 || n > len(changed)/2 {
		// None: the parts and the chunk's digest disagree, so trust
		// neither and compare it all.
		return nil, "all"
	}
	return changed, fmt.Sprintf("%d of %d", n, len(changed))
}

// recordedParts is the digest recorded for the changed parts: what the
// target held there when the chunk was last copied.
func recordedParts(recorded *proto.Parts, changed []bool) proto.Digest {
	var d proto.Digest
	for i, c := range changed {
		if c {
			d.Merge(recorded.Digest(i))
		}
	}
	return d
}

// partsPredicate selects the target rows of the changed parts: the values
// of the first key column in the closed spans of the runs of changed
// parts (proto.PartSpan), bound as two arrays through settings numbered
// after the first n (pgutil.BoundSetting). Each span is looked up by
// index, and the values found select the rows, also by index: the rows
// of a few changed parts cost a few index probes, never a scan of the
// chunk. (A filter of the spans over the chunk's range has PostgreSQL
// read the whole range, a seq scan of half of bench_wide for a chunk of a
// two-chunk table, to keep 1,500 rows: 0.2-0.3 s; an OR of the spans,
// each bound read from its setting for every row, seconds. The lateral
// lookups, whose bounds are unknown when planned, are kept apart from the
// rows' scan by the array, or PostgreSQL flattens them into a join.)
func partsPredicate(t *schema.Table, src *chunkRows, changed []bool, n int) (string, []any) {
	cols, _ := keyColumns(t)
	var los, his []string
	for i := 0; i < len(changed); i++ {
		if !changed[i] {
			continue
		}
		first := i
		for i+1 < len(changed) && changed[i+1] {
			i++
		}
		if lo, hi, ok := src.parts.PartSpan(src.partKind, first, i); ok {
			los, his = append(los, lo), append(his, hi)
		}
	}
	if len(los) == 0 {
		return "FALSE", nil
	}
	col, typ := cols[0], proto.PartSQLType(src.partKind)+"[]"
	return fmt.Sprintf("%[1]s = ANY(ARRAY(SELECT caravan_found.%[1]s FROM unnest(%[2]s, %[3]s) AS caravan_span(lo, hi) "+
		"CROSS JOIN LATERAL (SELECT t.%[1]s FROM %[4]s AS t WHERE t.%[1]s >= caravan_span.lo AND t.%[1]s <= caravan_span.hi) AS caravan_found))",
		col, pgutil.BoundSetting(n+1, typ), pgutil.BoundSetting(n+2, typ), schema.QuoteOnly(t.Target)), []any{los, his}
}

// partKey is the column a chunk of t is cut into parts by (see
// proto.ChunkTask.PartKey): the chunk's task says.
func partKey(t *schema.Table, ch target.ChunkState) (int, string) {
	return coordinator.ChunkTask(t, ch.Chunk, 1, chunkRange(ch), "", nil).PartKey()
}

// copyKept writes the kept source rows of the wanted keys to w: the
// compare read's own rows, so the source is not read again.
func copyKept(src *chunkRows, want []string, w io.Writer) (int64, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	for _, id := range want {
		at, _ := src.find([]byte(id))
		row := src.rows[at]
		if _, err := bw.Write(src.data[row.at:row.end]); err != nil {
			return 0, err
		}
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	return int64(len(want)), nil
}

// chunkRows are a chunk's source rows as sync compares them: per row its
// key and hash, so memory grows with the chunk's rows, not with their
// width; and, kept, the rows themselves (a binary chunk's, up to
// keepBytes). Nothing in it holds a pointer, so the garbage collector
// never scans it however many rows it has (a map of key strings cost
// the bench's sync a fifth of its CPU in allocation and scanning).
type chunkRows struct {
	index map[uint64]int32 // the hash of a key id -> 1 + its first row, once indexRows ran
	enc   string           // the rows' encoding
	keys  []byte           // the rows' key ids (keyer), one after the other
	rows  []sourceRow
	kept  bool   // data holds every row
	data  []byte // the rows, one after the other

	// The rows cut into parts (proto.Parts) by the key column at partAt
	// (< 0: the chunk has none): parts as the chunk's recorded ones are
	// cut, nil when none are recorded. Each row keeps its part value, for
	// the parts cut anew that a copied chunk records (freshParts).
	partAt   int
	partKind string
	parts    *proto.Parts
}

// freshParts cuts the rows into parts anew: what a chunk records once
// copied. nil when it has none.
func (c *chunkRows) freshParts() *proto.Parts {
	if c.partAt < 0 {
		return nil
	}
	var b proto.PartsBuilder
	b.Grow(len(c.rows))
	for i := range c.rows {
		b.Add(c.rows[i].value, c.rows[i].hash)
	}
	return b.Parts()
}

type sourceRow struct {
	hash          uint64
	value         int64 // the row's part value, when chunkRows.partAt >= 0
	part          int32 // the row's part in chunkRows.parts; -1 for none
	keyAt, keyEnd int   // the row's key id in keys
	at, end       int   // the row in data, when kept
	next          int32 // 1 + the next row whose key id has the same hash
	seen          bool  // on the target too
}

// find returns the position of the row of key id id.
func (c *chunkRows) find(id []byte) (int, bool) {
	for i := c.index[xxh3.Hash(id)]; i > 0; i = c.rows[i-1].next {
		if bytes.Equal(c.key(int(i-1)), id) {
			return int(i - 1), true
		}
	}
	return 0, false
}

// push adds a row of key id id, not yet indexed (indexRows).
func (c *chunkRows) push(id []byte, row sourceRow) {
	row.keyAt = len(c.keys)
	c.keys = append(c.keys, id...)
	row.keyEnd = len(c.keys)
	c.rows = append(c.rows, row)
}

// indexRows indexes the rows by key id for find: those of the changed
// parts only, or all when changed is nil (the others are not compared,
// and an unchanged chunk is never indexed: the index was most of the CPU
// of reading one). It returns a key id found twice.
func (c *chunkRows) indexRows(changed []bool) ([]byte, bool) {
	c.index = make(map[uint64]int32)
	for i := range c.rows {
		row := &c.rows[i]
		if changed != nil && !changed[row.part] {
			continue
		}
		id := c.key(i)
		if _, twice := c.find(id); twice {
			return id, true
		}
		h := xxh3.Hash(id)
		row.next = c.index[h]
		c.index[h] = int32(i + 1)
	}
	return nil, false
}

// key is the key id of the i-th row.
func (c *chunkRows) key(i int) []byte { return c.keys[c.rows[i].keyAt:c.rows[i].keyEnd] }

// keyer identifies rows by key. In COPY text a key id is the key's values,
// unescaped, joined by NUL (which COPY text cannot hold); in binary, the
// key fields' bytes, each after its 4-byte length: the same value of the
// same type has the same bytes on the source and the target.
type keyer struct {
	table  string
	enc    string
	at     []int    // the key columns' positions among the load columns
	types  []string // the key columns' types
	last   int      // the greatest of at
	fields []proto.Field
	buf    []byte
}

func newKeyer(t *schema.Table, enc string) (*keyer, error) {
	k := &keyer{table: t.ID(), enc: proto.EncodingOrText(enc), last: -1}
	load := t.LoadColumns()
	for _, name := range t.PrimaryKey {
		at := slices.IndexFunc(load, func(c *schema.Column) bool { return c.Name == name })
		if at < 0 {
			return nil, fmt.Errorf("sync %s: key column %q is not loaded", t.ID(), name)
		}
		k.at, k.last = append(k.at, at), max(k.last, at)
		k.types = append(k.types, load[at].Type)
	}
	return k, nil
}

// id returns a row's key id, valid until the next call. fields is the row
// already split, or nil: then a binary row is split, a text line only up
// to its last key column (a tab in a COPY line always ends a field).
func (k *keyer) id(line []byte, fields []proto.Field) ([]byte, error) {
	binary := k.enc == proto.EncodingCopyBinary
	if fields == nil {
		row := line
		if !binary {
			end, n := 0, 0
			for end < len(line) && line[end] != '\n' {
				if line[end] == '\t' {
					if n == k.last {
						break
					}
					n++
				}
				end++
			}
			row = line[:end]
		}
		var err error
		if k.fields, err = proto.SplitRowAs(k.enc, k.fields[:0], row); err != nil {
			return nil, fmt.Errorf("sync %s: %w", k.table, err)
		}
		fields = k.fields
	}
	k.buf = k.buf[:0]
	for i, p := range k.at {
		if p >= len(fields) || fields[p].Null {
			return nil, fmt.Errorf("sync %s: a row without its key (column %d)", k.table, p)
		}
		switch {
		case binary:
			k.buf = binary32(k.buf, len(fields[p].Value))
		case i > 0:
			k.buf = append(k.buf, 0)
		}
		k.buf = append(k.buf, fields[p].Value...)
	}
	return k.buf, nil
}

func binary32(b []byte, n int) []byte {
	return append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// keys turns key ids back into key values, one text a key column, as the
// key predicates bind them.
func (k *keyer) keys(ids []string) ([][]string, error) {
	if k.enc != proto.EncodingCopyBinary {
		return keysOf(ids), nil
	}
	out := make([][]string, len(ids))
	for i, id := range ids {
		p := []byte(id)
		key := make([]string, len(k.types))
		for c, typ := range k.types {
			if len(p) < 4 {
				return nil, fmt.Errorf("sync %s: key id %x cut short", k.table, id)
			}
			n := int(uint32(p[0])<<24 | uint32(p[1])<<16 | uint32(p[2])<<8 | uint32(p[3]))
			if len(p) < 4+n {
				return nil, fmt.Errorf("sync %s: key id %x cut short", k.table, id)
			}
			v, ok := binaryKeyText(typ, p[4:4+n])
			if !ok {
				return nil, fmt.Errorf("sync %s: a binary key of type %s (%x) has no text form here", k.table, typ, p[4:4+n])
			}
			key[c], p = v, p[4+n:]
		}
		out[i] = key
	}
	return out, nil
}

// binaryKeys says whether every key column of t is of a type whose binary
// value binaryKeyText turns into text.
func binaryKeys(t *schema.Table) bool {
	for _, name := range t.PrimaryKey {
		c := t.Column(name)
		if c == nil || keyKind(c.Type) == "" {
			return false
		}
	}
	return true
}

// keyKind is how binaryKeyText decodes a key column of type typ: the key
// types sync's binary row work supports (integers, text, uuid); "" for any
// other, whose table's changed chunks are worked on in text.
func keyKind(typ string) string {
	switch {
	case typ == "smallint" || typ == "integer" || typ == "bigint" || typ == "uuid" || typ == "text":
		return typ
	case typ == "character varying" || strings.HasPrefix(typ, "character varying("):
		return "text"
	}
	return ""
}

// binaryKeyText is a key value's text form, from its binary send format;
// ok is false for a type keyKind does not know or a value of the wrong
// length.
func binaryKeyText(typ string, v []byte) (string, bool) {
	be := func(n int) (uint64, bool) {
		if len(v) != n {
			return 0, false
		}
		var u uint64
		for _, b := range v {
			u = u<<8 | uint64(b)
		}
		return u, true
	}
	switch keyKind(typ) {
	case "smallint":
		u, ok := be(2)
		return strconv.FormatInt(int64(int16(u)), 10), ok
	case "integer":
		u, ok := be(4)
		return strconv.FormatInt(int64(int32(u)), 10), ok
	case "bigint":
		u, ok := be(8)
		return strconv.FormatInt(int64(u), 10), ok
	case "uuid":
		if len(v) != 16 {
			return "", false
		}
		h := hex.EncodeToString(v)
		return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], true
	case "text":
		return string(v), utf8.Valid(v)
	}
	return "", false
}

// keysOf turns key ids back into key values, one text a key column.
func keysOf(ids []string) [][]string {
	out := make([][]string, len(ids))
	for i, id := range ids {
		out[i] = strings.Split(id, "\x00")
	}
	return out
}

// chunkDiff is how a chunk's target rows differ from the source's.
type chunkDiff struct {
	before   proto.Digest // the target's rows of the range, as read
	replaced proto.Digest // those of them whose key differs
	differ   []string     // ids of the keys whose rows differ, on either side
	want     []string     // ids of the keys of the source rows to write
	updated  int          // how many of them are on the target too
	where    string       // the target's rows compared, with args
	args     []any
	proof    proto.Digest // the target's rows of the range once written
}

// diffTarget reads a chunk's key range on the target in tx, with the hash
// the source's rows were read with, and compares the rows by key.
//
// changed, when not nil, says which of the chunk's parts differ from
// those recorded: only their key values are read and compared, the
// others holding, on the target, the rows recorded (as an unchanged
// chunk does).
func (s *syncer) diffTarget(ctx context.Context, tx pgx.Tx, j *job, ch target.ChunkState, k *keyer, src *chunkRows, changed []bool) (chunkDiff, error) {
	var diff chunkDiff
	for i := range src.rows {
		src.rows[i].seen = false // a chunk a foreign key refused is compared again
	}
	where, args := target.KeyRange(j.t, ch, true)
	if changed != nil {
		w, a := partsPredicate(j.t, src, changed, len(args))
		where, args = where+" AND ("+w+")", append(args, a...)
	}
	diff.where, diff.args = where, args
	err := target.ReadLinesIn(ctx, tx, j.t.Target, k.enc, loadCols(j.t), where, args, func(line []byte, h uint64) error {
		diff.before.Add(h)
		id, err := k.id(line, nil)
		if err != nil {
			return err
		}
		if changed != nil {
			// The predicate and the part function must agree, or the
			// proof would vouch for rows never compared.
			v, ok := proto.PartValue(k.enc, src.partKind, k.fields[src.partAt])
			if !ok || !changed[src.parts.Part(v)] {
				return fmt.Errorf("key %q read outside the parts asked for", id)
			}
		}
		at, ok := src.find(id)
		switch {
		case !ok: // gone from the source
			diff.differ = append(diff.differ, string(id))
			diff.replaced.Add(h)
		case src.rows[at].seen:
			return fmt.Errorf("key %q twice on the target", id)
		default:
			src.rows[at].seen = true
			if src.rows[at].hash != h {
				diff.differ, diff.want = append(diff.differ, string(id)), append(diff.want, string(id))
				diff.replaced.Add(h)
				diff.updated++
			}
		}
		return nil
	})
	if err != nil {
		return chunkDiff{}, fmt.Errorf("sync %s chunk %d: compare with the target: %w", j.t.ID(), ch.Chunk, err)
	}
	for at := range src.rows {
		if changed != nil && !changed[src.rows[at].part] {
			continue // in a part that did not change
		}
		if !src.rows[at].seen { // new on the source
			id := string(src.key(at))
			diff.differ, diff.want = append(diff.differ, id), append(diff.want, id)
		}
	}
	return diff, nil
}

// gone lists the ids of the keys only on the target: those that differ
// and are not written.
func (d *chunkDiff) gone() []string {
	written := make(map[string]bool, len(d.want))
	for _, id := range d.want {
		written[id] = true
	}
	var out []string
	for _, id := range d.differ {
		if !written[id] {
			out = append(out, id)
		}
	}
	return out
}

// copyRows writes the source rows of the wanted keys to w, selected by key
// in the sync's snapshot (source.KeyReader); a source that cannot select
// by key has the chunk read again and filtered. Every row written must be
// the one compared: same key, same hash.
func (s *syncer) copyRows(ctx context.Context, j *job, ch target.ChunkState, k *keyer, src *chunkRows, want []string, w io.Writer) (int64, error) {
	if len(want) == 0 {
		return 0, nil
	}
	wanted := make(map[string]bool, len(want))
	for _, id := range want {
		wanted[id] = true
	}
	var copied int64
	emit := func(line []byte, fields []proto.Field, h uint64) error {
		id, err := k.id(line, fields)
		if err != nil || !wanted[string(id)] {
			return err
		}
		at, _ := src.find(id)
		if src.rows[at].hash != h {
			return fmt.Errorf("sync %s chunk %d: the source's row of key %q changed within one snapshot", j.t.ID(), ch.Chunk, id)
		}
		copied++
		_, err = w.Write(line)
		return err
	}
	var err error
	if kr, ok := s.src.(source.KeyReader); ok {
		task := coordinator.ChunkTask(j.t, ch.Chunk, 1, chunkRange(ch), s.snap, s.opts)
		task.Encoding = proto.EncodingCopyText
		err = kr.ReadKeys(ctx, task, keysOf(want), hashLines(proto.EncodingCopyText, emit))
	} else {
		_, err = s.read(ctx, j.t, proto.EncodingCopyText, ch.Chunk, chunkRange(ch), emit)
	}
	if err != nil {
		return 0, fmt.Errorf("sync %s chunk %d: read the rows that differ: %w", j.t.ID(), ch.Chunk, err)
	}
	if copied != int64(len(want)) {
		return 0, fmt.Errorf("sync %s chunk %d: %d of the %d rows that differ were read again on the source", j.t.ID(), ch.Chunk, copied, len(want))
	}
	return copied, nil
}

// replaceWhole copies a table compared whole again, every chunk of it:
// from the rows its compare read kept, or read again when it kept none.
func (s *syncer) replaceWhole(ctx context.Context, j *job, r target.Replacement, kept []wholeChunk, started time.Time) (int, int64, error) {
	var copied []target.ChunkCopy
	err := target.ReplaceChunks(ctx, s.pool, r,
		func(ctx context.Context, w io.Writer) ([]target.ChunkCopy, error) {
			copied = copied[:0]
			if kept != nil {
				for _, c := range kept {
					if _, err := w.Write(c.data); err != nil {
						return nil, err
					}
					copied = append(copied, c.copy)
				}
				return copied, nil
			}
			for _, ch := range j.chunks {
				var n int64
				d, err := s.read(ctx, j.t, r.Encoding, ch.Chunk, chunkRange(ch), func(line []byte, _ []proto.Field, _ uint64) error {
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
	reads := 2 // compared, then copied
	if kept != nil {
		reads = 1
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
				"digest": c.Digest, "source_reads": reads}})
	}
	s.cfg.Log.InfoContext(ctx, "sync: copied again", "table", j.t.ID(), "chunks", len(j.chunks), "whole", true, "rows", rows)
	return len(j.chunks), rows, nil
}

// read streams a recorded chunk from the source in the sync's snapshot, in
// row encoding enc, digesting it as the extractor does; emit gets every
// row, split, and its hash.
func (s *syncer) read(ctx context.Context, t *schema.Table, enc string, index int, ch source.Chunk, emit func(line []byte, fields []proto.Field, h uint64) error) (proto.Digest, error) {
	var d proto.Digest
	task := coordinator.ChunkTask(t, index, 1, ch, s.snap, s.opts)
	task.Encoding = enc
	err := s.src.Read(ctx, task, hashLines(enc, func(line []byte, fields []proto.Field, h uint64) error {
		d.Add(h)
		return emit(line, fields, h)
	}))
	if err != nil {
		return d, fmt.Errorf("sync %s chunk %d: read the source: %w", t.ID(), index, err)
	}
	return d, nil
}

// hashLines hands emit each source row of encoding enc with its fields and
// its proto.RowHash (valid during the call).
func hashLines(enc string, emit func(line []byte, fields []proto.Field, h uint64) error) func(line []byte) error {
	var fields []proto.Field
	var scratch []byte
	var n int64
	return func(line []byte) error {
		n++
		var err error
		if fields, err = proto.SplitRowAs(enc, fields[:0], line); err != nil {
			return fmt.Errorf("row %d: %w", n, err)
		}
		var h uint64
		h, scratch = proto.RowHash(fields, scratch)
		return emit(line, fields, h)
	}
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

// judge judges, with the validator's checks and verdict levels, every
// table the sync copied into or that has no verdict (one an interrupted
// sync touched), after counting it on the source in the sync's snapshot.
// A keyed table whose verdicts all passed before the sync is judged on
// what the sync established without reading it again: each unchanged
// chunk's target digest is the recorded one its verdicts proved, each
// changed chunk's the one proved as it was written. Any other table is
// read again. Tables the sync did not touch keep their verdicts.
func (s *syncer) judge(ctx context.Context, res *Result, jobs []*job) error {
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
	known := map[string][]proto.Digest{}
	for _, j := range jobs {
		if !j.whole && !j.unproved {
			known[j.t.ID()] = append(known[j.t.ID()], j.known...)
		}
	}
	val := validator.New(nil, s.pool, validator.Config{Log: s.cfg.Log})
	// Tables are judged --workers at once: each is counted on the source
	// (a scan of the table), and judging them one after another was most
	// of a sync's time after its last copy.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.Workers)
	for _, out := range res.Tables {
		if judged[out.Table] && !s.touched[out.Table] {
			continue
		}
		t := s.run.Model.Table(sourceName(s.run.Model, out.Table))
		if t == nil {
			return fmt.Errorf("sync: table %s is not in run %s's model", out.Table, s.run.ID)
		}
		perChunk := known[out.Table]
		g.Go(func() error {
			if err := s.count(gctx, t); err != nil {
				return err
			}
			var v *proto.Verdict
			var err error
			if s.passed[out.Table] && len(perChunk) == out.Chunks {
				v, err = val.JudgeKnown(gctx, s.run, out.Table, perChunk)
			} else {
				v, err = val.Judge(gctx, s.run, out.Table)
			}
			if err != nil {
				return err
			}
			out.Judged, out.OK, out.Detail = true, v.OK, v.Detail
			return nil
		})
	}
	return g.Wait()
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
// array a key column, cast to the column's type, read by param (arrayParam
// for a statement, pgutil.BoundSetting for a COPY). FALSE when there are
// none.
func keyList(t *schema.Table, keys [][]string, param func(n int, typ string) string) (string, []any) {
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
		unnest[i] = param(i+1, types[i]+"[]")
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

// arrayParam reads the n-th argument of a statement, a text array, as the
// array type typ.
func arrayParam(n int, typ string) string { return fmt.Sprintf("$%d::text[]::%s", n, typ) }

// passed lists the tables of a run whose every verdict passed.
func passed(ctx context.Context, pool *pgxpool.Pool, run *target.Run) (map[string]bool, error) {
	verdicts, err := target.Verdicts(ctx, pool, run.ID)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, t := range run.Model.Tables {
		out[t.ID()] = validator.Passed(run, verdicts, t.ID())
	}
	return out, nil
}
