package mssql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/caravan-db/caravan/schema"
)

// The inventory lists what caravan leaves behind from a SQL Server source,
// so that nothing is lost by surprise: views, routines, triggers,
// synonyms, sequences, table types, partition schemes, system versioning
// and indexes PostgreSQL has no equivalent of. plan prints it and a run
// refuses to start until the user accepts each (schema.Unmigrated).

// objectRow is one schema-scoped object of sys.objects, or a partition
// scheme (Type "PS") or a system-versioned table (Type "SV", Parent its
// history table).
type objectRow struct {
	Type   string // sys.objects.type, trimmed
	Schema string
	Name   string
	Parent string // schema.name of a trigger's table; "" otherwise
	// Definition is the T-SQL that creates it: a module's text from
	// OBJECT_DEFINITION (NULL, so "", for CLR and encrypted modules), a
	// synonym's generated CREATE SYNONYM; "" for the others.
	Definition string
}

// objectsSQL reads the objects the inventory reports. Table types come
// from sys.table_types, by the name users gave them: sys.objects knows
// them by their internal table (TT_<name>_<id>), which Babelfish marks
// is_ms_shipped. The temporal type is
// read through OBJECTPROPERTY, which is NULL on servers older than 2016
// instead of failing on a missing column.
// Every column is cast to one type in every branch: Babelfish types a
// UNION's columns by its first branch (varchar(2) for the type) and
// refused the longer values of the others.
const objectsSQL = `SELECT CAST(RTRIM(o.type) AS nvarchar(2)), CAST(SCHEMA_NAME(o.schema_id) AS nvarchar(128)), CAST(o.name AS nvarchar(128)),
  CAST(COALESCE(OBJECT_SCHEMA_NAME(o.parent_object_id) + N'.' + OBJECT_NAME(o.parent_object_id), N'') AS nvarchar(300)),
  CAST(COALESCE(` + objectDefinition + `, N'') AS nvarchar(max))
FROM sys.objects AS o
WHERE o.is_ms_shipped = 0 AND o.type IN ('V', 'P', 'PC', 'FN', 'IF', 'TF', 'FS', 'FT', 'AF', 'TR', 'SN', 'SO')
UNION ALL
SELECT CAST(N'TT' AS nvarchar(2)), CAST(SCHEMA_NAME(tt.schema_id) AS nvarchar(128)), CAST(tt.name AS nvarchar(128)), CAST(N'' AS nvarchar(300)), CAST(N'' AS nvarchar(max))
FROM sys.table_types AS tt WHERE tt.is_user_defined = 1
UNION ALL
SELECT CAST(N'PS' AS nvarchar(2)), CAST(N'' AS nvarchar(128)), CAST(ps.name AS nvarchar(128)), CAST(N'' AS nvarchar(300)), CAST(N'' AS nvarchar(max)) FROM sys.partition_schemes AS ps
UNION ALL
SELECT CAST(N'SV' AS nvarchar(2)), CAST(SCHEMA_NAME(t.schema_id) AS nvarchar(128)), CAST(t.name AS nvarchar(128)),
  CAST(COALESCE(OBJECT_SCHEMA_NAME(t.history_table_id) + N'.' + OBJECT_NAME(t.history_table_id), N'') AS nvarchar(300)),
  CAST(N'' AS nvarchar(max))
FROM sys.tables AS t
WHERE OBJECTPROPERTY(t.object_id, 'TableTemporalType') = 2 AND ` + userTable + `
ORDER BY 1, 2, 3`

// tableTypeColumnsSQL reads the columns of user-defined table types, by
// their system type, so a table type's listing carries a CREATE TYPE the
// person rewriting it can read (OBJECT_DEFINITION has none for types).
const tableTypeColumnsSQL = `SELECT CAST(SCHEMA_NAME(tt.schema_id) AS nvarchar(128)), CAST(tt.name AS nvarchar(128)), CAST(c.name AS nvarchar(128)),
  CAST(TYPE_NAME(c.system_type_id) AS nvarchar(128)), CAST(c.max_length AS int), CAST(c.precision AS int), CAST(c.scale AS int), c.is_nullable
FROM sys.table_types AS tt
JOIN sys.columns AS c ON c.object_id = tt.type_table_object_id
ORDER BY 1, 2, c.column_id`

