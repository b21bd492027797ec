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
// STDOUT (pgutil.CopyRows) in the task's encoding: in text, PostgreSQL's
// output under pgutil's session settings is the canonical form, already
// escaped for COPY; in binary, each value's send format, as a target
// column of the same type receives it.
func (s *Source) Read(ctx context.Context, task *proto.ChunkTask, emit func(row []byte) error) error {
	return s.read(ctx, task, nil, emit)
}

// ReadKeys implements source.KeyReader: the rows of the chunk whose keys
// are among keys (each one text value per key column), read as Read reads
// the chunk (in its encoding), in its order. The keys travel as text arrays
// bound by parameter, cast to the key columns' types.
func (s *Source) ReadKeys(ctx context.Context, task *proto.ChunkTask, keys [][]string, emit func(row []byte) error) error {
	if task.Range != proto.RangeKey || len(task.Key) == 0 {
		return fmt.Errorf("read %s chunk %d by key: the chunk is not a key range", task.Source, task.Chunk)
	}
	if len(keys) == 0 {
		return nil
	}
	return s.read(ctx, task, keys, emit)
}

// read streams a chunk's rows, only those of keys when keys is not nil.
func (s *Source) read(ctx context.Context, task *proto.ChunkTask, keys [][]string, emit func(row []byte) error) error {
	tx, err := s.readTx(ctx, task.Snapshot)
	var gone *snapshotGoneError
	if errors.As(err, &gone) {
		// Every chunk of the run fails the same way: say what to do.
		// The task does not say which command made it: name both ways on.
		return source.Permanent(fmt.Errorf("snapshot gone: the process holding run %s's snapshot stopped; a migration: finish it with caravan resume %[1]s; a verification: run caravan verify again (%[2]w)", task.Run, gone))
	}
	if err != nil {
		return fmt.Errorf("read %s chunk %d: %w", task.Source, task.Chunk, err)
	}
	defer tx.Rollback(ctx)

	q, args, err := chunkQuery(task, keys)
	if err != nil {
		return source.Permanent(fmt.Errorf("read %s chunk %d: %w", task.Source, task.Chunk, err))
	}
	check, err := s.newTextCheck(task, tx.Conn().PgConn().ParameterStatus("server_encoding"))
	if err != nil {
		return source.Permanent(fmt.Errorf("read %s chunk %d: %w", task.Source, task.Chunk, err))
	}
	if check != nil && task.RowEncoding() != proto.EncodingCopyText {
		// The planner never chooses binary for a SQL_ASCII source (its text
		// policy reads COPY text); a task that does was planned elsewhere.
		return source.Permanent(fmt.Errorf("read %s chunk %d: a SQL_ASCII source is read as COPY text, not %s", task.Source, task.Chunk, task.RowEncoding()))
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
	err = pgutil.CopyRows(ctx, tx, task.RowEncoding(), q, args, func(line []byte) error {
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

// chunkQuery selects a chunk's rows in a deterministic order; with keys,
// only the rows of those keys.
func chunkQuery(task *proto.ChunkTask, keys [][]string) (string, []any, error) {
	from := schema.QuoteOnly(schema.Name{Schema: task.Source.Schema, Name: task.Source.Name})
	cols := strings.Join(quotedCols(task.Cols), ", ")
	var where, order string
	var args []any
	switch task.Range {
	case proto.RangeKey:
		keyCols := quotedCols(task.Key)
		where, args = pgutil.RangePredicateWith(keyCols, task.KeyTypes, task.Lo, task.Hi, pgutil.BoundSetting)
		order = strings.Join(keyCols, ", ")
		if keys != nil {
			in, inArgs, err := keyIn(keyCols, task.KeyTypes, keys, len(args))
			if err != nil {
				return "", nil, err
			}
			where, args = where+" AND "+in, append(args, inArgs...)
		}
	case proto.RangePhysical:
		where, args = pgutil.RangePredicateWith([]string{"ctid"}, []string{"tid"}, task.Lo, task.Hi, pgutil.BoundSetting)
		order = "ctid"
	default:
		// tableoid first: a partitioned table's ctids repeat across partitions.
		where, order = "TRUE", "tableoid, ctid"
	}
	return fmt.Sprintf("SELECT %s FROM %s WHERE %s ORDER BY %s", cols, from, where, order), args, nil
}

// keyIn selects the rows of the given keys: one text array a key column,
// bound after the first `after` arguments and cast to the column's type
// (an index scan of = ANY for a one-column key).
func keyIn(cols, types []string, keys [][]string, after int) (string, []any, error) {
	if len(types) != len(cols) {
		return "", nil, fmt.Errorf("%d key columns but %d key types", len(cols), len(types))
	}
	arrays := make([]any, len(cols))
	reads := make([]string, len(cols))
	for i := range cols {
		vals := make([]string, len(keys))
		for k, key := range keys {
			if len(key) != len(cols) {
				return "", nil, fmt.Errorf("a key of %d values for %d key columns", len(key), len(cols))
			}
			vals[k] = key[i]
		}
		arrays[i] = vals
		reads[i] = pgutil.BoundSetting(after+i+1, types[i]+"[]")
	}
	if len(cols) == 1 {
		return fmt.Sprintf("%s = ANY(%s)", cols[0], reads[0]), arrays, nil
	}
	return fmt.Sprintf("(%s) IN (SELECT * FROM unnest(%s))", strings.Join(cols, ", "), strings.Join(reads, ", ")), arrays, nil
}
