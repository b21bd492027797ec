// Package postgres reads a PostgreSQL source: its catalog into the neutral
// model, chunk plans from sampled keys or ctid ranges, and chunk rows inside
// one exported snapshot, as PostgreSQL's own canonical text.
package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/caravan-db/caravan/schema"
)

// systemSchemas are never migrated; caravan is our own state.
const schemaFilter = `n.nspname NOT IN ('pg_catalog', 'information_schema', 'caravan')
	AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'`

type tableRow struct {
	OID         uint32
	Schema      string
	Name        string
	Kind        string
	Estimate    int64
	Comment     string
	IsPartition bool
	PartKey     string
	PartBound   string
	Parents     []int64 // pg_inherits, in order: the partitioned table, or INHERITS parents
	RowSecurity bool
	ForceRLS    bool
}

// discoverTables lists every table, partitions included: each partition is
// a table of its own in the run (planned, read and loaded alone), created
// PARTITION OF its parent. A partition follows its root table through the
// include/exclude patterns. An inheritance child is read without its
// children (ONLY) and created with INHERITS when its parents are in the
// run too.
func discoverTables(ctx context.Context, q querier, filter schema.Filter, db *schema.Database) ([]*schema.Table, map[uint32]*schema.Table, map[uint32]schema.Name, error) {
	rows, err := q.Query(ctx, `SELECT c.oid, n.nspname, c.relname, c.relkind::text, greatest(c.reltuples, 0)::bigint,
			coalesce(obj_description(c.oid, 'pg_class'), ''), c.relispartition,
			coalesce(pg_get_partkeydef(c.oid), ''), coalesce(pg_get_expr(c.relpartbound, c.oid), ''),
			ARRAY(SELECT i.inhparent::bigint FROM pg_inherits i WHERE i.inhrelid = c.oid ORDER BY i.inhseqno),
			c.relrowsecurity, c.relforcerowsecurity
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND `+schemaFilter+`
		ORDER BY n.nspname, c.relname`)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list tables: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowToStructByPos[tableRow])
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list tables: %w", err)
	}
	rowOf := map[uint32]tableRow{}
	all := map[uint32]schema.Name{}
	for _, r := range found {
		rowOf[r.OID] = r
		all[r.OID] = schema.Name{Schema: r.Schema, Name: r.Name}
	}
	root := func(r tableRow) tableRow {
		for r.IsPartition && len(r.Parents) == 1 {
			r = rowOf[uint32(r.Parents[0])]
		}
		return r
	}
	var tables []*schema.Table
	byOID := map[uint32]*schema.Table{}
	for _, r := range found {
		rt := root(r)
		if !filter.Match(schema.Name{Schema: rt.Schema, Name: rt.Name}) {
			continue
		}
		t := &schema.Table{Source: schema.Name{Schema: r.Schema, Name: r.Name}, RowEstimate: r.Estimate, Comment: r.Comment, RangeSafe: true,
			RowSecurity: r.RowSecurity, ForceRowSecurity: r.ForceRLS}
		if r.Kind == "p" {
			t.PartitionKey = r.PartKey
		}
		tables = append(tables, t)
		byOID[r.OID] = t
	}
	for _, r := range found {
		t := byOID[r.OID]
		if t == nil || len(r.Parents) == 0 {
			continue
		}
		if r.IsPartition {
			parent := byOID[uint32(r.Parents[0])].Source
			t.PartitionOf, t.PartitionBound = &parent, r.PartBound
			continue
		}
		var parents []schema.Name
		for _, oid := range r.Parents {
			p := byOID[uint32(oid)]
			if p == nil {
				parents = nil
				db.Warnings = append(db.Warnings, fmt.Sprintf("table %s: created without INHERITS, its parent %s is not in the run",
					t.Source, ref(rowOf[uint32(oid)].Schema, rowOf[uint32(oid)].Name)))
				break
			}
			parents = append(parents, p.Source)
		}
		t.Inherits = parents
	}
	return tables, byOID, all, nil
}

type columnRow struct {
	Rel        uint32
	Name       string
	Type       string
	NotNull    bool
	Default    *string
	Identity   string
	Generated  string
	Comment    *string
	Collation  *string
	TypType    string
	TypSchema  string
	TypName    string
	IsArray    bool
	Sequence   *string
	IdentStart *int64
	IdentIncr  *int64
	Local      bool
	BinaryCopy bool
}

// binaryCopySQL says whether a column of type t (element type bt) can
// travel in binary COPY between any two PostgreSQL databases: a base or
// range type with fixed oids (below FirstGenbkiObjectId, 10000: the same in
// every database and version; an array's binary form names its element
// type's oid), with send and receive functions, and not one of the reg*
// types, whose binary form is an oid of the source database's catalog.
// Enums, domains, composites and every extension's type stay text.
const binaryCopySQL = `(t.oid < 10000 AND bt.oid < 10000 AND bt.typtype IN ('b', 'r', 'm')
			AND t.typsend <> 0 AND t.typreceive <> 0 AND bt.typsend <> 0 AND bt.typreceive <> 0
			AND bt.typname NOT LIKE 'reg%')`