// readTableTypes fills in the definition of each table type listed: only
// when there is one, so an engine without table types is not asked.
func readTableTypes(ctx context.Context, q queryer, c *catalogRows) error {
	types := map[schema.Name]*objectRow{}
	for i, o := range c.Objects {
		if o.Type == "TT" && o.Definition == "" {
			types[schema.Name{Schema: o.Schema, Name: o.Name}] = &c.Objects[i]
		}
	}
	if len(types) == 0 {
		return nil
	}
	cols := map[schema.Name][]string{}
	err := scanAll(ctx, q, tableTypeColumnsSQL, "table types", func(r *sql.Rows) error {
		var n schema.Name
		var col, base string
		var maxLen, prec, scale int
		var nullable bool
		if err := r.Scan(&n.Schema, &n.Name, &col, &base, &maxLen, &prec, &scale, &nullable); err != nil {
			return err
		}
		cols[n] = append(cols[n], tableTypeColumn(col, base, maxLen, prec, scale, nullable))
		return nil
	})
	if err != nil {
		return err
	}
	for n, o := range types {
		o.Definition = tableTypeDefinition(n, cols[n])
	}
	return nil
}

// tableTypeColumn spells one column of a table type in T-SQL.
func tableTypeColumn(name, base string, maxLen, prec, scale int, nullable bool) string {
	typ := base
	if t, err := typeFromCatalog(base, maxLen, prec, scale, ""); err == nil {
		typ = t.String()
	}
	null := " NOT NULL"
	if nullable {
		null = " NULL"
	}
	return quoteIdent(name) + " " + typ + null
}

// tableTypeDefinition is a table type's CREATE TYPE, columns only.
func tableTypeDefinition(n schema.Name, cols []string) string {
	if len(cols) == 0 {
		return ""
	}
	return "-- built from the catalog: columns only (keys, checks and defaults of the type are not shown)\n" +
		"CREATE TYPE " + quoteIdent(n.Schema) + "." + quoteIdent(n.Name) + " AS TABLE (\n    " + strings.Join(cols, ",\n    ") + "\n);"
}

// objectDefinition is an object's T-SQL: a synonym's is generated.
const objectDefinition = `CASE WHEN o.type = 'SN'
    THEN (SELECT N'CREATE SYNONYM ' + QUOTENAME(SCHEMA_NAME(o.schema_id)) + N'.' + QUOTENAME(o.name) + N' FOR ' + s.base_object_name
      FROM sys.synonyms AS s WHERE s.object_id = o.object_id)
    ELSE OBJECT_DEFINITION(o.object_id) END`

func readObjects(ctx context.Context, q queryer, d dialect, c *catalogRows) error {
	return scanAll(ctx, q, d.objectsSQL(), "objects", func(r *sql.Rows) error {
		var x objectRow
		err := r.Scan(&x.Type, &x.Schema, &x.Name, &x.Parent, &x.Definition)
		c.Objects = append(c.Objects, x)
		return err
	})
}

