package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
)

// Read streams one chunk in key (or ctid) order. Values arrive in
// PostgreSQL's text format, which under pgutil's session settings is the
// canonical form, so each row only needs COPY escaping. Bounds travel as
// query parameters, cast to the key's type by the server.
func (s *Source) Read(ctx context.Context, task *proto.ChunkTask, emit func(line []byte) error) error {
	tx, err := s.readTx(ctx, task.Snapshot)
	if err != nil {
		return fmt.Errorf("read %s chunk %d: %w", task.Source, task.Chunk, err)
	}
	defer tx.Rollback(ctx)

	q, args := chunkQuery(task)
	params := make([][]byte, len(args))
	for i, a := range args {
		params[i] = []byte(a.(string))
	}
	rr := tx.Conn().PgConn().ExecParams(ctx, q, params, nil, nil, nil)
	var row proto.RowBuilder
	for rr.NextRow() {
		row.Reset()
		for _, v := range rr.Values() {
			if v == nil {
				row.Null()
			} else {
				row.Value(v)
			}
		}
		if err := emit(row.Line()); err != nil {
			rr.Close()
			return err
		}
	}
	if _, err := rr.Close(); err != nil {
		return fmt.Errorf("read %s chunk %d: %w", task.Source, task.Chunk, err)
	}
	return nil
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
		where, args = pgutil.RangePredicate(keys, task.KeyTypes, task.Lo, task.Hi, 0)
		order = strings.Join(keys, ", ")
	case proto.RangePhysical:
		where, args = pgutil.RangePredicate([]string{"ctid"}, []string{"tid"}, task.Lo, task.Hi, 0)
		order = "ctid"
	default:
		// tableoid first: a partitioned table's ctids repeat across partitions.
		where, order = "TRUE", "tableoid, ctid"
	}
	return fmt.Sprintf("SELECT %s FROM %s WHERE %s ORDER BY %s", cols, from, where, order), args
}
