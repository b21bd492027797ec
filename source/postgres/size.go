package postgres

import (
	"context"
	"fmt"

	"github.com/caravan-db/caravan/schema"
)

// discoverSizes records each table's size on disk: heap and TOAST (where
// bytea, jsonb and long text live). A partitioned table holds nothing
// itself (its partitions are tables of their own). The run reads the
// largest tables first.
func discoverSizes(ctx context.Context, q querier, byOID map[uint32]*schema.Table) error {
	if len(byOID) == 0 {
		return nil
	}
	oids := make([]uint32, 0, len(byOID))
	for oid := range byOID {
		oids = append(oids, oid)
	}
	rows, err := q.Query(ctx, `SELECT r.oid, coalesce(pg_table_size(r.oid), 0) FROM unnest($1::oid[]) AS r(oid)`, oids)
	if err != nil {
		return fmt.Errorf("table sizes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var oid uint32
		var size int64
		if err := rows.Scan(&oid, &size); err != nil {
			return fmt.Errorf("table sizes: %w", err)
		}
		if t := byOID[oid]; t != nil {
			t.SizeBytes = size
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("table sizes: %w", err)
	}
	return nil
}