// objectKinds names each sys.objects type and says what caravan does with it.
var objectKinds = map[string]struct{ kind, reason string }{
	"V":  {"view", "not migrated: its T-SQL query is not translated; rewrite it for PostgreSQL"},
	"P":  {"procedure", "not migrated: T-SQL code; rewrite it in PL/pgSQL"},
	"PC": {"procedure", "not migrated: CLR code; rewrite it for PostgreSQL"},
	"FN": {"function", "not migrated: T-SQL code; rewrite it in PL/pgSQL"},
	"IF": {"function", "not migrated: T-SQL code (inline table-valued); rewrite it for PostgreSQL"},
	"TF": {"function", "not migrated: T-SQL code (table-valued); rewrite it in PL/pgSQL"},
	"FS": {"function", "not migrated: CLR code; rewrite it for PostgreSQL"},
	"FT": {"function", "not migrated: CLR code (table-valued); rewrite it for PostgreSQL"},
	"AF": {"aggregate", "not migrated: CLR code; rewrite it as a PostgreSQL aggregate"},
	"TR": {"trigger", "not migrated: T-SQL code; rewrite it as a PL/pgSQL trigger function and trigger"},
	"SN": {"synonym", "not migrated: PostgreSQL has no synonyms (a view or the search_path can stand in)"},
	"TT": {"table type", "not migrated: PostgreSQL has no table types (a composite type or a temporary table can stand in)"},
	"PS": {"partition scheme", "not migrated: the tables on it are copied unpartitioned"},
	"SV": {"system versioning", "the table and its history table are copied as plain tables: PostgreSQL has no system versioning"},
}

// inventory lists what the run leaves behind: the catalog's objects
// (sequences aside: migrateSequences creates them), and
// the indexes of the run's tables that PostgreSQL cannot have. Objects
// outside the run's schemas are not the run's (runSchemas). A trigger
// follows its table through the include/exclude patterns, as does a
// system-versioned table.
func inventory(rows *catalogRows, filter schema.Filter) []*schema.Unmigrated {
	var out []*schema.Unmigrated
	inRun := runSchemas(rows, filter)
	for _, o := range rows.Objects {
		k, ok := objectKinds[o.Type]
		if !ok || (o.Schema != "" && !inRun(o.Schema)) {
			continue
		}
		name := o.Schema + "." + o.Name
		switch o.Type {
		case "PS":
			name = o.Name
		case "TR":
			if p, ok := splitName(o.Parent); ok && !filter.Match(p) {
				continue
			}
		case "SV":
			if !filter.Match(schema.Name{Schema: o.Schema, Name: o.Name}) {
				continue
			}
		}
		reason := k.reason
		if o.Type == "SV" && o.Parent != "" {
			reason = fmt.Sprintf("the table and its history table %s are copied as plain tables: PostgreSQL has no system versioning", o.Parent)
		}
		out = append(out, &schema.Unmigrated{Kind: k.kind, Name: name, Reason: reason, Definition: o.Definition})
	}
	tables := map[int64]schema.Name{}
	for _, t := range rows.Tables {
		if n := (schema.Name{Schema: t.Schema, Name: t.Name}); filter.Match(n) {
			tables[t.ObjectID] = n
		}
	}
	seen := map[string]bool{}
	for _, ix := range rows.Indexes {
		t, ok := tables[ix.ObjectID]
		kind := map[int]string{3: "xml index", 4: "spatial index", 5: "columnstore index", 6: "columnstore index"}[ix.Type]
		if !ok || kind == "" {
			continue
		}
		name := t.String() + "." + ix.Name
		if seen[name] {
			continue // one row per index column
		}
		seen[name] = true
		out = append(out, &schema.Unmigrated{Kind: kind, Name: name, Reason: "not created: PostgreSQL has no equivalent (the table's rows are copied)"})
	}
	return out
}

// runSchemas says whether a schema is one of the run's: every schema, or
// with --include those of the included tables (as for PostgreSQL sources),
// so a run of one schema is not held up by the objects of others.
func runSchemas(rows *catalogRows, filter schema.Filter) func(string) bool {
	if len(filter.Include) == 0 {
		return func(string) bool { return true }
	}
	in := map[string]bool{}
	for _, t := range rows.Tables {
		if filter.Match(schema.Name{Schema: t.Schema, Name: t.Name}) {
			in[t.Schema] = true
		}
	}
	return func(s string) bool { return in[s] }
}

func splitName(s string) (schema.Name, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return schema.Name{Schema: s[:i], Name: s[i+1:]}, true
		}
	}
	return schema.Name{}, false
}
