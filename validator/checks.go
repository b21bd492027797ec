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
// per-chunk target digests, which both the keys and digest levels read and
// which cost a scan of the table: they are computed once.
type tableCheck struct {
	v          *Validator
	t          *schema.Table
	chunks     []target.ChunkState
	sourceRows int64 // what the extractors read
	// readsChunks: the digest level reads every chunk back, and the count
	// is taken from that read.
	readsChunks bool
	// counted is the source's own count (nil when it could not be taken),
	// how says how it was taken (target.CountSnapshot, CountLive) or why not.
	counted  *int64
	how      string
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
			d, err := target.ReadDigest(gctx, c.v.pool, c.t.Target, cols, where, args...)
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

// targetRows counts the target table's rows. When the digest level reads
// every chunk back anyway, the chunks' row counts are the count: the
// chunks' key ranges cover the whole key space, lower bound of the first
// and upper bound of the last open, each next one starting where the last
// ended, so each row falls in exactly one. That spares the table a scan
// (on a freshly loaded table, the costliest: it sets every hint bit).
func (c *tableCheck) targetRows(ctx context.Context) (int64, error) {
	if c.readsChunks && c.rangeSafe() && coversKeySpace(c.chunks) {
		got, err := c.chunkDigests(ctx)
		if err != nil {
			return 0, err
		}
		var n int64
		for _, d := range got {
			n += d.Rows
		}
		return n, nil
	}
	var n int64
	err := c.v.pool.QueryRow(ctx, "SELECT count(*) FROM "+schema.QuoteOnly(c.t.Target)).Scan(&n)
	return n, err
}

// coversKeySpace checks what targetRows relies on rather than trusting the
// plan: the first chunk open below, the last open above, and each chunk
// starting at the previous one's end.
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

// keys looks for duplicate primary keys and, where chunk ranges can be
// re-selected on the target, for chunks whose range holds more or fewer
// rows than were read (missing keys).
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
	if c.rangeSafe() {
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

// digest recomputes the content digest on the target. Where PostgreSQL
// orders keys as the source does, each chunk is compared alone, naming the
// chunk that differs; otherwise the whole table is (digests add up).
func (c *tableCheck) digest(ctx context.Context) (target.VerdictRow, error) {
	r := target.VerdictRow{OK: true, SourceRows: &c.sourceRows}
	var total proto.Digest
	for _, ch := range c.chunks {
		sum, err := proto.ParseDigest(ch.Digest)
		if err != nil {
			return target.VerdictRow{}, fmt.Errorf("chunk %d digest: %w", ch.Chunk, err)
		}
		total.Merge(proto.Digest{Sum: sum, Rows: ch.Rows})
	}
	if c.rangeSafe() {
		got, err := c.chunkDigests(ctx)
		if err != nil {
			return target.VerdictRow{}, err
		}
		var problems []string
		var rows int64
		for i, ch := range c.chunks {
			rows += got[i].Rows
			if ch.Status == target.StatusFailed {
				// Its load verdict says why; a digest of what never fully
				// arrived would only add noise.
				r.OK = false
				problems = append(problems, fmt.Sprintf("chunk %d %s: not loaded", ch.Chunk, rangeText(ch)))
				continue
			}
			if got[i].String() != ch.Digest || got[i].Rows != ch.Rows {
				r.OK = false
				problems = append(problems, fmt.Sprintf("chunk %d %s: content differs (source digest %s over %d rows, target %s over %d)",
					ch.Chunk, rangeText(ch), ch.Digest, ch.Rows, got[i], got[i].Rows))
			}
		}
		r.Detail = strings.Join(problems, "; ")
		r.TargetRows = &rows
		return r, nil
	}
	got, err := target.ReadDigest(ctx, c.v.pool, c.t.Target, loadCols(c.t), "TRUE")
	if err != nil {
		return target.VerdictRow{}, err
	}
	r.TargetRows = &got.Rows
	if got.Sum != total.Sum || got.Rows != total.Rows {
		r.OK = false
		r.Detail = fmt.Sprintf("table content differs: source digest %s over %d rows, target %s over %d", total, total.Rows, got, got.Rows)
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
