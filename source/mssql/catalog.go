package mssql

import (
	"context"
	"database/sql"
	"fmt"
)

// Discovery reads the sys.* catalog views into plain row structs; model.go
// turns the rows into the schema model without a server, so that half is
// unit-tested. INFORMATION_SCHEMA is not enough: it has no identity seeds,
// computed columns, filtered or included index columns, or FK actions.

type tableRow struct {
	ObjectID int64
	Schema   string
	Name     string
	Rows     int64
	Comment  string
}

type columnRow struct {
	ObjectID    int64
	ColumnID    int
	Name        string
	BaseType    string // system type name; CLR types by their own name
	Alias       string // schema.name of an alias type, "" otherwise
	MaxLength   int    // bytes, -1 for max
	Precision   int
	Scale       int
	Collation   string
	Nullable    bool
	Identity    bool
	Seed        string
	Increment   string
	Computed    bool
	ComputedDef string
	Persisted   bool
	DefaultDef  string
	Comment     string
	ColumnSet   bool
}

type indexRow struct {
	ObjectID         int64
	IndexID          int
	Name             string
	Type             int // 1 clustered, 2 nonclustered, 3 xml, 4 spatial, 5/6 columnstore, 7 hash
	Unique           bool
	PrimaryKey       bool
	UniqueConstraint bool
	Filter           string
	Disabled         bool
	KeyOrdinal       int
	Desc             bool
	Included         bool
	Column           string
}

type fkRow struct {
	ObjectID   int64
	ParentID   int64
	Name       string
	RefSchema  string
	RefTable   string
	OnDelete   int // 0 NO ACTION, 1 CASCADE, 2 SET NULL, 3 SET DEFAULT
	OnUpdate   int
	Disabled   bool
	NotTrusted bool
	Column     string
	RefColumn  string
}

type checkRow struct {
	ParentID   int64
	Name       string
	Definition string
	Disabled   bool
	NotTrusted bool
}

type catalogRows struct {
	Tables    []tableRow
	Columns   []columnRow
	Indexes   []indexRow
	FKs       []fkRow
	Checks    []checkRow
	Objects   []objectRow // what inventory.go reports as not migrated
	Sequences []sequenceRow
}

const userTable = `t.is_ms_shipped = 0 AND t.is_external = 0 AND NOT (SCHEMA_NAME(t.schema_id) = N'dbo' AND t.name = N'sysdiagrams')`

// tableRowsExpr is a table's row estimate: the heap's or clustered
// index's rows in sys.partitions (dialect.tablesSQL says what Babelfish
// reads instead).
const tableRowsExpr = `CAST(COALESCE((SELECT SUM(p.rows) FROM sys.partitions AS p WHERE p.object_id = t.object_id AND p.index_id IN (0, 1)), 0) AS bigint)`

const tablesSQL = `SELECT t.object_id, s.name, t.name,
  ` + tableRowsExpr + `,
  COALESCE(CAST(ep.value AS nvarchar(max)), N'')
FROM sys.tables AS t
JOIN sys.schemas AS s ON s.schema_id = t.schema_id
LEFT JOIN sys.extended_properties AS ep ON ep.class = 1 AND ep.major_id = t.object_id AND ep.minor_id = 0 AND ep.name = N'MS_Description'
WHERE ` + userTable + `
ORDER BY s.name, t.name`

// Columns are read in five plain queries merged here rather than one join:
// on Babelfish the sys.* views are PostgreSQL views, and the single query
// joining sys.types, sys.identity_columns, sys.computed_columns,
// sys.default_constraints and sys.extended_properties per column took
// minutes for a 1,024-column table (each view alone takes seconds).
// Babelfish's sys.identity_columns also repeats a column (three rows
// seen, not all with the seed): the first row with a value is kept.

// columnsSQL reads the columns. TYPE_NAME(system_type_id) is the base type
// of an alias type (and nvarchar for sysname); user_type_id finds the
// alias and CLR types in typesSQL.
const columnsSQL = `SELECT c.object_id, c.column_id, c.name, COALESCE(TYPE_NAME(c.system_type_id), N''), c.user_type_id,
  CAST(c.max_length AS int), CAST(c.precision AS int), CAST(c.scale AS int), COALESCE(c.collation_name, N''),
  c.is_nullable, c.is_identity, c.is_computed, c.is_column_set
FROM sys.columns AS c
JOIN sys.tables AS t ON t.object_id = c.object_id
WHERE ` + userTable + `
ORDER BY c.object_id, c.column_id`

// typesSQL reads user-defined types: alias types resolve to their base
// (TYPE_NAME above); CLR types (hierarchyid, geography, geometry) share
// one system_type_id and are named by their own row.
const typesSQL = `SELECT ty.user_type_id, ty.name, COALESCE(SCHEMA_NAME(ty.schema_id), N''), ty.is_user_defined, ty.is_assembly_type
FROM sys.types AS ty WHERE ty.is_user_defined = 1 OR ty.is_assembly_type = 1`

