// Package verify compares a source and a target PostgreSQL at any time,
// whoever loaded the target: it plans chunks on the source as a migrate
// run would, reads each chunk's range on both sides (as binary COPY first
// when both sides hold the same built-in types, else and for whatever
// differs in canonical COPY text), compares row counts and digests
// (proto.RowHash), and narrows every chunk
// that differs down to the rows by key: missing on the target, extra on the
// target, or changed (naming the columns). Tables without a key, or whose
// key ranges cannot be re-selected on the target, are compared whole, as
// multisets of row hashes.
package verify

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/caravan-db/caravan/coordinator"
	"github.com/caravan-db/caravan/internal/every"
	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/source"
	"github.com/caravan-db/caravan/target"
	"github.com/caravan-db/caravan/telemetry"
)

// Kinds of difference.
const (
	Missing = "missing" // on the source, not on the target
	Extra   = "extra"   // on the target, not on the source
	Changed = "changed" // same key, other values
)

// Config shapes a verification.
type Config struct {
	// Options choose the tables, the names on the target, the chunk size
	// and the source's read options, as for a migrate run.
	Options coordinator.Options
	// Workers is how many chunk checks run at once.
	Workers int
	// Sample is the fraction of key-range chunks checked (0 or 1: all).
	// Tables compared whole are always compared.
	Sample float64
	// SubRows is the size of the sub-ranges a chunk that differs is cut
	// into (by the source's keys, as it is read) before rows are compared
	// by key: only the sub-ranges that differ are held in memory.
	SubRows int64
	// MaxRowText caps the row text printed for a keyless difference.
	MaxRowText int
	Log        *slog.Logger
	// Metrics counts the checks run (caravan_checks_total{level="verify"});
	// nil counts nothing.
	Metrics *telemetry.Metrics
	// Progress, when set, is called after each finished check.
	Progress func(done, total int)
}

// Diff is one row that differs.
type Diff struct {
	Kind string
	// Key names the row of a keyed table ("id=5"); Row is the row's text
	// for a table compared as a multiset, Count how many more copies one
	// side holds.
	Key     string
	Columns []string // the changed columns
	Row     string
	Count   int64
}

func (d Diff) String() string {
	switch {
	case d.Key != "" && d.Kind == Changed:
		return fmt.Sprintf("%-8s %s: %s", d.Kind, d.Key, strings.Join(d.Columns, ", "))
	case d.Key != "":
		return fmt.Sprintf("%-8s %s", d.Kind, d.Key)
	}
	return fmt.Sprintf("%-8s x%d %s", d.Kind, d.Count, d.Row)
}

// Table is one table's outcome.
type Table struct {
	Table      string // its id: the qualified target name
	Source     string // the source table's name
	SourceRows int64  // in the chunks checked
	TargetRows int64
	Chunks     int // planned
	Checked    int // chunks checked (the whole table counts as one)
	Differed   int // chunks whose digest differed
	// SubRanges and SubDiffered count the sub-ranges of differing chunks,
	// and those of them compared row by row.
	SubRanges   int
	SubDiffered int
	Whole       string
	// Absent: the table is not on the target at all (SourceRows is the
	// source's count of it).
	Absent bool
	// Columns says how the target's columns differ from those the source's
	// rows would be loaded into ("" when the same): such a table's rows
	// are not compared, its content cannot be the source's.
	Columns string
	Diffs   []Diff
	Seconds float64
}

// OK says whether the table is identical (as far as it was checked).
func (t *Table) OK() bool {
	return !t.Absent && t.Columns == "" && len(t.Diffs) == 0 && t.SourceRows == t.TargetRows
}

