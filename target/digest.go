package target

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
)

// ReadDigest reads back the rows of a target table that satisfy where, over
// cols in load order, and digests them as the extractor digested them at
// the source: each COPY text line is split and hashed by proto.RowHash.
// Reading with COPY calls each column's output function once per value,
// as the source's COPY did, and leaves one definition of the digest (in
// Go) with no limit on the number of columns. where reads its args with
// pgutil.BoundSetting (COPY takes no bind parameters).
func ReadDigest(ctx context.Context, pool *pgxpool.Pool, t schema.Name, cols []string, where string, args ...any) (proto.Digest, error) {
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = schema.Quote(c)
	}
	q := fmt.Sprintf("SELECT %s FROM %s WHERE %s", strings.Join(quoted, ", "), schema.QuoteOnly(t), where)
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return proto.Digest{}, fmt.Errorf("digest %s: %w", t, err)
	}
	defer tx.Rollback(ctx)
	var d proto.Digest
	var fields []proto.Field
	var scratch []byte
	err = pgutil.CopyRows(ctx, tx, q, args, func(line []byte) error {
		var err error
		if fields, err = proto.SplitRow(fields[:0], line); err != nil {
			return fmt.Errorf("row %d: %w", d.Rows+1, err)
		}
		if len(fields) != len(cols) {
			return fmt.Errorf("row %d: %d values for %d columns", d.Rows+1, len(fields), len(cols))
		}
		var h uint64
		h, scratch = proto.RowHash(fields, scratch)
		d.Add(h)
		return nil
	})
	if err != nil {
		return proto.Digest{}, fmt.Errorf("digest %s: %w", t, err)
	}
	return d, nil
}
