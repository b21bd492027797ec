package mssql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/source"
)

// samplesPerChunk is how many sampled keys stand for one chunk when bounds
// come from TABLESAMPLE: enough that page-level sampling still balances.
const samplesPerChunk = 32

// Plan implements source.Source. Bounds come from the primary key's
// statistics histogram (sys.dm_db_stats_histogram) or, when that is
// missing or too coarse, from a page sample; never from NTILE or OFFSET
// over the whole table. Every bound is a real key tuple SQL Server chose in
// its own order, and chunks [nil, b1), [b1, b2), ..., [bn, nil) cover the
// key space whatever the statistics say.
func (s *Source) Plan(ctx context.Context, t *schema.Table, snapshot string, rowsPerChunk int64) ([]source.Chunk, error) {
	keys, ok, err := tableKeys(t)
	if err != nil {
		return nil, err
	}
	if !ok {
		return []source.Chunk{{Range: proto.RangeAll, EstRows: t.RowEstimate}}, nil
	}
	obj := objectName(t.Source)
	var rows int64
	if err := s.db.QueryRowContext(ctx, rowCountSQL, obj).Scan(&rows); err != nil {
		return nil, fmt.Errorf("plan %s: row count: %w", t.Source, scrub(err, s.secrets))
	}
	if rowsPerChunk <= 0 || rows <= rowsPerChunk {
		return []source.Chunk{{Range: proto.RangeKey, EstRows: rows}}, nil
	}
	want := (rows + rowsPerChunk - 1) / rowsPerChunk

	v, err := s.openView(ctx, snapshot)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", t.Source, err)
	}
	table := tableRef(v.dbName, t.Source)
	bounds, err := s.histogramBounds(ctx, v.q, obj, table, keys, rows, want)
	if err != nil || len(bounds) == 0 {
		if err != nil {
			s.log.Info("mssql plan: statistics histogram not usable, sampling instead", "table", t.Source.String(), "reason", scrub(err, s.secrets).Error())
		}
		bounds, err = s.sampleBounds(ctx, v.q, table, keys, rows, want)
	}
	if cerr := v.close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", t.Source, scrub(err, s.secrets))
	}
	return chunksFromBounds(dedupeBounds(bounds), rows), nil
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
	return s.boundRows(ctx, q, histogramBoundsSQL(table, keys), keys, 1, obj, statsID, strings.Join(list, ","))
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

// sampleBounds takes every samplesPerChunk-th key of a page sample.
func (s *Source) sampleBounds(ctx context.Context, q queryer, table string, keys []keyCol, rows, want int64) ([][]string, error) {
	pct := float64(want*samplesPerChunk) / float64(rows) * 100
	if pct > 100 {
		pct = 100
	}
	if pct < 0.000001 {
		pct = 0.000001
	}
	return s.boundRows(ctx, q, sampleBoundsSQL(table, keys, pct), keys, 0, int64(samplesPerChunk))
}

// boundRows runs a bounds query whose key expressions start at column
// skip, and renders each row's key as bound text. A key without an exact
// text form (a string with an unpaired surrogate) is left out: a missing
// split point only makes one chunk bigger.
func (s *Source) boundRows(ctx context.Context, q queryer, query string, keys []keyCol, skip int, args ...any) ([][]string, error) {
	var out [][]string
	err := scanAll(ctx, q, query, "chunk bounds", func(r *sql.Rows) error {
		vals := make([]any, skip+len(keys))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
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
