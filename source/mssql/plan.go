package mssql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/source"
)

// samplesPerChunk is how many sampled keys stand for one chunk when bounds
// come from TABLESAMPLE: enough that page-level sampling still balances.
const samplesPerChunk = 32

// Plan implements source.Source. The number of chunks follows from the
// row count and rowsPerChunk on every path; the bounds come from the
// primary key's statistics histogram (sys.dm_db_stats_histogram) when it
// can give that many, else from a sample of the key (a page sample on SQL
// Server, every key where it is too small or the engine cannot sample);
// never from NTILE or OFFSET paging; on Babelfish a one-column integer
// key is split evenly between its MIN and MAX (dialect.spacedBounds).
// Every other bound is a real key tuple the engine chose in its own order
// and the key's collation, and chunks
// [nil, b1), [b1, b2), ..., [bn, nil) cover the key space whatever the
// statistics say. Each chunk's Note says which path the table took.
func (s *Source) Plan(ctx context.Context, t *schema.Table, snapshot string, rowsPerChunk int64) ([]source.Chunk, error) {
	keys, ok, err := tableKeys(t)
	if err != nil {
		return nil, err
	}
	if !ok {
		note := "no key: one chunk in " + s.d.heapOrder()
		return []source.Chunk{{Range: proto.RangeAll, EstRows: t.RowEstimate, Note: note}}, nil
	}
	v, err := s.openView(ctx, snapshot)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", t.Source, err)
	}
	chunks, err := s.planKeyed(ctx, v, t, keys, rowsPerChunk)
	if cerr := v.close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", t.Source, scrub(err, s.secrets))
	}
	s.log.Info("mssql plan", "table", t.Source.String(), "chunks", len(chunks), "how", chunks[0].Note)
	return chunks, nil
}

func (s *Source) planKeyed(ctx context.Context, v *view, t *schema.Table, keys []keyCol, rowsPerChunk int64) ([]source.Chunk, error) {
	obj := objectName(t.Source)
	table := tableRef(v.dbName, t.Source)
	rows, err := s.rowCount(ctx, v, obj, table)
	if err != nil {
		return nil, fmt.Errorf("row count: %w", err)
	}
	if rowsPerChunk <= 0 || rows <= rowsPerChunk {
		return []source.Chunk{{Range: proto.RangeKey, EstRows: rows, Note: fmt.Sprintf("%d rows: one chunk", rows)}}, nil
	}
	want := (rows + rowsPerChunk - 1) / rowsPerChunk

	if s.d.spacedBounds(keys) {
		lo, hi, err := s.keyExtent(ctx, v.q, table, keys[0])
		if err != nil {
			return nil, fmt.Errorf("key extent: %w", err)
		}
		bounds := spacedBounds(lo, hi, want)
		note := fmt.Sprintf("%d rows (counted), %d chunks evenly spaced over the key's range [%d, %d] (MIN and MAX; balanced as far as the keys are dense)", rows, len(bounds)+1, lo, hi)
		return notedChunks(chunksFromBounds(bounds, rows), note), nil
	}

	var why string
	if s.d.histogram() {
		bounds, err := s.histogramBounds(ctx, v.q, obj, table, keys, rows, want)
		bounds = dedupeBounds(bounds)
		switch {
		case err != nil:
			why = "statistics histogram not usable (" + scrub(err, s.secrets).Error() + ")"
		case !enoughBounds(len(bounds), want):
			why = fmt.Sprintf("statistics histogram gave %d chunks of %d", len(bounds)+1, want)
		default:
			return notedChunks(chunksFromBounds(bounds, rows), fmt.Sprintf("%d rows (sys.partitions), %d chunks from the statistics histogram", rows, len(bounds)+1)), nil
		}
	} else {
		why = "no statistics histogram on " + s.d.Version
	}

	pct := float64(want*samplesPerChunk) / float64(rows) * 100
	exact := int64(0) // the count is exact in this view when the engine counted it
	if _, byObject := s.d.rowCountSQL(table); !byObject {
		exact = rows
	}
	bounds, n, err := s.sampleBounds(ctx, v.q, table, keys, want, exact, pct)
	if err != nil {
		return nil, err
	}
	how := fmt.Sprintf("a %.4g%% page sample of the key (%d keys)", pct, n)
	if s.d.tablesample(pct) == "" {
		how = fmt.Sprintf("every key (%d)", n)
	} else if !enoughBounds(len(bounds), want) {
		// a page sample of a small or clustered table can come back
		// nearly empty: read every key instead
		if bounds, n, err = s.sampleBounds(ctx, v.q, table, keys, want, 0, 100); err != nil {
			return nil, err
		}
		how = fmt.Sprintf("every key (%d; the page sample was too small)", n)
	}
	bounds = dedupeBounds(bounds)
	counted := "sys.partitions"
	if q, _ := s.d.rowCountSQL(table); q != rowCountSQL {
		counted = "counted"
	}
	note := fmt.Sprintf("%d rows (%s), %d chunks from %s; %s", rows, counted, len(bounds)+1, how, why)
	return notedChunks(chunksFromBounds(bounds, rows), note), nil
}

