package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/source"
)

// samplesPerChunk is how many sampled keys back each chunk boundary: enough
// that a chunk's size is within a few percent of the target on any key
// distribution, few enough that sampling is cheap next to the copy.
const samplesPerChunk = 32

// Plan splits a table into chunks of about rowsPerChunk rows, inside the
// run's snapshot. Keyed tables get boundaries at quantiles of a random
// sample of their keys (even chunks on skewed, sparse, composite, text and
// uuid keys alike); keyless tables get ctid block ranges.
func (s *Source) Plan(ctx context.Context, t *schema.Table, snapshot string, rowsPerChunk int64) ([]source.Chunk, error) {
	tx, err := s.readTx(ctx, snapshot)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", t.Source, err)
	}
	defer tx.Rollback(ctx)

	if t.Partitioned() {
		// Its rows are its partitions', each planned as a table of its own;
		// the one chunk reads its own rows: none.
		return []source.Chunk{{Range: proto.RangeAll}}, nil
	}
	rows, err := rowCount(ctx, tx, t, rowsPerChunk)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", t.Source, err)
	}
	n := int64(math.Ceil(float64(rows) / float64(max(rowsPerChunk, 1))))
	if len(t.PrimaryKey) == 0 {
		return planPhysical(ctx, tx, t, rows, n)
	}
	if n <= 1 {
		return []source.Chunk{{Range: proto.RangeKey, EstRows: rows}}, nil
	}
	return planKeys(ctx, tx, t, rows, n)
}

// rowCount trusts the catalog's estimate once a table has been analysed
// and is not tiny (it only sizes chunks and progress bars; the rows copied
// are counted exactly as they are read), and counts the rest, where the
// estimate is zero or meaningless.
func rowCount(ctx context.Context, tx pgx.Tx, t *schema.Table, rowsPerChunk int64) (int64, error) {
	if t.RowEstimate > rowsPerChunk {
		return t.RowEstimate, nil
	}
	var n int64
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+schema.QuoteOnly(t.Source)).Scan(&n); err != nil {
		return 0, fmt.Errorf("count rows: %w", err)
	}
	return n, nil
}

func planKeys(ctx context.Context, tx pgx.Tx, t *schema.Table, rows, n int64) ([]source.Chunk, error) {
	if tx.Conn().PgConn().ParameterStatus("server_encoding") == sqlASCII {
		// A SQL_ASCII server refuses to send text that is not UTF-8 to a
		// UTF8 client, and a key may hold such bytes: sample them as the
		// bytes they are (validBounds keeps only UTF-8 ones as bounds).
		if _, err := tx.Exec(ctx, "SET LOCAL client_encoding TO 'SQL_ASCII'"); err != nil {
			return nil, fmt.Errorf("sample keys: %w", err)
		}
		defer func() { _, _ = tx.Exec(ctx, "SET LOCAL client_encoding TO 'UTF8'") }()
	}
	if bounds, err := histogram(ctx, tx, t); err != nil {
		return nil, err
	} else if int64(len(bounds)) > 2*n {
		// ANALYZE already sampled the key: its histogram gives the
		// quantiles without reading the table again.
		samples := make([][]string, len(bounds))
		for i, b := range bounds {
			samples[i] = []string{b}
		}
		return chunksFromSamples(samples, rows, n), nil
	}
	keys := quotedCols(t.PrimaryKey)
	texts := make([]string, len(keys))
	for i, k := range keys {
		// Aliased: ORDER BY "id" would otherwise sort by the text output column.
		texts[i] = fmt.Sprintf("%s::text AS k%d", k, i)
	}
	pct := math.Min(100, 100*float64(n*samplesPerChunk)/float64(max(rows, 1)))
	method := "BERNOULLI"
	if rows > 20_000_000 {
		// Row sampling reads every page; block sampling reads only the pages
		// it picks, which is what makes planning huge tables cheap.
		method = "SYSTEM"
	}
	q := fmt.Sprintf("SELECT %s FROM %s TABLESAMPLE %s ($1) ORDER BY %s",
		strings.Join(texts, ", "), schema.QuoteOnly(t.Source), method, strings.Join(keys, ", "))
	res, err := tx.Query(ctx, q, pct)
	if err != nil {
		return nil, fmt.Errorf("sample keys: %w", err)
	}
	samples, err := pgx.CollectRows(res, func(r pgx.CollectableRow) ([]string, error) {
		vals := make([]string, len(keys))
		ptrs := make([]any, len(keys))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		return vals, r.Scan(ptrs...)
	})
	if err != nil {
		return nil, fmt.Errorf("sample keys: %w", err)
	}
	return chunksFromSamples(samples, rows, n), nil
}