// discoverColumns fills the tables' columns and returns the user types
// they use. binaryCopy says the source's text needs no policy, so columns
// of suitable types may travel in binary COPY.
func discoverColumns(ctx context.Context, q querier, byOID map[uint32]*schema.Table, binaryCopy bool) (map[schema.Name]bool, error) {
	rows, err := q.Query(ctx, `SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
			pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text,
			col_description(a.attrelid, a.attnum),
			CASE WHEN a.attcollation <> 0 AND a.attcollation <> bt.typcollation THEN co.collname END,
			bt.typtype::text, btn.nspname, bt.typname, t.typcategory = 'A' AND t.typelem <> 0,
			seq.relname, idseq.seqstart, idseq.seqincrement, a.attislocal,
			`+binaryCopySQL+`
		FROM pg_attribute a
		JOIN pg_class c ON c.oid = a.attrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_type t ON t.oid = a.atttypid
		JOIN pg_type bt ON bt.oid = CASE WHEN t.typcategory = 'A' AND t.typelem <> 0 THEN t.typelem ELSE t.oid END
		JOIN pg_namespace btn ON btn.oid = bt.typnamespace
		LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		LEFT JOIN pg_collation co ON co.oid = a.attcollation
		LEFT JOIN LATERAL (SELECT s.relname FROM pg_depend dep JOIN pg_class s ON s.oid = dep.objid
			WHERE dep.classid = 'pg_class'::regclass AND dep.refobjid = a.attrelid AND dep.refobjsubid = a.attnum
			  AND dep.deptype = 'a' AND s.relkind = 'S' LIMIT 1) seq ON a.attidentity = ''
		LEFT JOIN LATERAL (SELECT ps.seqstart, ps.seqincrement FROM pg_depend dep JOIN pg_sequence ps ON ps.seqrelid = dep.objid
			WHERE dep.classid = 'pg_class'::regclass AND dep.refobjid = a.attrelid AND dep.refobjsubid = a.attnum
			  AND dep.deptype = 'i' LIMIT 1) idseq ON a.attidentity <> ''
		WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND `+schemaFilter+`
		ORDER BY a.attrelid, a.attnum`)
	if err != nil {
		return nil, fmt.Errorf("list columns: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowToStructByPos[columnRow])
	if err != nil {
		return nil, fmt.Errorf("list columns: %w", err)
	}
	userTypes := map[schema.Name]bool{}
	for _, r := range found {
		t := byOID[r.Rel]
		if t == nil {
			continue
		}
		c := &schema.Column{Name: r.Name, SourceType: r.Type, Type: r.Type, Nullable: !r.NotNull, Inherited: !r.Local,
			BinaryCopy: binaryCopy && r.BinaryCopy}
		if r.Comment != nil {
			c.Comment = *r.Comment
		}
		if r.Collation != nil {
			c.Collation = *r.Collation
		}
		if ref := userTypeRef(r.TypType, r.TypSchema, r.TypName); ref != nil {
			c.TypeRef = ref
			if r.IsArray {
				c.ArrayDims = 1
			}
			userTypes[*ref] = true
		}
		switch {
		case r.Generated == "s":
			c.Generated = deref(r.Default)
		case r.Identity != "":
			c.Identity = &schema.Identity{Always: r.Identity == "a", Start: derefInt(r.IdentStart, 1), Increment: derefInt(r.IdentIncr, 1)}
		case r.Sequence != nil && r.Default != nil && strings.HasPrefix(*r.Default, "nextval("):
			c.Sequence = *r.Sequence
		default:
			c.Default = deref(r.Default)
		}
		t.Columns = append(t.Columns, c)
	}
	return userTypes, nil
}

func ref(schemaName, name string) string {
	return schema.QuoteName(schema.Name{Schema: schemaName, Name: name})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func derefInt(v *int64, def int64) int64 {
	if v == nil {
		return def
	}
	return *v
}

type constraintRow struct {
	Rel        uint32
	Name       string
	Kind       string
	Cols       []string
	RefSchema  *string
	RefTable   *string
	RefCols    []string
	OnDelete   string
	OnUpdate   string
	Definition string
	Local      bool
}

var fkAction = map[string]string{"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}

func discoverConstraints(ctx context.Context, q querier, byOID map[uint32]*schema.Table) error {
	rows, err := q.Query(ctx, `SELECT con.conrelid, con.conname, con.contype::text,
			ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
			      JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.ord),
			rn.nspname, rc.relname,
			ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
			      JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.ord),
			con.confdeltype::text, con.confupdtype::text, pg_get_constraintdef(con.oid, true),
			con.conislocal AND con.conparentid = 0
		FROM pg_constraint con
		JOIN pg_class c ON c.oid = con.conrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_class rc ON rc.oid = con.confrelid
		LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
		WHERE con.contype IN ('p', 'u', 'f', 'c', 'x') AND `+schemaFilter+`
		ORDER BY con.conrelid, con.conname`)
	if err != nil {
		return fmt.Errorf("list constraints: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowToStructByPos[constraintRow])
	if err != nil {
		return fmt.Errorf("list constraints: %w", err)
	}
	for _, r := range found {
		t := byOID[r.Rel]
		if t == nil || (!r.Local && r.Kind != "p") {
			// Inherited: created on the parent, which passes it on.
			continue
		}
		switch r.Kind {
		case "p":
			// A partition's key is its parent's, and orders its chunks all the same.
			t.PrimaryKey, t.PrimaryKeyName, t.KeyInherited = r.Cols, r.Name, !r.Local
		case "u":
			ix := &schema.Index{Name: r.Name, Unique: true}
			for _, c := range r.Cols {
				ix.Columns = append(ix.Columns, schema.IndexColumn{Column: c})
			}
			t.Uniques = append(t.Uniques, ix)
		case "c", "x": // checks and exclusion constraints: both added by their definition
			t.Checks = append(t.Checks, &schema.Check{Name: r.Name, Expr: r.Definition})
		case "f":
			t.ForeignKeys = append(t.ForeignKeys, &schema.ForeignKey{
				Name: r.Name, Columns: r.Cols,
				RefTable:   schema.Name{Schema: deref(r.RefSchema), Name: deref(r.RefTable)},
				RefColumns: r.RefCols, OnDelete: fkAction[r.OnDelete], OnUpdate: fkAction[r.OnUpdate],
			})
		}
	}
	return nil
}

type indexRow struct {
	Rel     uint32
	Name    string
	Unique  bool
	Method  string
	Keys    []string // per key column: "" for an expression, else the column name
	Exprs   []string // pg_get_indexdef per key column
	Options []int16
	Opclass []string // "" for the default operator class
	Include []string
	Where   *string
}

func discoverIndexes(ctx context.Context, q querier, byOID map[uint32]*schema.Table) error {
	rows, err := q.Query(ctx, `SELECT i.indrelid, ic.relname, i.indisunique, am.amname,
			ARRAY(SELECT coalesce(a.attname::text, '') FROM generate_series(0, i.indnkeyatts - 1) k
			      LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k] ORDER BY k),
			ARRAY(SELECT pg_get_indexdef(i.indexrelid, k + 1, true) FROM generate_series(0, i.indnkeyatts - 1) k ORDER BY k),
			ARRAY(SELECT i.indoption[k] FROM generate_series(0, i.indnkeyatts - 1) k ORDER BY k),
			ARRAY(SELECT CASE WHEN oc.opcdefault THEN '' ELSE quote_ident(ocn.nspname) || '.' || quote_ident(oc.opcname) END
			      FROM generate_series(0, i.indnkeyatts - 1) k
			      JOIN pg_opclass oc ON oc.oid = i.indclass[k] JOIN pg_namespace ocn ON ocn.oid = oc.opcnamespace ORDER BY k),
			ARRAY(SELECT a.attname::text FROM generate_series(i.indnkeyatts, i.indnatts - 1) k
			      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k] ORDER BY k),
			pg_get_expr(i.indpred, i.indrelid, true)
		FROM pg_index i
		JOIN pg_class ic ON ic.oid = i.indexrelid
		JOIN pg_am am ON am.oid = ic.relam
		JOIN pg_class c ON c.oid = i.indrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid)
		  AND NOT ic.relispartition -- a partitioned index creates its partitions' own
		  AND `+schemaFilter+`
		ORDER BY i.indrelid, ic.relname`)
	if err != nil {
		return fmt.Errorf("list indexes: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowToStructByPos[indexRow])
	if err != nil {
		return fmt.Errorf("list indexes: %w", err)
	}
	for _, r := range found {
		t := byOID[r.Rel]
		if t == nil {
			continue
		}
		t.Indexes = append(t.Indexes, indexFromRow(r))
	}
	return nil
}

func indexFromRow(r indexRow) *schema.Index {
	ix := &schema.Index{Name: r.Name, Unique: r.Unique, Method: r.Method, Include: r.Include, Where: deref(r.Where)}
	for k := range r.Keys {
		col := schema.IndexColumn{Column: r.Keys[k]}
		if col.Column == "" {
			col.Expr = r.Exprs[k]
		}
		if k < len(r.Opclass) {
			col.Opclass = r.Opclass[k]
		}
		if k < len(r.Options) {
			desc := r.Options[k]&1 != 0
			nullsFirst := r.Options[k]&2 != 0
			col.Desc = desc
			// PostgreSQL's defaults: NULLS LAST ascending, NULLS FIRST descending.
			if nullsFirst != desc {
				if nullsFirst {
					col.NullsOrder = "NULLS FIRST"
				} else {
					col.NullsOrder = "NULLS LAST"
				}
			}
		}
		ix.Columns = append(ix.Columns, col)
	}
	return ix
}