// Summary is one line on the table: counts of each kind of difference.
func (t *Table) Summary() string {
	n := map[string]int{}
	for _, d := range t.Diffs {
		n[d.Kind]++
	}
	if t.Absent {
		return fmt.Sprintf("not on the target (the source has %d rows)", t.SourceRows)
	}
	if t.Columns != "" {
		return fmt.Sprintf("other columns on the target: %s (rows not compared; the source has %d rows)", t.Columns, t.SourceRows)
	}
	how := fmt.Sprintf("%d of %d chunks checked, %d differed", t.Checked, t.Chunks, t.Differed)
	if t.SubRanges > 0 {
		how += fmt.Sprintf(", %d of their %d sub-ranges compared by key", t.SubDiffered, t.SubRanges)
	}
	if t.Whole != "" {
		how = "compared whole: " + t.Whole
	}
	if t.OK() {
		return fmt.Sprintf("identical, %d rows (%s)", t.SourceRows, how)
	}
	return fmt.Sprintf("%d missing, %d extra, %d changed; source %d rows, target %d (%s)",
		n[Missing], n[Extra], n[Changed], t.SourceRows, t.TargetRows, how)
}

// Result is a verification's outcome.
type Result struct {
	Tables  []*Table
	Sampled bool
	// Consistency says how the source was read (its snapshot's note).
	Consistency string
	// DB is the planned model (tables, names), for recording the run.
	DB *schema.Database
}

// Identical says whether no checked table differs.
func (r *Result) Identical() bool {
	for _, t := range r.Tables {
		if !t.OK() {
			return false
		}
	}
	return true
}

// Verifier compares one source with one target.
type Verifier struct {
	src  source.Source
	pool *pgxpool.Pool
	cfg  Config
	snap string
}

// New makes a verifier.
func New(src source.Source, pool *pgxpool.Pool, cfg Config) *Verifier {
	cfg.Options.Defaults()
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.SubRows <= 0 {
		cfg.SubRows = 1000
	}
	if cfg.MaxRowText <= 0 {
		cfg.MaxRowText = 200
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Verifier{src: src, pool: pool, cfg: cfg}
}

// check is one unit of work: a chunk of a keyed table, or a whole table.
type check struct {
	t     *Table
	table *schema.Table
	chunk *source.Chunk // nil: the whole table
	index int
	all   []source.Chunk // the whole table's chunks, read one after another
}

// Run plans the source's chunks in one snapshot and checks them in this
// process.
func (v *Verifier) Run(ctx context.Context) (*Result, error) { return v.verify(ctx, v.checkHere) }

// runChecks runs every check, somewhere, and passes each outcome to done
// (which may be called from several goroutines).
type runChecks func(ctx context.Context, checks []*check, done func(*check, outcome)) error

// verify plans the source's chunks in one snapshot, runs the checks with
// exec while the snapshot is held, and adds up their outcomes.
func (v *Verifier) verify(ctx context.Context, exec runChecks) (*Result, error) {
	snap, err := v.src.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("source snapshot: %w", err)
	}
	if snap.Release != nil {
		defer func() { _ = snap.Release(context.WithoutCancel(ctx)) }()
	}
	v.snap = snap.ID
	v.cfg.Log.InfoContext(ctx, "verify: planning chunks on the source", "consistency", snap.Note)
	// verify reads both sides as COPY text (see task), and its recorded
	// model says so.
	opts := v.cfg.Options
	opts.CopyFormat = coordinator.CopyText
	plan, err := coordinator.MakePlan(ctx, v.src, snap.ID, opts)
	if err != nil {
		return nil, err
	}
	res := &Result{DB: plan.DB, Sampled: v.cfg.Sample > 0 && v.cfg.Sample < 1, Consistency: snap.Note}
	var checks []*check
	for _, tp := range plan.Tables {
		t := &Table{Table: tp.Table.ID(), Source: tp.Table.Source.String(), Chunks: len(tp.Chunks)}
		res.Tables = append(res.Tables, t)
		if absent, err := v.absent(ctx, tp.Table); err != nil || absent {
			if err == nil {
				t.Absent = true
				t.SourceRows, _, err = v.src.Count(ctx, tp.Table, snap.ID)
			}
			if err != nil {
				return nil, err
			}
			continue
		}
		var sameTypes bool
		if t.Columns, sameTypes, err = v.columnsDiffer(ctx, tp.Table); err != nil || t.Columns != "" {
			if err == nil {
				t.SourceRows, _, err = v.src.Count(ctx, tp.Table, snap.ID)
			}
			if err != nil {
				return nil, err
			}
			continue
		}
		if sameTypes && v.cfg.Options.CopyFormat != coordinator.CopyText && coordinator.BinaryCopyable(tp.Table) {
			tp.Table.Encoding = proto.EncodingCopyBinary // compared in binary first (compare)
		}
		if byChunk(tp) {
			for i := range tp.Chunks {
				if res.Sampled && rand.Float64() >= v.cfg.Sample {
					continue
				}
				checks = append(checks, &check{t: t, table: tp.Table, chunk: &tp.Chunks[i], index: i})
			}
			continue
		}
		t.Whole = wholeReason(tp.Table)
		checks = append(checks, &check{t: t, table: tp.Table, all: tp.Chunks, index: -1})
	}
	v.cfg.Log.InfoContext(ctx, "verify: checking", "tables", len(res.Tables), "checks", len(checks), "workers", v.cfg.Workers)

	var mu sync.Mutex // guards the tables' fields and done
	done := 0
	err = exec(ctx, checks, func(c *check, out outcome) {
		mu.Lock()
		defer mu.Unlock()
		c.t.add(out)
		done++
		if v.cfg.Progress != nil {
			v.cfg.Progress(done, len(checks))
		}
	})
	if err != nil {
		return nil, err
	}
	for _, t := range res.Tables {
		sortDiffs(t.Diffs)
	}
	return res, nil
}

