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
// cols in load order, in row encoding enc (the table's), and digests them
// as the extractor digested them at the source: each row is split
// (proto.SplitRowAs) and hashed by proto.RowHash. Reading with COPY calls
// each column's output (or, in binary, send) function once per value, as
// the source's COPY did, and leaves one definition of the digest (in Go)
// with no limit on the number of columns. where reads its args with
// pgutil.BoundSetting (COPY takes no bind parameters).
func ReadDigest(ctx context.Context, pool *pgxpool.Pool, t schema.Name, enc string, cols []string, where string, args ...any) (proto.Digest, error) {
	var d proto.Digest
	err := ReadLines(ctx, pool, t, enc, cols, where, args, func(line []byte, h uint64) error {
		d.Add(h)
		return nil
	})
	if err != nil {
		return proto.Digest{}, err
	}
	return d, nil
}

// ReadLines reads back the rows of a target table that satisfy where, as
// ReadDigest does, and hands each row in enc (valid during the call) with
// its proto.RowHash to emit: what `caravan verify` needs to name the rows
// behind a digest that differs.
func ReadLines(ctx context.Context, pool *pgxpool.Pool, t schema.Name, enc string, cols []string, where string, args []any, emit func(line []byte, hash uint64) error) error {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("digest %s: %w", t, err)
	}
	defer tx.Rollback(ctx)
	return readLines(ctx, tx, t, enc, cols, where, args, emit)
}

// ReadLinesIn is ReadLines inside tx: what `caravan sync` compares a
// changed chunk's target rows with, under the lock of the chunk it is about
// to replace, to copy only the rows that differ.
func ReadLinesIn(ctx context.Context, tx pgx.Tx, t schema.Name, enc string, cols []string, where string, args []any, emit func(line []byte, hash uint64) error) error {
	return readLines(ctx, tx, t, enc, cols, where, args, emit)
}

func readLines(ctx context.Context, tx pgx.Tx, t schema.Name, enc string, cols []string, where string, args []any, emit func(line []byte, hash uint64) error) error {
	enc = proto.EncodingOrText(enc)
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = schema.Quote(c)
	}
	q := fmt.Sprintf("SELECT %s FROM %s WHERE %s", strings.Join(quoted, ", "), schema.QuoteOnly(t), where)
	var fields []proto.Field
	var scratch []byte
	var n int64
	err := pgutil.CopyRows(ctx, tx, enc, q, args, func(line []byte) error {
		n++
		var err error
		if fields, err = proto.SplitRowAs(enc, fields[:0], line); err != nil {
			return fmt.Errorf("row %d: %w", n, err)
		}
		if len(fields) != len(cols) {
			return fmt.Errorf("row %d: %d values for %d columns", n, len(fields), len(cols))
		}
		var h uint64
		h, scratch = proto.RowHash(fields, scratch)
		return emit(line, h)
	})
	if err != nil {
		return fmt.Errorf("digest %s: %w", t, err)
	}
	return nil
}
