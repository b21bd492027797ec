package mssql

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/caravan-db/caravan/schema"
)

// This file builds every T-SQL statement Plan and Read send. Names are
// bracket-quoted; values (bounds, page sizes, object names for OBJECT_ID)
// are always parameters (@p1, @p2, ... as the "sqlserver" driver names
// positional arguments); the only text built from catalog data are type
// names and collation names, both checked against a strict pattern by
// parseSQLType.

// quoteIdent quotes a T-SQL identifier.
func quoteIdent(s string) string { return "[" + strings.ReplaceAll(s, "]", "]]") + "]" }

// tableRef names a table, in the database snapshot dbName when set.
func tableRef(dbName string, n schema.Name) string {
	ref := quoteIdent(n.Schema) + "." + quoteIdent(n.Name)
	if dbName != "" {
		ref = quoteIdent(dbName) + "." + ref
	}
	return ref
}

// objectName is the text OBJECT_ID() resolves (passed as a parameter).
func objectName(n schema.Name) string { return quoteIdent(n.Schema) + "." + quoteIdent(n.Name) }

// castType spells a type for CAST/CONVERT: without its collation.
func castType(t sqlType) string {
	c := t
	c.Collation = ""
	if c.Name == "rowversion" {
		return "binary(8)"
	}
	return c.String()
}

// nvarcharLen is the nvarchar length that holds a character column's
// values: a varchar(n) holds at most n characters in any code page.
func nvarcharLen(t sqlType) string {
	if t.Length > 0 && t.Length <= 4000 {
		return strconv.Itoa(t.Length)
	}
	return "max"
}

// selectExprs are the select-list expressions of one column for the
// target printer k; decodeValue knows what each returns.
func (d dialect) selectExprs(ref string, t sqlType, k pgKind) []string {
	switch {
	case t.isChar():
		return []string{d.charExpr(ref, t)}
	case t.Name == "hierarchyid":
		return []string{ref + ".ToString()"}
	case t.isSpatial():
		if k.Name == "geometry" {
			return []string{"CAST(" + ref + ".STSrid AS binary(4)) + " + ref + ".AsBinaryZM()"}
		}
		return []string{ref + ".AsTextZM()"}
	case t.Name == "sql_variant":
		return []string{ref, "CAST(SQL_VARIANT_PROPERTY(" + ref + ", 'BaseType') AS nvarchar(128))"}
	case t.Name == "datetime":
		return []string{d.datetimeExpr(ref)}
	case (t.Name == "decimal" || t.Name == "numeric") && t.Precision == 0:
		// Unconstrained (dialect.columns: Babelfish's computed numerics).
		// TDS carries such a value as decimal(38,38)'s wire form, cut to 8
		// decimals (2.3333333333333333 arrived as 2.33333333); the engine's
		// own text of it is exact.
		return []string{"CAST(" + ref + " AS varchar(max))"}
	}
	return []string{ref}
}

// keyExpr selects a key column's value in the form keyText and keyParam
// read: native where the driver's value is exact, text where SQL Server's
// own text is the exact round trip (style 121 is ISO with the type's full
// precision, and the default style of date, time, datetime2 and
// datetimeoffset).
func (d dialect) keyExpr(ref string, t sqlType) string {
	switch {
	case t.Name == "datetime":
		return "CONVERT(varchar(40), " + d.datetimeExpr(ref) + ", 121)"
	case t.isTemporal():
		return "CONVERT(varchar(40), " + ref + ", 121)"
	case t.isChar():
		return d.charExpr(ref, t)
	case t.Name == "hierarchyid":
		return ref + ".ToString()"
	}
	return ref
}

// paramExpr turns parameter p (as keyParam/paramFromText produce it) into
// a value of the key column's exact type, so the engine compares in the
// column's own type and collation and can seek.
func (d dialect) paramExpr(p string, t sqlType) string {
	switch {
	case t.isTemporal():
		return "CONVERT(" + castType(t) + ", " + p + ", 121)"
	case t.isChar():
		return d.charParamExpr(p, t)
	case t.Name == "hierarchyid":
		return "hierarchyid::Parse(" + p + ")"
	}
	return "CAST(" + p + " AS " + castType(t) + ")"
}

// keyCol is a key column for predicate building.
type keyCol struct {
	Ref  string // quoted column reference
	Type sqlType
}

// ordered is the key column as it is compared and ordered: in its
// collation, stated.
func (k keyCol) ordered(prefix string) string { return collate(prefix+k.Ref, k.Type) }