// add counts one check's outcome into its table.
func (t *Table) add(out outcome) {
	t.SourceRows += out.SourceRows
	t.TargetRows += out.TargetRows
	t.Checked++
	if out.Differed {
		t.Differed++
	}
	t.SubRanges += out.SubRanges
	t.SubDiffered += out.SubDiffered
	t.Diffs = append(t.Diffs, out.Diffs...)
	t.Seconds += out.Seconds
}

// checkHere runs the checks in this process, Workers at once.
func (v *Verifier) checkHere(ctx context.Context, checks []*check, finish func(*check, outcome)) error {
	var mu sync.Mutex // guards done and busy
	done, busy := 0, map[*check]time.Time{}
	stopTalking := v.sayWhatItDoes(ctx, &mu, &done, busy, len(checks))
	defer stopTalking()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(v.cfg.Workers)
	for _, c := range checks {
		g.Go(func() error {
			mu.Lock()
			busy[c] = time.Now()
			mu.Unlock()
			start := time.Now()
			out, err := v.run(gctx, c)
			if err != nil {
				return err
			}
			out.Seconds = time.Since(start).Seconds()
			finish(c, out)
			mu.Lock()
			defer mu.Unlock()
			delete(busy, c)
			done++
			return nil
		})
	}
	return g.Wait()
}

// sayWhatItDoes logs, every waitNote, how far the checks are and which
// run longest, so a long comparison never runs in silence. The returned
// function stops it.
func (v *Verifier) sayWhatItDoes(ctx context.Context, mu *sync.Mutex, done *int, busy map[*check]time.Time, total int) func() {
	return every.Do(ctx, waitNote, false, func(ctx context.Context) {
		mu.Lock()
		var oldest *check
		for c, at := range busy {
			if oldest == nil || at.Before(busy[oldest]) {
				oldest = c
			}
		}
		n, inFlight := *done, len(busy)
		what, since := "", time.Duration(0)
		if oldest != nil {
			what, since = oldest.name(), time.Since(busy[oldest]).Round(time.Second)
		}
		mu.Unlock()
		v.cfg.Log.InfoContext(ctx, "verify: still checking", "checked", n, "of", total, "in_progress", inFlight,
			"longest", what, "for", since.String())
	})
}

