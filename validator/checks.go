package validator

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/target"
)

// chunkParallelism is how many chunk ranges of one table are digested at
// once: a digest is CPU-bound, PostgreSQL printing the values and the
// validator hashing them.
const chunkParallelism = 2

// tableCheck holds what the checks of one table share, notably the
// target digests (of the whole table, and per chunk when needed), each a
// scan of the table: they are computed once.
type tableCheck struct {
	v          *Validator
	t          *schema.Table
	chunks     []target.ChunkState
	sourceRows int64 // what the extractors read
	// readsTable: the run asks for the digest level, which reads the whole
	// table back; the count is taken from that read.
	readsTable bool
	// indexed, when not nil, waits until the table is finalized (its key
	// built, so a chunk's range can be read alone) and says whether it is;
	// nil: the table is as finalized as it will be.
	indexed func(context.Context) (bool, error)
	// counted is the source's own count (nil when it could not be taken),
	// how says how it was taken (target.CountSnapshot, CountLive) or why not.
	counted  *int64
	how      string
	whole    *proto.Digest  // nil until computed
	perChunk []proto.Digest // nil until computed
}

// rangeSafe says whether chunks can be re-selected on the target.
func (c *tableCheck) rangeSafe() bool { return c.t.RangeSafe && len(c.t.PrimaryKey) > 0 }