// tuplePredicate expands (k1, ..., kn) op (@a1, ..., @an) for T-SQL, which
// has no row-value comparison: a disjunction over the first differing
// column, led by a sargable condition on k1 so SQL Server can seek.
// op is ">", ">=" or "<".
func (d dialect) tuplePredicate(keys []keyCol, params []string, op string) string {
	strict := op
	if op == ">=" {
		strict = ">"
	}
	lead := ">="
	if op == "<" {
		lead = "<="
	}
	var ors []string
	for i := range keys {
		var ands []string
		for j := 0; j < i; j++ {
			ands = append(ands, keys[j].ordered("")+" = "+d.paramExpr(params[j], keys[j].Type))
		}
		o := strict
		if i == len(keys)-1 {
			o = op
		}
		ands = append(ands, keys[i].ordered("")+" "+o+" "+d.paramExpr(params[i], keys[i].Type))
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	if len(keys) == 1 {
		return ors[0]
	}
	return "(" + keys[0].ordered("") + " " + lead + " " + d.paramExpr(params[0], keys[0].Type) + " AND (" + strings.Join(ors, " OR ") + "))"
}

// params names n parameters from @p<first>.
func paramNames(first, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "@p" + strconv.Itoa(first+i)
	}
	return out
}

// pageQuery is one keyset page of a chunk: TOP (@p1) rows in key order
// from [lo, hi), after the last key of the previous page when after is
// set. It returns the statement and the first parameter number of each
// bound (0 when the bound is absent). The key expressions not among the
// column expressions follow them in the select list (keySelect).
type pageSQL struct {
	SQL                 string
	LoAt, HiAt, AfterAt int
}

func (d dialect) pageQuery(table string, colExprs []string, keys []keyCol, hasLo, hasHi, after bool) pageSQL {
	return d.rangeQuery(table, colExprs, keys, hasLo, hasHi, after, true)
}

// keySelect says where each key value is in a read's select list: a key
// whose keyExpr is already one of colExprs (an integer, uniqueidentifier or
// binary key, and a character key, selected the same way for both) is read
// once, at that position; the others follow colExprs, in key order, as
// extra. The engine then sends, and the driver decodes, the key once per
// row instead of twice.
func (d dialect) keySelect(colExprs []string, keys []keyCol) (extra []string, at []int) {
	at = make([]int, len(keys))
	for i, k := range keys {
		e := d.keyExpr(k.Ref, k.Type)
		at[i] = slices.Index(colExprs, e)
		if at[i] < 0 {
			at[i] = len(colExprs) + len(extra)
			extra = append(extra, e)
		}
	}
	return extra, at
}

// rangeQuery is pageQuery with TOP (@p1) when top is set, else the whole
// range [lo, hi) in key order in one statement, its bounds from @p1.
func (d dialect) rangeQuery(table string, colExprs []string, keys []keyCol, hasLo, hasHi, after, top bool) pageSQL {
	var q pageSQL
	extra, _ := d.keySelect(colExprs, keys)
	sel := append(append([]string{}, colExprs...), extra...)
	next, head := 2, "SELECT TOP (@p1) "
	if !top {
		next, head = 1, "SELECT "
	}
	var conds []string
	if hasLo {
		q.LoAt = next
		conds = append(conds, d.tuplePredicate(keys, paramNames(next, len(keys)), ">="))
		next += len(keys)
	}
	if hasHi {
		q.HiAt = next
		conds = append(conds, d.tuplePredicate(keys, paramNames(next, len(keys)), "<"))
		next += len(keys)
	}
	if after {
		q.AfterAt = next
		conds = append(conds, d.tuplePredicate(keys, paramNames(next, len(keys)), ">"))
	}
	var b strings.Builder
	b.WriteString(head + strings.Join(sel, ", ") + " FROM " + table)
	if len(conds) > 0 {
		b.WriteString(" WHERE " + strings.Join(conds, " AND "))
	}
	b.WriteString(" ORDER BY " + keyOrder(keys, ""))
	q.SQL = b.String()
	return q
}

// keyOrder is the ORDER BY list of the key, each column qualified by
// prefix and in its stated collation.
func keyOrder(keys []keyCol, prefix string) string {
	refs := make([]string, len(keys))
	for i, k := range keys {
		refs[i] = k.ordered(prefix)
	}
	return strings.Join(refs, ", ")
}

// Catalog-side statements of Plan.

const pkIndexSQL = `SELECT i.index_id FROM sys.indexes AS i WHERE i.object_id = OBJECT_ID(@p1) AND i.is_primary_key = 1`

const rowCountSQL = `SELECT CAST(COALESCE(SUM(p.rows), 0) AS bigint) FROM sys.partitions AS p WHERE p.object_id = OBJECT_ID(@p1) AND p.index_id IN (0, 1)`