// identitySQL falls back on IDENT_SEED/IDENT_INCR: Babelfish leaves
// seed_value and increment_value NULL outside dbo.
const identitySQL = `SELECT ic.object_id, ic.column_id,
  COALESCE(CAST(ic.seed_value AS nvarchar(50)), CAST(IDENT_SEED(QUOTENAME(SCHEMA_NAME(t.schema_id)) + N'.' + QUOTENAME(t.name)) AS nvarchar(50)), N''),
  COALESCE(CAST(ic.increment_value AS nvarchar(50)), CAST(IDENT_INCR(QUOTENAME(SCHEMA_NAME(t.schema_id)) + N'.' + QUOTENAME(t.name)) AS nvarchar(50)), N'')
FROM sys.identity_columns AS ic JOIN sys.tables AS t ON t.object_id = ic.object_id
WHERE ` + userTable

const computedSQL = `SELECT cc.object_id, cc.column_id, COALESCE(cc.definition, N''), CAST(COALESCE(cc.is_persisted, 0) AS bit)
FROM sys.computed_columns AS cc JOIN sys.tables AS t ON t.object_id = cc.object_id
WHERE ` + userTable

const defaultsSQL = `SELECT dc.parent_object_id, dc.parent_column_id, COALESCE(dc.definition, N'')
FROM sys.default_constraints AS dc JOIN sys.tables AS t ON t.object_id = dc.parent_object_id
WHERE ` + userTable

const columnCommentsSQL = `SELECT ep.major_id, ep.minor_id, COALESCE(CAST(ep.value AS nvarchar(max)), N'')
FROM sys.extended_properties AS ep JOIN sys.tables AS t ON t.object_id = ep.major_id
WHERE ep.class = 1 AND ep.minor_id > 0 AND ep.name = N'MS_Description' AND ` + userTable

const indexTableJoin = "JOIN sys.tables AS t ON t.object_id = i.object_id\n"

// indexesSQL skips partitioning columns SQL Server adds to clustered
// indexes (key_ordinal 0 and not included).
const indexesSQL = `SELECT i.object_id, i.index_id, COALESCE(i.name, N''), CAST(i.type AS int), i.is_unique, i.is_primary_key, i.is_unique_constraint,
  COALESCE(i.filter_definition, N''), i.is_disabled,
  CAST(ic.key_ordinal AS int), ic.is_descending_key, ic.is_included_column, col.name
FROM sys.indexes AS i
` + indexTableJoin + `JOIN sys.index_columns AS ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id
JOIN sys.columns AS col ON col.object_id = ic.object_id AND col.column_id = ic.column_id
WHERE ` + userTable + ` AND i.index_id > 0 AND i.is_hypothetical = 0 AND (ic.key_ordinal > 0 OR ic.is_included_column = 1 OR i.type IN (3, 4, 5, 6))
ORDER BY i.object_id, i.index_id, ic.is_included_column, ic.key_ordinal, ic.index_column_id`

const fksSQL = `SELECT fk.object_id, fk.parent_object_id, fk.name, rs.name, rt.name,
  CAST(fk.delete_referential_action AS int), CAST(fk.update_referential_action AS int), fk.is_disabled, fk.is_not_trusted,
  pc.name, rc.name
FROM sys.foreign_keys AS fk
JOIN sys.tables AS t ON t.object_id = fk.parent_object_id
JOIN sys.tables AS rt ON rt.object_id = fk.referenced_object_id
JOIN sys.schemas AS rs ON rs.schema_id = rt.schema_id
JOIN sys.foreign_key_columns AS fkc ON fkc.constraint_object_id = fk.object_id
JOIN sys.columns AS pc ON pc.object_id = fkc.parent_object_id AND pc.column_id = fkc.parent_column_id
JOIN sys.columns AS rc ON rc.object_id = fkc.referenced_object_id AND rc.column_id = fkc.referenced_column_id
WHERE ` + userTable + `
ORDER BY fk.parent_object_id, fk.name, fkc.constraint_column_id`

