package target

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
)

// LoadResult says what LoadBatch did.
type LoadResult struct {
	Duplicate bool // the ledger already held this batch: nothing was written
	// Stale: the batch belongs to an attempt the chunk has moved past (after
	// `caravan resume`), or to no known chunk: nothing was written.
	Stale bool
}

// LoadBatch commits one batch exactly once: the ledger row and the COPY go
// in one transaction, and the ledger's primary key turns a second delivery
// of the same batch into a no-op. The ledger row goes first so a duplicate
// costs one index probe, not a COPY; a concurrent duplicate blocks on the
// first's uncommitted key and then sees the conflict.
func LoadBatch(ctx context.Context, pool *pgxpool.Pool, b *proto.RowBatch, data []byte) (LoadResult, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return LoadResult{}, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx)

	// One round trip claims the batch: FOR KEY SHARE on the chunk lets the
	// coordinator's progress updates through but blocks a resume's FOR
	// UPDATE, which moves the chunk to a new attempt and removes the old
	// attempt's rows, so a batch of the old attempt either commits before
	// that or is recognised here as stale. The ledger row is written only
	// for the current attempt; its primary key turns a redelivery into a
	// no-op.
	var attempt *int
	var claimed bool
	err = tx.QueryRow(ctx, `WITH c AS (
			SELECT attempt FROM caravan.chunks WHERE run_id = $1 AND table_id = $2 AND chunk = $3 FOR KEY SHARE
		), ins AS (
			INSERT INTO caravan.ledger (run_id, table_id, chunk, attempt, seq, rows, bytes, digest)
			SELECT $1, $2, $3, $4, $5, $6, $7, $8 FROM c WHERE c.attempt = $4
			ON CONFLICT DO NOTHING RETURNING 1
		)
		SELECT (SELECT attempt FROM c), EXISTS (SELECT 1 FROM ins)`,
		b.Run, b.Table, b.Chunk, b.Attempt, b.Seq, b.Rows, len(data), b.Digest).Scan(&attempt, &claimed)
	if err != nil {
		return LoadResult{}, fmt.Errorf("ledger: %w", err)
	}
	if attempt == nil || *attempt != b.Attempt {
		return LoadResult{Stale: true}, nil
	}
	if !claimed {
		return LoadResult{Duplicate: true}, nil
	}
	if _, err := tx.Conn().PgConn().CopyFrom(ctx, copyStream(b.Encoding, data), CopySQL(b.Target, b.Encoding, b.Cols)); err != nil {
		return LoadResult{}, fmt.Errorf("copy: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return LoadResult{}, fmt.Errorf("commit: %w", err)
	}
	return LoadResult{}, nil
}

// CopySQL is the COPY statement for a batch's columns in row encoding enc.
func CopySQL(t proto.TableRef, enc string, cols []string) string {
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = schema.Quote(c)
	}
	format := ""
	if enc == proto.EncodingCopyBinary {
		format = " (FORMAT binary)"
	}
	return fmt.Sprintf("COPY %s (%s) FROM STDIN%s", pgx.Identifier{t.Schema, t.Name}.Sanitize(), strings.Join(quoted, ", "), format)
}

// copyStream is what COPY FROM reads for a batch's data: the data itself
// in text; in binary the tuples between the stream's header and trailer,
// which batches leave out (a batch is a piece of a chunk, not a stream).
func copyStream(enc string, data []byte) io.Reader {
	if enc != proto.EncodingCopyBinary {
		return bytes.NewReader(data)
	}
	return io.MultiReader(bytes.NewReader(proto.BinaryHeader), bytes.NewReader(data), bytes.NewReader(proto.BinaryTrailer))
}

// Rejection describes the row of a batch PostgreSQL refused.
type Rejection struct {
	Column string // "" when PostgreSQL did not say
	// Key is the row's key as "col=value, ..." ("" when unknown); Row is
	// the row as one COPY text line. A row of a binary batch is not decoded
	// (that needs its types' receive functions): its key values and Row's
	// fields are the values' send-format bytes (proto.RowText), so Row
	// still decodes, as COPY text, to exactly the bytes that were refused.
	Key   string
	Row   string
	Error string
}