// histogramSQL reads the steps of the primary key's statistics: the
// leading key column's distribution, maintained by SQL Server, so
// planning never scans the table.
const histogramSQL = `SELECT h.step_number, CAST(h.range_rows AS float), CAST(h.equal_rows AS float) FROM sys.dm_db_stats_histogram(OBJECT_ID(@p1), @p2) AS h ORDER BY h.step_number`

// histogramBoundsSQL turns chosen histogram steps into full key tuples: the
// first key after each step's upper key, found with one index seek per
// step. A bound is only a split point: any value covers the table
// exactly, so stale statistics cost balance, never correctness.
func (d dialect) histogramBoundsSQL(table string, keys []keyCol) string {
	var inner, outer []string
	for _, k := range keys {
		inner = append(inner, "x."+k.Ref)
		outer = append(outer, d.keyExpr("b."+k.Ref, k.Type))
	}
	lead := "CAST(h.range_hi_key AS " + castType(keys[0].Type) + ")"
	if keys[0].Type.Name == "hierarchyid" {
		lead = "CAST(CAST(h.range_hi_key AS varbinary(892)) AS hierarchyid)"
	}
	return "SELECT h.step_number, " + strings.Join(outer, ", ") +
		" FROM sys.dm_db_stats_histogram(OBJECT_ID(@p1), @p2) AS h" +
		" CROSS APPLY (SELECT TOP (1) " + strings.Join(inner, ", ") + " FROM " + table + " AS x" +
		" WHERE " + keys[0].ordered("x.") + " > " + collate(lead, keys[0].Type) + " ORDER BY " + keyOrder(keys, "x.") + ") AS b" +
		" WHERE h.step_number IN (SELECT CAST(value AS int) FROM STRING_SPLIT(@p3, ','))" +
		" ORDER BY h.step_number"
}

// sampleBoundsSQL picks want-1 evenly spaced keys (want is @p1) from a
// sample of the key, in the engine's key order: the row numbered
// ceil(i*n/want) for i = 1..want-1, where n is however many keys the
// sample returned. The number of chunks thus follows from the row count
// and the chunk size, never from the sample's size: a page sample
// (TABLESAMPLE, SQL Server only) returns more or fewer rows than asked,
// none or all on a small table. n follows the key in the result. When
// every key is read and the rows were just counted in the same view
// (knownRows), n is that count, @p2, which spares a window aggregate.
func (d dialect) sampleBoundsSQL(table string, keys []keyCol, percent float64, knownRows bool) string {
	var inner, outer []string
	for _, k := range keys {
		inner = append(inner, k.Ref)
		outer = append(outer, d.keyExpr("x."+k.Ref, k.Type))
	}
	n, sample := "COUNT_BIG(*) OVER ()", d.tablesample(percent)
	if knownRows && sample == "" {
		n = "CAST(@p2 AS bigint)"
	}
	return "SELECT " + strings.Join(outer, ", ") + ", x.caravan_n FROM (SELECT " + strings.Join(inner, ", ") +
		", ROW_NUMBER() OVER (ORDER BY " + keyOrder(keys, "") + ") AS caravan_rn, " + n + " AS caravan_n FROM " + table + sample +
		") AS x WHERE x.caravan_rn < x.caravan_n AND (x.caravan_rn * @p1) / x.caravan_n <> ((x.caravan_rn - 1) * @p1) / x.caravan_n" +
		" ORDER BY " + keyOrder(keys, "x.")
}

// Snapshot statements.

const snapshotStateSQL = `SELECT d.snapshot_isolation_state, d.name FROM sys.databases AS d WHERE d.database_id = DB_ID()`

const dataFilesSQL = `SELECT f.name, f.physical_name FROM sys.database_files AS f WHERE f.type = 0`

// createSnapshotSQL creates a database snapshot. DDL takes no parameters:
// names are bracket-quoted and file paths are N” literals with quotes
// doubled; both come from sys.database_files and a name caravan made.
func createSnapshotSQL(snapshot, database string, files [][2]string) string {
	var parts []string
	for _, f := range files {
		path := f[1] + "." + snapshot + ".ss"
		parts = append(parts, fmt.Sprintf("(NAME = %s, FILENAME = N'%s')", quoteIdent(f[0]), strings.ReplaceAll(path, "'", "''")))
	}
	return "CREATE DATABASE " + quoteIdent(snapshot) + " ON " + strings.Join(parts, ", ") + " AS SNAPSHOT OF " + quoteIdent(database)
}

func dropSnapshotSQL(snapshot string) string { return "DROP DATABASE " + quoteIdent(snapshot) }