// histogram returns the equi-depth histogram ANALYZE keeps for a
// single-column key (nil when there is none): quantile boundaries of the
// key in the column's own sort order, which is the order chunks are read in.
func histogram(ctx context.Context, tx pgx.Tx, t *schema.Table) ([]string, error) {
	if len(t.PrimaryKey) != 1 {
		return nil, nil
	}
	var bounds []string
	err := tx.QueryRow(ctx, `SELECT coalesce(histogram_bounds::text::text[], '{}') FROM pg_stats
		WHERE schemaname = $1 AND tablename = $2 AND attname = $3 AND NOT inherited`,
		t.Source.Schema, t.Source.Name, t.PrimaryKey[0]).Scan(&bounds)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("key histogram: %w", err)
	}
	return bounds, nil
}

// chunksFromSamples cuts sorted sample keys at n-1 quantiles. Equal
// neighbouring boundaries collapse, so a chunk is never empty by design.
// Samples that are not UTF-8 (a SQL_ASCII source's bytes) are no bounds:
// any key value cuts the key space as well, and a bound travels in tasks
// and is stored in caravan.chunks as JSON, which holds only UTF-8.
func chunksFromSamples(samples [][]string, rows, n int64) []source.Chunk {
	samples = slices.DeleteFunc(samples, func(tuple []string) bool {
		return slices.ContainsFunc(tuple, func(v string) bool { return !utf8.ValidString(v) })
	})
	var bounds [][]string
	for i := int64(1); i < n && len(samples) > 0; i++ {
		b := samples[int(i*int64(len(samples))/n)]
		if len(bounds) > 0 && equalTuple(bounds[len(bounds)-1], b) {
			continue
		}
		bounds = append(bounds, b)
	}
	chunks := make([]source.Chunk, 0, len(bounds)+1)
	per := rows / int64(len(bounds)+1)
	var lo []string
	for _, b := range bounds {
		chunks = append(chunks, source.Chunk{Range: proto.RangeKey, Lo: lo, Hi: b, EstRows: per})
		lo = b
	}
	return append(chunks, source.Chunk{Range: proto.RangeKey, Lo: lo, EstRows: per})
}

func equalTuple(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

// planPhysical cuts a keyless table into ctid block ranges. Inside one
// snapshot a tuple's ctid is fixed, so "ctid in [lo, hi) ORDER BY ctid"
// yields the same rows in the same order on every read: batches stay
// deterministic and the ledger keeps loading exactly-once.
func planPhysical(ctx context.Context, tx pgx.Tx, t *schema.Table, rows, n int64) ([]source.Chunk, error) {
	var pages int64
	err := tx.QueryRow(ctx, `SELECT pg_relation_size($1::regclass) / current_setting('block_size')::bigint`,
		schema.QuoteName(t.Source)).Scan(&pages)
	if err != nil {
		return nil, fmt.Errorf("table size: %w", err)
	}
	if n <= 1 || pages <= 1 {
		// One chunk; a partitioned table (no pages of its own) also lands here.
		return []source.Chunk{{Range: proto.RangeAll, EstRows: rows}}, nil
	}
	step := (pages + n - 1) / n
	var chunks []source.Chunk
	var lo []string
	for b := step; b < pages; b += step {
		hi := []string{fmt.Sprintf("(%d,0)", b)}
		chunks = append(chunks, source.Chunk{Range: proto.RangePhysical, Lo: lo, Hi: hi, EstRows: rows / n})
		lo = hi
	}
	// The last range is open: pages added after planning hold only rows the
	// snapshot cannot see, but an open end never misses one.
	return append(chunks, source.Chunk{Range: proto.RangePhysical, Lo: lo, EstRows: rows / n}), nil
}

func quotedCols(cols []string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = schema.Quote(c)
	}
	return out
}