// copyContext matches PostgreSQL's error context for COPY:
// `COPY t, line 3, column c: "value"` or `COPY t, line 3: "..."`.
var copyContext = regexp.MustCompile(`COPY [^,]+, line (\d+)(?:, column ([^:]+))?`)

// Explain finds the offending row of a rejected batch from PostgreSQL's error
// so a user sees table, column, key and value instead of a line number.
func Explain(err error, b *proto.RowBatch, data []byte) Rejection {
	r := Rejection{Error: err.Error()}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return r
	}
	r.Error = pgErr.Message
	if pgErr.Detail != "" {
		r.Error += " (" + pgErr.Detail + ")"
	}
	if pgErr.ColumnName != "" {
		r.Column = pgErr.ColumnName
	}
	m := copyContext.FindStringSubmatch(pgErr.Where)
	if m == nil {
		return r
	}
	if r.Column == "" && m[2] != "" {
		r.Column = m[2]
	}
	// PostgreSQL counts binary tuples as lines too.
	lineNo, _ := strconv.Atoi(m[1])
	row := proto.NthRow(b.Encoding, data, lineNo)
	if row == nil {
		return r
	}
	r.Row = string(proto.RowText(b.Encoding, row))
	fields, err := proto.SplitRowAs(b.Encoding, nil, row)
	if err != nil {
		return r
	}
	var key []string
	for _, k := range b.Key {
		if k < len(fields) && k < len(b.Cols) {
			v := "NULL"
			if !fields[k].Null {
				v = strconv.Quote(string(fields[k].Value))
			}
			key = append(key, b.Cols[k]+"="+v)
		}
	}
	r.Key = strings.Join(key, ", ")
	return r
}

// Reject records a refused batch and fails its chunk. No ledger row is
// written: the chunk must never look complete, and the rejects row's unique
// key makes a redelivered rejection a no-op. The row is often refused for
// bytes that are not UTF-8, which the text columns of caravan.rejects could
// not hold either: such bytes are stored as COPY's \xNN escape (see
// Rejection.Escaped), so the stored row_text still decodes to the row.
func Reject(ctx context.Context, pool *pgxpool.Pool, b *proto.RowBatch, r Rejection) error {
	r = r.Escaped()
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("record reject: %w", err)
	}
	defer tx.Rollback(ctx)
	// The COPY that failed rolled back its claim on the chunk: a resume may
	// have moved the chunk to a new attempt since. A reject of an old
	// attempt must not fail the new one.
	var attempt int
	err = tx.QueryRow(ctx, `SELECT attempt FROM caravan.chunks WHERE run_id = $1 AND table_id = $2 AND chunk = $3 FOR KEY SHARE`,
		b.Run, b.Table, b.Chunk).Scan(&attempt)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && attempt != b.Attempt) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("record reject: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO caravan.rejects (run_id, table_id, chunk, attempt, seq, column_name, key, error, row_text)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`,
		b.Run, b.Table, b.Chunk, b.Attempt, b.Seq, r.Column, r.Key, r.Error, r.Row); err != nil {
		return fmt.Errorf("record reject: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE caravan.chunks SET status = 'failed', error = $4
		WHERE run_id = $1 AND table_id = $2 AND chunk = $3 AND attempt = $5`, b.Run, b.Table, b.Chunk, r.Summary(b.Table), b.Attempt); err != nil {
		return fmt.Errorf("record reject: %w", err)
	}
	return tx.Commit(ctx)
}

// Escaped returns r with every byte that is not valid UTF-8 written as
// \xNN (proto.EscapeInvalidUTF8), so each field fits a text column and a
// log line.
func (r Rejection) Escaped() Rejection {
	return Rejection{Column: proto.EscapeInvalidUTF8([]byte(r.Column)), Key: proto.EscapeInvalidUTF8([]byte(r.Key)),
		Row: proto.EscapeInvalidUTF8([]byte(r.Row)), Error: proto.EscapeInvalidUTF8([]byte(r.Error))}
}

// Summary is the one-line message a user sees for a rejection.
func (r Rejection) Summary(table string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table %s", table)
	if r.Column != "" {
		fmt.Fprintf(&b, ", column %s", r.Column)
	}
	if r.Key != "" {
		fmt.Fprintf(&b, ", key %s", r.Key)
	}
	fmt.Fprintf(&b, ": %s", r.Error)
	return b.String()
}