// keyExtent reads the smallest and largest value of a one-column
// integer key, in the view.
func (s *Source) keyExtent(ctx context.Context, q queryer, table string, k keyCol) (lo, hi int64, err error) {
	var min, max sql.NullInt64
	err = scanAll(ctx, q, keyExtentSQL(table, k), "key extent", func(r *sql.Rows) error { return r.Scan(&min, &max) })
	if err == nil && (!min.Valid || !max.Valid) {
		err = errors.New("no key values (the table emptied since it was counted)")
	}
	return min.Int64, max.Int64, err
}

// spacedBounds splits [lo, hi] into want ranges of equal width and returns
// the bounds between them, fewer when the range holds fewer values than
// want. Arithmetic is exact over the whole bigint range.
func spacedBounds(lo, hi, want int64) [][]string {
	width := new(big.Int).Sub(big.NewInt(hi), big.NewInt(lo))
	width.Add(width, big.NewInt(1))
	var out [][]string
	last := lo
	for i := int64(1); i < want; i++ {
		off := new(big.Int).Mul(width, big.NewInt(i))
		off.Quo(off, big.NewInt(want))
		b := off.Add(off, big.NewInt(lo)).Int64()
		if b <= last {
			continue // a range narrower than want: no empty chunks
		}
		out = append(out, []string{strconv.FormatInt(b, 10)})
		last = b
	}
	return out
}

// enoughBounds says whether bounds give about the chunks wanted: a
// histogram whose steps are coarser than a chunk (one leading value
// holding many rows) gives fewer, and the sample splits inside them.
func enoughBounds(bounds int, want int64) bool { return int64(bounds+1)*10 >= want*9 }

func notedChunks(chunks []source.Chunk, note string) []source.Chunk {
	for i := range chunks {
		chunks[i].Note = note
	}
	return chunks
}

// rowCount is the number of rows planning divides: the catalog's on SQL
// Server, a count on Babelfish (dialect.go).
func (s *Source) rowCount(ctx context.Context, v *view, obj, table string) (int64, error) {
	query, byObject := s.d.rowCountSQL(table)
	arg := []any{}
	q := v.q
	if byObject {
		// catalog metadata of the live database: OBJECT_ID resolves there
		arg, q = append(arg, obj), s.db
	}
	var rows int64
	err := scanAll(ctx, q, query, "row count", func(r *sql.Rows) error { return r.Scan(&rows) }, arg...)
	return rows, err
}

// tableKeys returns the key columns for range reads, or ok=false for a
// table read in one chunk (no primary key, or a key type caravan cannot
// bound).
func tableKeys(t *schema.Table) ([]keyCol, bool, error) {
	if len(t.PrimaryKey) == 0 {
		return nil, false, nil
	}
	cols, err := t.KeyColumns()
	if err != nil {
		return nil, false, err
	}
	keys := make([]keyCol, len(cols))
	for i, c := range cols {
		st, err := parseSQLType(c.SourceType)
		if err != nil {
			return nil, false, fmt.Errorf("table %s key column %q: %w", t.Source, c.Name, err)
		}
		if !st.keyable() {
			return nil, false, nil
		}
		keys[i] = keyCol{Ref: quoteIdent(c.Name), Type: st}
	}
	return keys, true, nil
}

type histStep struct {
	step int
	rows float64
}