// waitNote is how often a verification says how far it is.
const waitNote = 30 * time.Second

func (c *check) name() string {
	if c.chunk == nil {
		return c.t.Table + " (whole)"
	}
	return fmt.Sprintf("%s chunk %d", c.t.Table, c.index)
}

// absent says whether a table is missing from the target: a difference to
// report, not an error that stops the comparison of the others.
func (v *Verifier) absent(ctx context.Context, t *schema.Table) (bool, error) {
	var exists bool
	if err := v.pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", schema.QuoteName(t.Target)).Scan(&exists); err != nil {
		return false, fmt.Errorf("verify %s: look for it on the target: %w", t.ID(), err)
	}
	return !exists, nil
}

// columnsDiffer compares the target table's columns with those the
// source's rows load into, by target name: a column missing would make
// every read of the target fail, an extra one makes the table not the
// source's. It names the differences, or returns ""; sameTypes says
// whether every column also has the type the source's rows load as.
func (v *Verifier) columnsDiffer(ctx context.Context, t *schema.Table) (_ string, sameTypes bool, _ error) {
	rows, err := v.pool.Query(ctx, `SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
		WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped AND attgenerated = ''`, schema.QuoteName(t.Target))
	if err != nil {
		return "", false, fmt.Errorf("verify %s: read its columns on the target: %w", t.ID(), err)
	}
	var have []string
	typeOf := map[string]string{}
	var name, typ string
	_, err = pgx.ForEachRow(rows, []any{&name, &typ}, func() error {
		have, typeOf[name] = append(have, name), typ
		return nil
	})
	if err != nil {
		return "", false, fmt.Errorf("verify %s: read its columns on the target: %w", t.ID(), err)
	}
	want := loadCols(t)
	var missing, extra []string
	for _, c := range want {
		if !slices.Contains(have, c) {
			missing = append(missing, c)
		}
	}
	for _, c := range have {
		if !slices.Contains(want, c) {
			extra = append(extra, c)
		}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "missing "+strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		parts = append(parts, "not on the source "+strings.Join(extra, ", "))
	}
	sameTypes = true
	for _, c := range t.LoadColumns() {
		sameTypes = sameTypes && typeOf[c.TargetName] == c.Type
	}
	return strings.Join(parts, "; "), sameTypes, nil
}

// byChunk says whether a table is checked chunk by chunk: its chunks are
// key ranges that PostgreSQL re-selects on the target exactly.
func byChunk(tp *coordinator.TablePlan) bool {
	if len(tp.Table.PrimaryKey) == 0 || !tp.Table.RangeSafe || len(tp.Chunks) == 0 {
		return false
	}
	for _, ch := range tp.Chunks {
		if ch.Range != proto.RangeKey {
			return false
		}
	}
	return true
}

func wholeReason(t *schema.Table) string {
	switch {
	case len(t.PrimaryKey) == 0:
		return "no primary key, rows compared as a multiset"
	case !t.RangeSafe:
		return "key ranges cannot be re-selected on the target, rows compared by key"
	}
	return "rows compared by key"
}

// outcome is what one check found; a distributed verification stores it
// as JSON in caravan.checks.
type outcome struct {
	SourceRows, TargetRows int64
	Differed               bool `json:",omitempty"`
	SubRanges, SubDiffered int  `json:",omitempty"`
	Diffs                  []Diff
	Seconds                float64
}

// task is the ChunkTask the source reads a chunk with, as the coordinator
// publishes it for a migrate run.
func (v *Verifier) task(t *schema.Table, index int, ch source.Chunk, enc string) *proto.ChunkTask {
	task := coordinator.ChunkTask(t, index, 1, ch, v.snap, v.cfg.Options.SourceOptions)
	task.Encoding = enc
	return task
}

