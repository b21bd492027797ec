package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/source"
)

// Read streams one chunk in key (or ctid) order with COPY (SELECT ...) TO
// STDOUT (pgutil.CopyRows): PostgreSQL's text output under pgutil's session
// settings is the canonical form, already escaped for COPY.
func (s *Source) Read(ctx context.Context, task *proto.ChunkTask, emit func(line []byte) error) error {
	tx, err := s.readTx(ctx, task.Snapshot)
	var gone *snapshotGoneError
	if errors.As(err, &gone) {
		// Every chunk of the run fails the same way: say what to do.
		return source.Permanent(fmt.Errorf("snapshot gone: finish with caravan resume %s (%w)", task.Run, gone))
	}
	if err != nil {
		return fmt.Errorf("read %s chunk %d: %w", task.Source, task.Chunk, err)
	}
	defer tx.Rollback(ctx)

	q, args := chunkQuery(task)
	check, err := s.newTextCheck(task, tx.Conn().PgConn().ParameterStatus("server_encoding"))
	if err != nil {
		return source.Permanent(fmt.Errorf("read %s chunk %d: %w", task.Source, task.Chunk, err))
	}
	if check != nil {
		// With client_encoding UTF8 a SQL_ASCII server refuses to send text
		// that is not UTF-8 (22021, naming neither column nor row): take the
		// bytes as stored and let the run's policy decide, value by value.
		if _, err := tx.Exec(ctx, "SET LOCAL client_encoding TO 'SQL_ASCII'"); err != nil {
			return fmt.Errorf("read %s chunk %d: %w", task.Source, task.Chunk, err)
		}
	}
	var rowErr error // a row's own error (its text, or publishing it), which ended the COPY
	err = pgutil.CopyRows(ctx, tx, q, args, func(line []byte) error {
		if check != nil {
			if line, rowErr = check.line(line); rowErr != nil {
				return rowErr
			}
		}
		rowErr = emit(line)
		return rowErr
	})
	if rowErr != nil {
		return rowErr // it says enough: the extractor's prefix names table and chunk
	}
	if err != nil {
		return permanentIfHopeless(fmt.Errorf("read %s chunk %d: %w", task.Source, task.Chunk, err))
	}
	if check != nil {
		check.report(s.log)
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
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+schema.QuoteOnly(t.Source)).Scan(&n); err != nil {
		return 0, false, fmt.Errorf("count %s: %w", t.Source, err)
	}
	return n, snapshot != "", nil
}

// chunkQuery selects a chunk's rows in a deterministic order.
func chunkQuery(task *proto.ChunkTask) (string, []any) {
	from := schema.QuoteOnly(schema.Name{Schema: task.Source.Schema, Name: task.Source.Name})
	cols := strings.Join(quotedCols(task.Cols), ", ")
	var where, order string
	var args []any
	switch task.Range {
	case proto.RangeKey:
		keys := quotedCols(task.Key)
		where, args = pgutil.RangePredicateWith(keys, task.KeyTypes, task.Lo, task.Hi, pgutil.BoundSetting)
		order = strings.Join(keys, ", ")
	case proto.RangePhysical:
		where, args = pgutil.RangePredicateWith([]string{"ctid"}, []string{"tid"}, task.Lo, task.Hi, pgutil.BoundSetting)
		order = "ctid"
	default:
		// tableoid first: a partitioned table's ctids repeat across partitions.
		where, order = "TRUE", "tableoid, ctid"
	}
	return fmt.Sprintf("SELECT %s FROM %s WHERE %s ORDER BY %s", cols, from, where, order), args
}