// histogramBounds picks histogram steps so that each chunk holds about
// rows/want rows, then asks SQL Server for the first key tuple at each.
func (s *Source) histogramBounds(ctx context.Context, q queryer, obj, table string, keys []keyCol, rows, want int64) ([][]string, error) {
	// statistics are metadata of the live database (OBJECT_ID resolves
	// there); only the bound tuples are read in the view
	var statsID int
	if err := s.db.QueryRowContext(ctx, pkIndexSQL, obj).Scan(&statsID); err != nil {
		return nil, fmt.Errorf("primary key index: %w", err)
	}
	var steps []histStep
	err := scanAll(ctx, s.db, histogramSQL, "statistics histogram", func(r *sql.Rows) error {
		var h histStep
		var rr, eq float64
		err := r.Scan(&h.step, &rr, &eq)
		h.rows = rr + eq
		steps = append(steps, h)
		return err
	}, obj, statsID)
	if err != nil {
		return nil, err
	}
	if int64(len(steps)) < want {
		return nil, fmt.Errorf("%d histogram steps for %d chunks", len(steps), want)
	}
	picked := pickSteps(steps, float64(rows)/float64(want))
	if len(picked) == 0 {
		return nil, nil
	}
	list := make([]string, len(picked))
	for i, p := range picked {
		list[i] = strconv.Itoa(p)
	}
	return s.boundRows(ctx, q, s.d.histogramBoundsSQL(table, keys), keys, 1, nil, obj, statsID, strings.Join(list, ","))
}

// pickSteps returns the steps where the running row count (rows up to and
// including the step's upper key) first reaches each multiple of per; the
// bound is then the first key after that step's upper key. The last step
// is never picked: nothing follows it.
func pickSteps(steps []histStep, per float64) []int {
	var out []int
	var cum float64
	next := per
	for i, h := range steps {
		cum += h.rows
		if cum >= next && i < len(steps)-1 {
			out = append(out, h.step)
			for next <= cum {
				next += per
			}
		}
	}
	return out
}

// sampleBounds takes want-1 evenly spaced keys of a sample of pct percent
// of the pages (every key at 100, or where the engine cannot sample), and
// says how many keys the sample held.
// rows is the table's exact count in this view, or 0 when not known.
func (s *Source) sampleBounds(ctx context.Context, q queryer, table string, keys []keyCol, want, rows int64, pct float64) ([][]string, int64, error) {
	var n int64
	if rows > 0 && s.d.tablesample(pct) == "" {
		bounds, err := s.boundRows(ctx, q, s.d.sampleBoundsSQL(table, keys, pct, true), keys, 0, &n, want, rows)
		return bounds, rows, err
	}
	bounds, err := s.boundRows(ctx, q, s.d.sampleBoundsSQL(table, keys, pct, false), keys, 0, &n, want)
	return bounds, n, err
}

// boundRows runs a bounds query whose key expressions start at column
// skip, and renders each row's key as bound text. A key without an exact
// text form (a string with an unpaired surrogate) is left out: a missing
// split point only makes one chunk bigger.
func (s *Source) boundRows(ctx context.Context, q queryer, query string, keys []keyCol, skip int, extra any, args ...any) ([][]string, error) {
	var out [][]string
	err := scanAll(ctx, q, query, "chunk bounds", func(r *sql.Rows) error {
		vals := make([]any, skip+len(keys), skip+len(keys)+1)
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if extra != nil {
			ptrs = append(ptrs, extra)
		}
		if err := r.Scan(ptrs...); err != nil {
			return err
		}
		b := make([]string, len(keys))
		for i, k := range keys {
			txt, err := keyText(k.Type, vals[skip+i])
			if errors.Is(err, errUnrepresentable) {
				return nil
			}
			if err != nil {
				return err
			}
			b[i] = txt
		}
		out = append(out, b)
		return nil
	}, args...)
	return out, err
}

// dedupeBounds drops repeated tuples (two steps can seek to the same key).
// Bounds arrive in SQL Server's key order, so equal ones are adjacent.
func dedupeBounds(bounds [][]string) [][]string {
	var out [][]string
	for _, b := range bounds {
		if len(out) > 0 && equalTuple(out[len(out)-1], b) {
			continue
		}
		out = append(out, b)
	}
	return out
}

func equalTuple(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// chunksFromBounds makes [nil, b1), [b1, b2), ..., [bn, nil).
func chunksFromBounds(bounds [][]string, rows int64) []source.Chunk {
	n := int64(len(bounds) + 1)
	out := make([]source.Chunk, 0, n)
	var lo []string
	for _, b := range bounds {
		out = append(out, source.Chunk{Range: proto.RangeKey, Lo: lo, Hi: b, EstRows: rows / n})
		lo = b
	}
	return append(out, source.Chunk{Range: proto.RangeKey, Lo: lo, EstRows: rows / n})
}