// readSource streams a chunk's rows with their hashes, as COPY text:
// differing rows are named by their key and text, whatever encoding a
// migration of the table used.
func (v *Verifier) readSource(ctx context.Context, t *schema.Table, index int, ch source.Chunk, emit func(line []byte, h uint64) error) error {
	return v.readSourceAs(ctx, t, index, ch, proto.EncodingCopyText, emit)
}

// readSourceAs is readSource in row encoding enc.
func (v *Verifier) readSourceAs(ctx context.Context, t *schema.Table, index int, ch source.Chunk, enc string, emit func(line []byte, h uint64) error) error {
	var fields []proto.Field
	var scratch []byte
	var n int64
	err := v.src.Read(ctx, v.task(t, index, ch, enc), func(line []byte) error {
		n++
		var err error
		if fields, err = proto.SplitRowAs(enc, fields[:0], line); err != nil {
			return fmt.Errorf("source row %d: %w", n, err)
		}
		var h uint64
		h, scratch = proto.RowHash(fields, scratch)
		return emit(line, h)
	})
	if err != nil {
		return fmt.Errorf("verify %s chunk %d: read source: %w", t.ID(), index, err)
	}
	return nil
}

// readTarget streams the target rows of a range (nil: the whole table),
// as COPY text.
func (v *Verifier) readTarget(ctx context.Context, t *schema.Table, ch *source.Chunk, emit func(line []byte, h uint64) error) error {
	return v.readTargetAs(ctx, t, ch, proto.EncodingCopyText, emit)
}

// readTargetAs is readTarget in row encoding enc.
func (v *Verifier) readTargetAs(ctx context.Context, t *schema.Table, ch *source.Chunk, enc string, emit func(line []byte, h uint64) error) error {
	where, args := "TRUE", []any(nil)
	if ch != nil {
		where, args = rangeWhere(t, ch)
	}
	if err := target.ReadLines(ctx, v.pool, t.Target, enc, loadCols(t), where, args, emit); err != nil {
		return fmt.Errorf("verify %s: read target: %w", t.ID(), err)
	}
	return nil
}

// run runs one check and counts it in the check metrics (level "verify",
// ok when the range is identical), in whichever process runs it.
func (v *Verifier) run(ctx context.Context, c *check) (outcome, error) {
	out, err := v.compare(ctx, c)
	if err == nil {
		v.cfg.Metrics.Check(ctx, c.table.ID(), "verify", !out.Differed && len(out.Diffs) == 0 && out.SourceRows == out.TargetRows)
	}
	return out, err
}

func (v *Verifier) compare(ctx context.Context, c *check) (outcome, error) {
	if c.table.Encoding == proto.EncodingCopyBinary {
		// Both sides hold the same built-in types: binary COPY spares
		// PostgreSQL printing every value twice. Equal binary digests
		// prove the range identical; a difference, which may be one of
		// representation only (a NaN's bits), is judged and named in text.
		src, dst, err := v.digests(ctx, c, proto.EncodingCopyBinary)
		if err != nil {
			return outcome{}, err
		}
		if src == dst {
			return outcome{SourceRows: src.Rows, TargetRows: dst.Rows}, nil
		}
		v.cfg.Log.InfoContext(ctx, "verify: differs read as binary, comparing it as text", "table", c.t.Table, "chunk", c.index,
			"source_rows", src.Rows, "target_rows", dst.Rows)
	}
	if c.chunk != nil {
		return v.checkChunk(ctx, c)
	}
	// Whole: stream both sides' digests first, so an identical table,
	// however large, costs one read a side and no memory.
	src, dst, err := v.digests(ctx, c, proto.EncodingCopyText)
	if err != nil {
		return outcome{}, err
	}
	if src == dst {
		return outcome{SourceRows: src.Rows, TargetRows: dst.Rows}, nil
	}
	v.cfg.Log.InfoContext(ctx, "verify: table differs, comparing its rows", "table", c.t.Table, "source_rows", src.Rows, "target_rows", dst.Rows)
	if len(c.table.PrimaryKey) == 0 {
		return v.checkMultiset(ctx, c)
	}
	return v.checkByKey(ctx, c, nil)
}