// chunkDigests digests every chunk's key range on the target.
func (c *tableCheck) chunkDigests(ctx context.Context) ([]proto.Digest, error) {
	if c.perChunk != nil {
		return c.perChunk, nil
	}
	out := make([]proto.Digest, len(c.chunks))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(chunkParallelism)
	cols := loadCols(c.t)
	for i, ch := range c.chunks {
		g.Go(func() error {
			where, args := target.KeyRange(c.t, ch, true)
			d, err := target.ReadDigest(gctx, c.v.pool, c.t.Target, c.t.Encoding, cols, where, args...)
			out[i] = d
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	c.perChunk = out
	return out, nil
}

// tableDigest digests the whole target table. It needs no index, so it
// runs while the keys are built: with no WHERE, or, where the chunks' key
// ranges cover the whole key space, as chunkParallelism reads of
// consecutive chunks' ranges at once. Before the key exists each of those
// is a sequential scan of the heap that prints and hashes only its own
// rows: the heap is read twice, the costly part (each value's output
// function, the hash) is shared between two backends and two goroutines.
func (c *tableCheck) tableDigest(ctx context.Context) (proto.Digest, error) {
	if c.whole != nil {
		return *c.whole, nil
	}
	if c.perChunk != nil && coversKeySpace(c.chunks) {
		// Each chunk's digest is known (caravan sync proved them as it
		// wrote): over ranges that cover the key space they add up to the
		// table's.
		var d proto.Digest
		for _, p := range c.perChunk {
			d.Merge(p)
		}
		c.whole = &d
		return d, nil
	}
	parts := [][]target.ChunkState{c.chunks}
	if c.rangeSafe() && coversKeySpace(c.chunks) {
		parts = split(c.chunks, chunkParallelism)
	}
	got := make([]proto.Digest, len(parts))
	g, gctx := errgroup.WithContext(ctx)
	cols := loadCols(c.t)
	for i, part := range parts {
		g.Go(func() error {
			where, args := "TRUE", []any(nil)
			if len(parts) > 1 {
				where, args = target.KeyRange(c.t, target.ChunkState{Lo: part[0].Lo, Hi: part[len(part)-1].Hi}, true)
			}
			var err error
			got[i], err = target.ReadDigest(gctx, c.v.pool, c.t.Target, c.t.Encoding, cols, where, args...)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return proto.Digest{}, err
	}
	var d proto.Digest
	for _, p := range got {
		d.Merge(p)
	}
	c.whole = &d
	return d, nil
}

// split cuts chunks into at most n runs of consecutive chunks, as even in
// rows as the chunks allow: each cut falls before or after the chunk that
// crosses its share, whichever lands nearer.
func split(chunks []target.ChunkState, n int) [][]target.ChunkState {
	weight := func(ch target.ChunkState) float64 { return float64(max(ch.Rows, 1)) }
	var total float64
	for _, ch := range chunks {
		total += weight(ch)
	}
	var out [][]target.ChunkState
	start, acc := 0, 0.0
	for i, ch := range chunks {
		w := weight(ch)
		goal := total * float64(len(out)+1) / float64(n)
		if len(out) < n-1 && i > start && acc+w > goal && goal-acc < acc+w-goal {
			out, start = append(out, chunks[start:i]), i
			goal = total * float64(len(out)+1) / float64(n)
		}
		acc += w
		if len(out) < n-1 && acc >= goal && i < len(chunks)-1 {
			out, start = append(out, chunks[start:i+1]), i+1
		}
	}
	return append(out, chunks[start:])
}

// coversKeySpace checks what reading a table by its chunks' ranges relies
// on rather than trusting the plan: the first chunk open below, the last
// open above, and each chunk starting at the previous one's end, so each
// row of the table, whatever its key, falls in exactly one range.
func coversKeySpace(chunks []target.ChunkState) bool {
	if len(chunks) == 0 || chunks[0].Lo != nil || chunks[len(chunks)-1].Hi != nil {
		return false
	}
	for i := 1; i < len(chunks); i++ {
		if !slices.Equal(chunks[i].Lo, chunks[i-1].Hi) || chunks[i].Lo == nil {
			return false
		}
	}
	return true
}

// count compares the target's rows with the rows the extractors read and
// with the source's own count, taken apart from the chunk plan and the
// reader: a plan or paging bug that never reads some rows agrees with
// itself at every other level, but not with the source.
func (c *tableCheck) count(ctx context.Context) (target.VerdictRow, error) {
	n, err := c.targetRows(ctx)
	if err != nil {
		return target.VerdictRow{}, err
	}
	source := c.sourceRows
	if c.counted != nil {
		source = *c.counted
	}
	r := target.VerdictRow{OK: true, SourceRows: &source, TargetRows: &n}
	var problems []string
	switch {
	case c.counted == nil && c.how == "":
		r.OK = false
		problems = append(problems, "the source was not counted")
	case c.counted == nil:
		r.OK = false
		problems = append(problems, c.how)
	case *c.counted != c.sourceRows && c.how == target.CountLive:
		r.OK = false
		problems = append(problems, fmt.Sprintf("the source now has %d rows and %d were read: it changed during the run (no snapshot held it still), or rows were skipped", *c.counted, c.sourceRows))
	case *c.counted != c.sourceRows:
		r.OK = false
		problems = append(problems, fmt.Sprintf("the source has %d rows in the run's snapshot but %d were read: rows were skipped", *c.counted, c.sourceRows))
	}
	if n != c.sourceRows {
		r.OK = false
		problems = append(problems, fmt.Sprintf("%d rows were read, the target has %d", c.sourceRows, n))
	}
	r.Detail = strings.Join(problems, "; ")
	return r, nil
}

// targetRows counts the target table's rows: from the digest level's read
// of the whole table when the run asks for it, so the table is read once.
func (c *tableCheck) targetRows(ctx context.Context) (int64, error) {
	if c.readsTable {
		d, err := c.tableDigest(ctx)
		return d.Rows, err
	}
	var n int64
	err := c.v.pool.QueryRow(ctx, "SELECT count(*) FROM "+schema.QuoteOnly(c.t.Target)).Scan(&n)
	return n, err
}

// keys looks for duplicate primary keys and, where chunk ranges can be
// re-selected on the target and the digest level does not read the table,
// for chunks whose range holds more or fewer rows than were read (missing
// keys). With the digest level, the table's digest and count equal to
// what was read, and no key twice, already prove every row read is on the
// target once: counting each chunk's range again would prove nothing more.
func (c *tableCheck) keys(ctx context.Context) (target.VerdictRow, error) {
	t := c.t
	r := target.VerdictRow{OK: true, SourceRows: &c.sourceRows}
	if len(t.PrimaryKey) == 0 {
		r.Detail = "no primary key"
		return r, nil
	}
	var problems []string
	enforced, err := c.primaryKeyEnforced(ctx)
	if err != nil {
		return target.VerdictRow{}, err
	}
	if !enforced {
		var dups int64
		q := fmt.Sprintf("SELECT count(*) FROM (SELECT 1 FROM %s GROUP BY %s HAVING count(*) > 1) d", schema.QuoteOnly(t.Target), strings.Join(keyCols(t), ", "))
		if err := c.v.pool.QueryRow(ctx, q).Scan(&dups); err != nil {
			return target.VerdictRow{}, err
		}
		if dups > 0 {
			r.OK = false
			problems = append(problems, fmt.Sprintf("%d duplicate keys", dups))
		}
	}
	if c.rangeSafe() && !c.readsTable {
		got, err := c.chunkDigests(ctx)
		if err != nil {
			return target.VerdictRow{}, err
		}
		for i, ch := range c.chunks {
			if got[i].Rows != ch.Rows && ch.Status != target.StatusFailed {
				r.OK = false
				problems = append(problems, fmt.Sprintf("chunk %d %s: %d keys read, %d on the target", ch.Chunk, rangeText(ch), ch.Rows, got[i].Rows))
			}
		}
	}
	r.Detail = strings.Join(problems, "; ")
	return r, nil
}

// primaryKeyEnforced says whether the target table has a valid primary key
// constraint, which makes duplicate keys impossible and their search moot.
func (c *tableCheck) primaryKeyEnforced(ctx context.Context) (bool, error) {
	var ok bool
	err := c.v.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'p' AND convalidated)`,
		schema.QuoteName(c.t.Target)).Scan(&ok)
	return ok, err
}

// digest recomputes the content digest on the target: the whole table in
// one read, against the sum of the chunks' digests (digests add up). Only
// when they differ, and where PostgreSQL orders keys as the source does,
// is each chunk's range read apart to name the chunks that differ (once
// the table is finalized: a range read wants the key's index).
func (c *tableCheck) digest(ctx context.Context) (target.VerdictRow, error) {
	r := target.VerdictRow{OK: true, SourceRows: &c.sourceRows}
	var total proto.Digest
	var failedChunks bool
	for _, ch := range c.chunks {
		sum, err := proto.ParseDigest(ch.Digest)
		if err != nil {
			return target.VerdictRow{}, fmt.Errorf("chunk %d digest: %w", ch.Chunk, err)
		}
		total.Merge(proto.Digest{Sum: sum, Rows: ch.Rows})
		failedChunks = failedChunks || ch.Status == target.StatusFailed
	}
	got, err := c.tableDigest(ctx)
	if err != nil {
		return target.VerdictRow{}, err
	}
	r.TargetRows = &got.Rows
	if got.Sum == total.Sum && got.Rows == total.Rows && !failedChunks {
		return r, nil
	}
	r.OK = false
	r.Detail = fmt.Sprintf("table content differs: source digest %s over %d rows, target %s over %d", total, total.Rows, got, got.Rows)
	if !c.rangeSafe() {
		return r, nil
	}
	if c.indexed != nil {
		indexed, err := c.indexed(ctx)
		if err != nil || !indexed {
			return r, err // never finalized: its chunks are not read apart
		}
	}
	perChunk, err := c.chunkDigests(ctx)
	if err != nil {
		return target.VerdictRow{}, err
	}
	var problems []string
	for i, ch := range c.chunks {
		if ch.Status == target.StatusFailed {
			// Its load verdict says why; a digest of what never fully
			// arrived would only add noise.
			problems = append(problems, fmt.Sprintf("chunk %d %s: not loaded", ch.Chunk, rangeText(ch)))
			continue
		}
		if perChunk[i].String() != ch.Digest || perChunk[i].Rows != ch.Rows {
			problems = append(problems, fmt.Sprintf("chunk %d %s: content differs (source digest %s over %d rows, target %s over %d)",
				ch.Chunk, rangeText(ch), ch.Digest, ch.Rows, perChunk[i], perChunk[i].Rows))
		}
	}
	if len(problems) > 0 {
		// Else the difference lies outside every chunk's range (a row the
		// plan's ranges do not cover): the table-wide detail says it.
		r.Detail = strings.Join(problems, "; ")
	}
	return r, nil
}

func loadCols(t *schema.Table) []string {
	cols := make([]string, 0, len(t.Columns))
	for _, c := range t.LoadColumns() {
		cols = append(cols, c.TargetName)
	}
	return cols
}

func keyCols(t *schema.Table) []string {
	cols := make([]string, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		cols[i] = schema.Quote(t.TargetColumn(k))
	}
	return cols
}

// chunkWhere re-selects a chunk's key range on the target, with the bounds
// cast to the target key types and bound as target.ReadDigest binds them.
func rangeText(ch target.ChunkState) string {
	lo, hi := "-inf", "+inf"
	if ch.Lo != nil {
		lo = "(" + strings.Join(ch.Lo, ", ") + ")"
	}
	if ch.Hi != nil {
		hi = "(" + strings.Join(ch.Hi, ", ") + ")"
	}
	return "[" + lo + ", " + hi + ")"
}
