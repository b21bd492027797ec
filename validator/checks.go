package validator

import (
	"context"
	"fmt"
	"strings"

	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/target"
)

// count compares the target's rows with the rows the extractors read.
func (v *Validator) count(ctx context.Context, t *schema.Table, _ []target.ChunkState, sourceRows int64) (target.VerdictRow, error) {
	var n int64
	if err := v.pool.QueryRow(ctx, "SELECT count(*) FROM "+schema.QuoteName(t.Target)).Scan(&n); err != nil {
		return target.VerdictRow{}, err
	}
	r := target.VerdictRow{OK: n == sourceRows, SourceRows: &sourceRows, TargetRows: &n}
	if !r.OK {
		r.Detail = fmt.Sprintf("source has %d rows, target %d", sourceRows, n)
	}
	return r, nil
}

// keys looks for duplicate primary keys and, where ranges can be re-selected
// on the target, for chunks whose key range holds fewer or more rows than
// were read (missing keys).
func (v *Validator) keys(ctx context.Context, t *schema.Table, chunks []target.ChunkState, sourceRows int64) (target.VerdictRow, error) {
	if len(t.PrimaryKey) == 0 {
		return target.VerdictRow{OK: true, SourceRows: &sourceRows, Detail: "no primary key"}, nil
	}
	cols := keyCols(t)
	var dups int64
	q := fmt.Sprintf("SELECT count(*) FROM (SELECT 1 FROM %s GROUP BY %s HAVING count(*) > 1) d", schema.QuoteName(t.Target), strings.Join(cols, ", "))
	if err := v.pool.QueryRow(ctx, q).Scan(&dups); err != nil {
		return target.VerdictRow{}, err
	}
	r := target.VerdictRow{OK: dups == 0, SourceRows: &sourceRows}
	var problems []string
	if dups > 0 {
		problems = append(problems, fmt.Sprintf("%d duplicate keys", dups))
	}
	if t.RangeSafe {
		for _, ch := range chunks {
			where, args := v.chunkWhere(t, ch)
			var n int64
			if err := v.pool.QueryRow(ctx, "SELECT count(*) FROM "+schema.QuoteName(t.Target)+" WHERE "+where, args...).Scan(&n); err != nil {
				return target.VerdictRow{}, err
			}
			if n != ch.Rows {
				r.OK = false
				problems = append(problems, fmt.Sprintf("chunk %d %s: %d keys read, %d on the target", ch.Chunk, rangeText(ch), ch.Rows, n))
			}
		}
	}
	r.Detail = strings.Join(problems, "; ")
	return r, nil
}

// digest recomputes the content digest on the target. Where PostgreSQL
// orders keys as the source does, each chunk is compared alone, naming the
// chunk that differs; otherwise the whole table is (digests add up).
func (v *Validator) digest(ctx context.Context, t *schema.Table, chunks []target.ChunkState, sourceRows int64) (target.VerdictRow, error) {
	cols := make([]string, 0, len(t.Columns))
	for _, c := range t.LoadColumns() {
		cols = append(cols, c.TargetName)
	}
	r := target.VerdictRow{OK: true, SourceRows: &sourceRows}
	var problems []string
	var total proto.Digest
	for _, ch := range chunks {
		sum, err := proto.ParseDigest(ch.Digest)
		if err != nil {
			return target.VerdictRow{}, fmt.Errorf("chunk %d digest: %w", ch.Chunk, err)
		}
		total.Merge(proto.Digest{Sum: sum, Rows: ch.Rows})
	}
	if t.RangeSafe && len(t.PrimaryKey) > 0 {
		for _, ch := range chunks {
			where, args := v.chunkWhere(t, ch)
			got, err := target.Digest(ctx, v.pool, t.Target, cols, where, args...)
			if err != nil {
				return target.VerdictRow{}, err
			}
			if got.String() != ch.Digest || got.Rows != ch.Rows {
				r.OK = false
				problems = append(problems, fmt.Sprintf("chunk %d %s: content differs (source digest %s over %d rows, target %s over %d)",
					ch.Chunk, rangeText(ch), ch.Digest, ch.Rows, got, got.Rows))
			}
		}
		r.Detail = strings.Join(problems, "; ")
		r.TargetRows = ptr(total.Rows)
		return r, nil
	}
	got, err := target.Digest(ctx, v.pool, t.Target, cols, "TRUE")
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

func ptr(n int64) *int64 { return &n }

func keyCols(t *schema.Table) []string {
	cols := make([]string, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		cols[i] = schema.Quote(t.TargetColumn(k))
	}
	return cols
}

// chunkWhere re-selects a chunk's key range on the target, with the bounds
// cast to the target key types.
func (v *Validator) chunkWhere(t *schema.Table, ch target.ChunkState) (string, []any) {
	types := make([]string, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		types[i] = t.Column(k).Type
	}
	return pgutil.RangePredicate(keyCols(t), types, ch.Lo, ch.Hi, 0)
}

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