// digests reads a check's range (its chunk, or the whole table) on both
// sides at once in row encoding enc.
func (v *Verifier) digests(ctx context.Context, c *check, enc string) (src, dst proto.Digest, err error) {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if c.chunk != nil {
			return v.readSourceAs(gctx, c.table, c.index, *c.chunk, enc, func(_ []byte, h uint64) error { src.Add(h); return nil })
		}
		for i, ch := range c.all {
			if err := v.readSourceAs(gctx, c.table, i, ch, enc, func(_ []byte, h uint64) error { src.Add(h); return nil }); err != nil {
				return err
			}
		}
		return nil
	})
	g.Go(func() error {
		return v.readTargetAs(gctx, c.table, c.chunk, enc, func(_ []byte, h uint64) error { dst.Add(h); return nil })
	})
	err = g.Wait()
	return src, dst, err
}

// checkChunk compares a key range's counts and digests. The source side
// is cut, as it streams, into sub-ranges of SubRows rows at the keys that
// begin them; when the chunk differs, each sub-range is digested on the
// target, and only those that differ are read again row by row.
func (v *Verifier) checkChunk(ctx context.Context, c *check) (outcome, error) {
	keyAt, err := keyPositions(c.table)
	if err != nil {
		return outcome{}, err
	}
	var src, dst proto.Digest
	subs := []subRange{{lo: c.chunk.Lo}}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return v.readSource(gctx, c.table, c.index, *c.chunk, func(line []byte, h uint64) error {
			last := &subs[len(subs)-1]
			if last.digest.Rows == v.cfg.SubRows {
				lo, err := keyValues(c.table, keyAt, line)
				if err != nil {
					return err
				}
				subs = append(subs, subRange{lo: lo})
				last = &subs[len(subs)-1]
			}
			last.digest.Add(h)
			src.Add(h)
			return nil
		})
	})
	g.Go(func() error {
		return v.readTarget(gctx, c.table, c.chunk, func(_ []byte, h uint64) error { dst.Add(h); return nil })
	})
	if err := g.Wait(); err != nil {
		return outcome{}, err
	}
	if src == dst {
		return outcome{SourceRows: src.Rows, TargetRows: dst.Rows}, nil
	}
	for i := range subs {
		subs[i].hi = c.chunk.Hi
		if i+1 < len(subs) {
			subs[i].hi = subs[i+1].lo
		}
	}
	v.cfg.Log.InfoContext(ctx, "verify: chunk differs, narrowing it down", "table", c.t.Table, "chunk", c.index,
		"source_rows", src.Rows, "target_rows", dst.Rows, "sub_ranges", len(subs))
	out := outcome{SourceRows: src.Rows, TargetRows: dst.Rows, Differed: true, SubRanges: len(subs)}
	for _, sub := range subs {
		r := &source.Chunk{Range: proto.RangeKey, Lo: sub.lo, Hi: sub.hi}
		if len(subs) > 1 {
			where, args := rangeWhere(c.table, r)
			got, err := target.ReadDigest(ctx, v.pool, c.table.Target, proto.EncodingCopyText, loadCols(c.table), where, args...)
			if err != nil {
				return outcome{}, fmt.Errorf("verify %s chunk %d: %w", c.t.Table, c.index, err)
			}
			if got == sub.digest {
				continue
			}
		}
		out.SubDiffered++
		rows, err := v.checkByKey(ctx, c, r)
		if err != nil {
			return outcome{}, err
		}
		out.Diffs = append(out.Diffs, rows.Diffs...)
	}
	return out, nil
}

// subRange is part of a chunk, [lo, hi) in key order, with the source's
// digest of it.
type subRange struct {
	lo, hi []string
	digest proto.Digest
}

// row is a row kept for a comparison by key.
type row struct {
	hash uint64
	line string
}

