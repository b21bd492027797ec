package postgres

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
)

// Read streams one chunk in key (or ctid) order with COPY (SELECT ...) TO
// STDOUT: PostgreSQL's text output under pgutil's session settings is the
// canonical form, already escaped for COPY, and COPY costs the server less
// than row-by-row results. COPY takes no bind parameters, so the bounds
// are bound to transaction-local settings first (set_config with $n) and
// the query reads them back with current_setting(): no value is ever
// spliced into SQL text.
func (s *Source) Read(ctx context.Context, task *proto.ChunkTask, emit func(line []byte) error) error {
	tx, err := s.readTx(ctx, task.Snapshot)
	if err != nil {
		return fmt.Errorf("read %s chunk %d: %w", task.Source, task.Chunk, err)
	}
	defer tx.Rollback(ctx)

	q, args := chunkQuery(task)
	if len(args) > 0 {
		sets := make([]string, len(args))
		for i := range args {
			sets[i] = fmt.Sprintf("set_config('caravan.bound_%d', $%d, true)", i+1, i+1)
		}
		if _, err := tx.Exec(ctx, "SELECT "+strings.Join(sets, ", "), args...); err != nil {
			return fmt.Errorf("read %s chunk %d: bind bounds: %w", task.Source, task.Chunk, err)
		}
	}
	lines := &lineWriter{emit: emit}
	if _, err := tx.Conn().PgConn().CopyTo(ctx, lines, "COPY ("+q+") TO STDOUT"); err != nil {
		return fmt.Errorf("read %s chunk %d: %w", task.Source, task.Chunk, err)
	}
	if len(lines.partial) > 0 {
		return fmt.Errorf("read %s chunk %d: COPY ended inside a row", task.Source, task.Chunk)
	}
	return nil
}

// Count implements source.Source: count(*) inside the run's snapshot.
func (s *Source) Count(ctx context.Context, t *schema.Table, snapshot string) (int64, bool, error) {
	tx, err := s.readTx(ctx, snapshot)
	if err != nil {
		return 0, false, fmt.Errorf("count %s: %w", t.Source, err)
	}
	defer tx.Rollback(ctx)
	var n int64
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+schema.QuoteName(t.Source)).Scan(&n); err != nil {
		return 0, false, fmt.Errorf("count %s: %w", t.Source, err)
	}
	return n, snapshot != "", nil
}

// lineWriter turns COPY's output stream into rows. PostgreSQL sends one
// row per message, but only the newline (never raw inside a value: COPY
// escapes it) is relied on.
type lineWriter struct {
	emit    func([]byte) error
	partial []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	if len(w.partial) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.partial = append(w.partial, p...)
			return n, nil
		}
		w.partial = append(w.partial, p[:i+1]...)
		if err := w.emit(w.partial); err != nil {
			return 0, err
		}
		w.partial = w.partial[:0]
		p = p[i+1:]
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.partial = append(w.partial, p...)
			break
		}
		if err := w.emit(p[:i+1]); err != nil {
			return 0, err
		}
		p = p[i+1:]
	}
	return n, nil
}

// boundParam reads the n-th bound back from its setting, cast to the key
// column's type, as the server would cast a bind parameter.
func boundParam(n int, typ string) string {
	return fmt.Sprintf("current_setting('caravan.bound_%d')::%s", n, typ)
}

// chunkQuery selects a chunk's rows in a deterministic order.
func chunkQuery(task *proto.ChunkTask) (string, []any) {
	from := schema.QuoteName(schema.Name{Schema: task.Source.Schema, Name: task.Source.Name})
	cols := strings.Join(quotedCols(task.Cols), ", ")
	var where, order string
	var args []any
	switch task.Range {
	case proto.RangeKey:
		keys := quotedCols(task.Key)
		where, args = pgutil.RangePredicateWith(keys, task.KeyTypes, task.Lo, task.Hi, boundParam)
		order = strings.Join(keys, ", ")
	case proto.RangePhysical:
		where, args = pgutil.RangePredicateWith([]string{"ctid"}, []string{"tid"}, task.Lo, task.Hi, boundParam)
		order = "ctid"
	default:
		// tableoid first: a partitioned table's ctids repeat across partitions.
		where, order = "TRUE", "tableoid, ctid"
	}
	return fmt.Sprintf("SELECT %s FROM %s WHERE %s ORDER BY %s", cols, from, where, order), args
}