const checksSQL = `SELECT cc.parent_object_id, cc.name, cc.definition, cc.is_disabled, cc.is_not_trusted
FROM sys.check_constraints AS cc
JOIN sys.tables AS t ON t.object_id = cc.parent_object_id
WHERE ` + userTable + `
ORDER BY cc.parent_object_id, cc.name`

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// readCatalog runs the catalog queries.
func readCatalog(ctx context.Context, q queryer, d dialect) (*catalogRows, error) {
	var c catalogRows
	var err error
	err = scanAll(ctx, q, d.tablesSQL(), "tables", func(r *sql.Rows) error {
		var t tableRow
		err := r.Scan(&t.ObjectID, &t.Schema, &t.Name, &t.Rows, &t.Comment)
		c.Tables = append(c.Tables, t)
		return err
	})
	if err != nil {
		return nil, err
	}
	if c.Columns, err = readColumns(ctx, q); err != nil {
		return nil, err
	}
	d.columns(c.Columns)
	err = scanAll(ctx, q, d.indexesSQL(), "indexes", func(r *sql.Rows) error {
		var x indexRow
		err := r.Scan(&x.ObjectID, &x.IndexID, &x.Name, &x.Type, &x.Unique, &x.PrimaryKey, &x.UniqueConstraint,
			&x.Filter, &x.Disabled, &x.KeyOrdinal, &x.Desc, &x.Included, &x.Column)
		c.Indexes = append(c.Indexes, x)
		return err
	})
	if err != nil {
		return nil, err
	}
	if d.Babelfish {
		names := map[int64]string{}
		for _, t := range c.Tables {
			names[t.ObjectID] = t.Name
		}
		for i := range c.Indexes {
			c.Indexes[i].Name = d.indexName(names[c.Indexes[i].ObjectID], c.Indexes[i].Name)
		}
	}
	err = scanAll(ctx, q, fksSQL, "foreign keys", func(r *sql.Rows) error {
		var x fkRow
		err := r.Scan(&x.ObjectID, &x.ParentID, &x.Name, &x.RefSchema, &x.RefTable, &x.OnDelete, &x.OnUpdate,
			&x.Disabled, &x.NotTrusted, &x.Column, &x.RefColumn)
		c.FKs = append(c.FKs, x)
		return err
	})
	if err != nil {
		return nil, err
	}
	err = scanAll(ctx, q, checksSQL, "check constraints", func(r *sql.Rows) error {
		var x checkRow
		err := r.Scan(&x.ParentID, &x.Name, &x.Definition, &x.Disabled, &x.NotTrusted)
		c.Checks = append(c.Checks, x)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := readObjects(ctx, q, d, &c); err != nil {
		return nil, err
	}
	c.Objects = d.objects(&c)
	if err := readTableTypes(ctx, q, &c); err != nil {
		return nil, err
	}
	if err := readSequences(ctx, q, d, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

type colKey struct {
	obj int64
	col int
}

type userType struct {
	name, schema       string
	userDefined, isCLR bool
}

// readColumns reads the columns and what belongs to them, and merges.
func readColumns(ctx context.Context, q queryer) ([]columnRow, error) {
	var cols []columnRow
	typeIDs := map[colKey]int64{}
	err := scanAll(ctx, q, columnsSQL, "columns", func(r *sql.Rows) error {
		var x columnRow
		var typeID int64
		err := r.Scan(&x.ObjectID, &x.ColumnID, &x.Name, &x.BaseType, &typeID, &x.MaxLength, &x.Precision, &x.Scale,
			&x.Collation, &x.Nullable, &x.Identity, &x.Computed, &x.ColumnSet)
		typeIDs[colKey{x.ObjectID, x.ColumnID}] = typeID
		cols = append(cols, x)
		return err
	})
	if err != nil {
		return nil, err
	}
	types := map[int64]userType{}
	err = scanAll(ctx, q, typesSQL, "types", func(r *sql.Rows) error {
		var id int64
		var u userType
		err := r.Scan(&id, &u.name, &u.schema, &u.userDefined, &u.isCLR)
		types[id] = u
		return err
	})
	if err != nil {
		return nil, err
	}
	type side struct{ a, b string }
	read := func(query, what string, withB bool) (map[colKey]side, error) {
		out := map[colKey]side{}
		err := scanAll(ctx, q, query, what, func(r *sql.Rows) error {
			var k colKey
			var v side
			var err error
			if withB {
				err = r.Scan(&k.obj, &k.col, &v.a, &v.b)
			} else {
				err = r.Scan(&k.obj, &k.col, &v.a)
			}
			if old, seen := out[k]; !seen || old.a == "" {
				out[k] = v
			}
			return err
		})
		return out, err
	}
	ident, err := read(identitySQL, "identity columns", true)
	if err != nil {
		return nil, err
	}
	defaults, err := read(defaultsSQL, "default constraints", false)
	if err != nil {
		return nil, err
	}
	comments, err := read(columnCommentsSQL, "column comments", false)
	if err != nil {
		return nil, err
	}
	computed := map[colKey]struct {
		def       string
		persisted bool
	}{}
	err = scanAll(ctx, q, computedSQL, "computed columns", func(r *sql.Rows) error {
		var k colKey
		var v struct {
			def       string
			persisted bool
		}
		err := r.Scan(&k.obj, &k.col, &v.def, &v.persisted)
		computed[k] = v
		return err
	})
	if err != nil {
		return nil, err
	}
	for i := range cols {
		x := &cols[i]
		k := colKey{x.ObjectID, x.ColumnID}
		if u, ok := types[typeIDs[k]]; ok {
			if u.isCLR {
				x.BaseType = u.name
			} else if u.userDefined {
				x.Alias = u.schema + "." + u.name
			}
		}
		x.Seed, x.Increment = ident[k].a, ident[k].b
		x.DefaultDef = defaults[k].a
		x.Comment = comments[k].a
		x.ComputedDef, x.Persisted = computed[k].def, computed[k].persisted
	}
	return cols, nil
}

func scanAll(ctx context.Context, q queryer, query, what string, scan func(*sql.Rows) error, args ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("read %s: %w", what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	return nil
}