// checkByKey compares rows by key over a chunk's range (or the whole table
// when ch is nil), holding the source side's rows in memory.
func (v *Verifier) checkByKey(ctx context.Context, c *check, ch *source.Chunk) (outcome, error) {
	keyAt, err := keyPositions(c.table)
	if err != nil {
		return outcome{}, err
	}
	var out outcome
	rows := map[string]row{}
	keep := func(line []byte, h uint64) error {
		k, err := keyText(c.table, keyAt, line)
		if err != nil {
			return err
		}
		rows[k] = row{hash: h, line: string(line)}
		out.SourceRows++
		return nil
	}
	if ch != nil {
		err = v.readSource(ctx, c.table, c.index, *ch, keep)
	} else {
		for i, whole := range c.all {
			if err = v.readSource(ctx, c.table, i, whole, keep); err != nil {
				break
			}
		}
	}
	if err != nil {
		return outcome{}, err
	}
	seen := map[string]bool{}
	cols := loadCols(c.table)
	err = v.readTarget(ctx, c.table, ch, func(line []byte, h uint64) error {
		out.TargetRows++
		k, err := keyText(c.table, keyAt, line)
		if err != nil {
			return err
		}
		if seen[k] {
			out.Diffs = append(out.Diffs, Diff{Kind: Extra, Key: k + " (duplicate)"})
			return nil
		}
		seen[k] = true
		s, ok := rows[k]
		switch {
		case !ok:
			out.Diffs = append(out.Diffs, Diff{Kind: Extra, Key: k})
		case s.hash != h:
			changed, err := changedColumns(cols, []byte(s.line), line)
			if err != nil {
				return err
			}
			out.Diffs = append(out.Diffs, Diff{Kind: Changed, Key: k, Columns: changed})
		}
		return nil
	})
	if err != nil {
		return outcome{}, err
	}
	for k := range rows {
		if !seen[k] {
			out.Diffs = append(out.Diffs, Diff{Kind: Missing, Key: k})
		}
	}
	return out, nil
}

// checkMultiset compares a table without a key as multisets of row
// hashes; a second read fetches the text of the rows that differ.
func (v *Verifier) checkMultiset(ctx context.Context, c *check) (outcome, error) {
	var out outcome
	balance := map[uint64]int64{} // source copies minus target copies
	readSource := func(emit func(line []byte, h uint64) error) error {
		for i, ch := range c.all {
			if err := v.readSource(ctx, c.table, i, ch, emit); err != nil {
				return err
			}
		}
		return nil
	}
	err := readSource(func(_ []byte, h uint64) error { balance[h]++; out.SourceRows++; return nil })
	if err != nil {
		return outcome{}, err
	}
	if err := v.readTarget(ctx, c.table, nil, func(_ []byte, h uint64) error { balance[h]--; out.TargetRows++; return nil }); err != nil {
		return outcome{}, err
	}
	for h, n := range balance {
		if n == 0 {
			delete(balance, h)
		}
	}
	if len(balance) == 0 {
		return out, nil
	}
	text := map[uint64]string{}
	name := func(line []byte, h uint64) error {
		if _, differs := balance[h]; differs {
			if _, named := text[h]; !named {
				text[h] = truncate(strings.TrimSuffix(string(line), "\n"), v.cfg.MaxRowText)
			}
		}
		return nil
	}
	if err := readSource(name); err != nil {
		return outcome{}, err
	}
	if err := v.readTarget(ctx, c.table, nil, name); err != nil {
		return outcome{}, err
	}
	for h, n := range balance {
		d := Diff{Kind: Missing, Row: text[h], Count: n}
		if n < 0 {
			d.Kind, d.Count = Extra, -n
		}
		out.Diffs = append(out.Diffs, d)
	}
	return out, nil
}

// keyPositions finds the key columns among the load columns.
func keyPositions(t *schema.Table) ([]int, error) {
	load := t.LoadColumns()
	out := make([]int, 0, len(t.PrimaryKey))
	for _, k := range t.PrimaryKey {
		at := -1
		for i, c := range load {
			if c.Name == k {
				at = i
			}
		}
		if at < 0 {
			return nil, fmt.Errorf("verify %s: key column %q is not loaded", t.ID(), k)
		}
		out = append(out, at)
	}
	return out, nil
}

// keyValues are a row's key values as text: the bounds of a sub-range,
// which the source and the target cast to their key types as they do the
// planner's chunk bounds.
func keyValues(t *schema.Table, at []int, line []byte) ([]string, error) {
	fields, err := proto.SplitRow(nil, line)
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", t.ID(), err)
	}
	return keyOfFields(t, at, fields, line)
}

// keyOfFields is keyValues of a line already split into fields.
func keyOfFields(t *schema.Table, at []int, fields []proto.Field, line []byte) ([]string, error) {
	out := make([]string, len(at))
	for i, p := range at {
		if p >= len(fields) || fields[p].Null {
			return nil, fmt.Errorf("verify %s: a row without its key (column %d): %q", t.ID(), p, truncate(string(line), 200))
		}
		out[i] = string(fields[p].Value)
	}
	return out, nil
}

// keyText names a row by its key: "id=5", "a=1, b=x".
func keyText(t *schema.Table, at []int, line []byte) (string, error) {
	fields, err := proto.SplitRow(nil, line)
	if err != nil {
		return "", fmt.Errorf("verify %s: %w", t.ID(), err)
	}
	load := t.LoadColumns()
	parts := make([]string, len(at))
	for i, p := range at {
		if p >= len(fields) {
			return "", fmt.Errorf("verify %s: row has %d values, key column %d", t.ID(), len(fields), p)
		}
		val := string(fields[p].Value)
		if fields[p].Null {
			val = "NULL"
		}
		parts[i] = load[p].TargetName + "=" + val
	}
	return strings.Join(parts, ", "), nil
}

// changedColumns names the columns whose values differ between two lines.
func changedColumns(cols []string, a, b []byte) ([]string, error) {
	fa, err := proto.SplitRow(nil, a)
	if err != nil {
		return nil, err
	}
	fb, err := proto.SplitRow(nil, b)
	if err != nil {
		return nil, err
	}
	var out []string
	for i := range cols {
		if i >= len(fa) || i >= len(fb) || fa[i].Null != fb[i].Null || string(fa[i].Value) != string(fb[i].Value) {
			out = append(out, cols[i])
		}
	}
	return out, nil
}

func loadCols(t *schema.Table) []string {
	cols := make([]string, 0, len(t.Columns))
	for _, c := range t.LoadColumns() {
		cols = append(cols, c.TargetName)
	}
	return cols
}

// rangeWhere re-selects a chunk's key range on the target, with the bounds
// cast to the target key types, as the validator does.
func rangeWhere(t *schema.Table, ch *source.Chunk) (string, []any) {
	keys := make([]string, len(t.PrimaryKey))
	types := make([]string, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		keys[i] = schema.Quote(t.TargetColumn(k))
		types[i] = t.Column(k).Type
	}
	return pgutil.RangePredicateWith(keys, types, ch.Lo, ch.Hi, pgutil.BoundSetting)
}

// truncate cuts s to at most n bytes, on a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// naturalLess orders text with runs of digits compared as numbers, so
// id=9 comes before id=10 (a negative sign aside: keys are for reading).
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func digits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// sortDiffs orders differences by kind, then key or row, so the output is
// stable whatever order the checks finished in.
func sortDiffs(ds []Diff) {
	rank := map[string]int{Missing: 0, Extra: 1, Changed: 2}
	sort.SliceStable(ds, func(i, j int) bool {
		if ds[i].Kind != ds[j].Kind {
			return rank[ds[i].Kind] < rank[ds[j].Kind]
		}
		if ds[i].Key != ds[j].Key {
			return naturalLess(ds[i].Key, ds[j].Key)
		}
		return ds[i].Row < ds[j].Row
	})
}
