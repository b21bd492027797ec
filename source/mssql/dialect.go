package mssql

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/caravan-db/caravan/schema"
)

// dialect is the T-SQL engine at the other end of the connection, chosen
// once at Open. Every way Babelfish for PostgreSQL (T-SQL and TDS on top of
// PostgreSQL) differs from SQL Server, as far as caravan cares, is decided
// here and nowhere else; docs/TYPES.md lists the differences and why each
// choice is what it is. SQL Server keeps its own semantics: what Babelfish
// lacks is still built for SQL Server, and unit tests cover that T-SQL.
type dialect struct {
	// Babelfish is set when the server says it is Babelfish
	// (SERVERPROPERTY('Babelfish') = 1, @@VERSION starts "Babelfish").
	Babelfish bool
	// Version is the first line of @@VERSION, for `caravan plan`.
	Version string
}

var (
	sqlServer = dialect{Version: "Microsoft SQL Server"}
	babelfish = dialect{Babelfish: true, Version: "Babelfish for PostgreSQL"}
)

// detectSQL asks the engine what it is. SERVERPROPERTY('Babelfish') is
// NULL on SQL Server; the version banner is the second witness.
const detectSQL = `SELECT CAST(@@VERSION AS nvarchar(4000)), CAST(COALESCE(SERVERPROPERTY('Babelfish'), 0) AS int)`

func detectDialect(ctx context.Context, q queryer) (dialect, error) {
	var version string
	var bbf int
	err := scanAll(ctx, q, detectSQL, "server version", func(r *sql.Rows) error { return r.Scan(&version, &bbf) })
	if err != nil {
		return dialect{}, err
	}
	return dialectOf(version, bbf == 1), nil
}

func dialectOf(version string, babelfishProperty bool) dialect {
	first, _, _ := strings.Cut(strings.TrimSpace(version), "\n")
	first = strings.TrimSpace(first)
	d := dialect{Version: first, Babelfish: babelfishProperty || strings.HasPrefix(first, "Babelfish")}
	if d.Version == "" {
		d.Version = sqlServer.Version
		if d.Babelfish {
			d.Version = babelfish.Version
		}
	}
	return d
}

// String names the engine for `caravan plan` and messages.
func (d dialect) String() string {
	if d.Babelfish {
		return "Babelfish (T-SQL over PostgreSQL): " + d.Version
	}
	return d.Version
}

// Text. On SQL Server character columns are read as the UTF-16LE bytes of
// their nvarchar form (utf16.go says why). Babelfish stores text as UTF-8
// in PostgreSQL and its CAST(... AS varbinary) encodes in the collation's
// code page, not UTF-16 (seen: N'aÑ😀' gave 61 D1 3F, the emoji lost as
// '?'; a char column gave UTF-8 bytes): no byte form is exact there. What
// is exact is the nvarchar value itself, which TDS carries as UTF-16 and
// go-mssqldb decodes; PostgreSQL text can hold no unpaired surrogate, so
// the driver's silent U+FFFD replacement never applies. varchar, text and
// ntext are converted to nvarchar on the server, so the column's code page
// is the server's business, not a driver table's.

// charExpr selects a character column in the form decodeValue reads: a
// []byte of UTF-16LE (SQL Server) or a string (Babelfish).
func (d dialect) charExpr(ref string, t sqlType) string {
	n := nvarcharLen(t)
	inner := ref
	if !t.isUnicode() || t.Name == "ntext" {
		inner = "CAST(" + ref + " AS nvarchar(" + n + "))"
	}
	if d.Babelfish {
		return inner
	}
	bin := "max"
	if n != "max" {
		bin = strconv.Itoa(2 * t.Length)
	}
	return "CAST(" + inner + " AS varbinary(" + bin + "))"
}

// charParam is the parameter for a character key bound: exact UTF-16LE
// bytes on SQL Server, the string itself (an nvarchar parameter) on
// Babelfish, whose varbinary to nvarchar conversion is not UTF-16.
func (d dialect) charParam(s string) any {
	if d.Babelfish {
		return s
	}
	return encodeUTF16(s)
}

// charParamExpr turns a character key parameter into a value of the key
// column's type, in the column's collation.
func (d dialect) charParamExpr(p string, t sqlType) string {
	if d.Babelfish {
		return collate("CAST("+p+" AS "+castType(t)+")", t)
	}
	// the parameter is UTF-16LE bytes; a varchar needs the column's
	// collation BEFORE the conversion, which picks the code page
	nv := "CAST(" + p + " AS nvarchar(" + nvarcharLen(t) + "))"
	if !t.isUnicode() && t.Collation != "" {
		nv += " COLLATE " + t.Collation
	}
	return collate("CAST("+nv+" AS "+castType(t)+")", t)
}

// collate states a character key's collation explicitly. Keyset paging
// orders (ORDER BY, ROW_NUMBER) and compares (k > @last) in the column's
// own collation, written out on both sides: on Babelfish an implicit
// comparison with a parameter was evaluated in another collation than the
// ORDER BY, and a case-insensitive key lost a third of its rows.
func collate(expr string, t sqlType) string {
	if t.isChar() && t.Collation != "" {
		return expr + " COLLATE " + t.Collation
	}
	return expr
}

// datetime. SQL Server stores it in 1/300 s ticks and TDS carries those
// ticks exactly. Babelfish stores it as a PostgreSQL timestamp to the
// millisecond (getdate() gave .408) and TDS rounds that to ticks (.407),
// as does its CONVERT(..., 121): only datetime2(3) carries the stored
// value there.
func (d dialect) datetimeExpr(ref string) string {
	if d.Babelfish {
		return "CAST(" + ref + " AS datetime2(3))"
	}
	return ref
}

// Keyless tables. SQL Server reads them in %%physloc%% order (file, page,
// slot): deterministic and free. Babelfish has no physical row locator
// (%%physloc%% is a syntax error there), so the order is every column,
// character data in a binary collation: rows that still tie are identical
// in every column, hence interchangeable in the output.

// heapQuery reads a keyless table in one statement; locator says whether
// the row locator follows the columns (to name a row in errors).
func (d dialect) heapQuery(table string, cols []readCol) (query string, locator bool) {
	var sel []string
	for _, c := range cols {
		sel = append(sel, c.Exprs...)
	}
	if !d.Babelfish {
		return "SELECT " + strings.Join(sel, ", ") + ", %%physloc%% FROM " + table + " ORDER BY %%physloc%%", true
	}
	var order []string
	for _, c := range cols {
		order = append(order, heapOrderExpr(quoteIdent(c.Name), c.Type))
	}
	q := "SELECT " + strings.Join(sel, ", ") + " FROM " + table
	if len(order) > 0 {
		q += " ORDER BY " + strings.Join(order, ", ")
	}
	return q, false
}

// heapOrder says in which order a keyless table is read, for the plan.
func (d dialect) heapOrder() string {
	if d.Babelfish {
		return "the order of all its columns (no physical row locator on Babelfish)"
	}
	return "%%physloc%% order"
}

// heapOrderExpr orders one column by its whole value: a binary collation
// for text (a case-insensitive collation would tie 'a' and 'A'), xml by its
// text (xml has no order).
func heapOrderExpr(ref string, t sqlType) string {
	switch {
	case t.isChar():
		n := nvarcharLen(t)
		if !t.isUnicode() || t.Name == "ntext" {
			ref = "CAST(" + ref + " AS nvarchar(" + n + "))"
		}
		return ref + " COLLATE Latin1_General_BIN2"
	case t.Name == "xml":
		return "CAST(" + ref + " AS nvarchar(max)) COLLATE Latin1_General_BIN2"
	case t.Name == "sql_variant":
		return "CAST(" + ref + " AS nvarchar(4000)) COLLATE Latin1_General_BIN2"
	}
	return ref
}

// Statistics. SQL Server keeps each index's row count in sys.partitions
// and a histogram of the key's leading column (sys.dm_db_stats_histogram);
// Babelfish has no histogram DMV and reports sys.partitions.rows = 0 until
// PostgreSQL has analyzed the table, so it counts the rows (a scan
// PostgreSQL does quickly) and bounds always come from the key sample.

// Babelfish, having no histogram and no page sample, would read every key
// to choose bounds (a ROW_NUMBER over the whole table: seconds for a
// million rows). For a key of one integer column it asks for MIN and MAX
// instead (two index lookups in PostgreSQL) and spaces the bounds evenly
// between them: any bounds cover the key space exactly, so a key with
// gaps costs balance between chunks, never a row.

// spacedBounds says whether planning spaces bounds evenly between the
// key's MIN and MAX rather than sampling it.
func (d dialect) spacedBounds(keys []keyCol) bool {
	return d.Babelfish && len(keys) == 1 && keys[0].Type.isInteger()
}

// keyExtentSQL reads the smallest and largest value of a one-column key.
func keyExtentSQL(table string, k keyCol) string {
	return "SELECT MIN(" + k.Ref + "), MAX(" + k.Ref + ") FROM " + table
}

// histogram says whether the engine has sys.dm_db_stats_histogram.
func (d dialect) histogram() bool { return !d.Babelfish }

// rowCountSQL counts the rows planning divides into chunks: the catalog's
// count on SQL Server, COUNT_BIG(*) of table on Babelfish.
func (d dialect) rowCountSQL(table string) (query string, byObject bool) {
	if d.Babelfish {
		return "SELECT COUNT_BIG(*) FROM " + table, false
	}
	return rowCountSQL, true
}

// tablesample is the sampling clause for percent of the table's pages;
// "" reads every key. Babelfish accepts TABLESAMPLE and ignores it (1
// PERCENT returned all 1,000,000 rows), so it is not sent there.
func (d dialect) tablesample(percent float64) string {
	if d.Babelfish || percent >= 100 {
		return ""
	}
	if percent < 0.000001 {
		percent = 0.000001
	}
	return " TABLESAMPLE SYSTEM (" + strconv.FormatFloat(percent, 'f', 6, 64) + " PERCENT)"
}

// Reads. SQL Server reads a chunk in keyset pages of 5000 rows: each page
// is a short statement (an index seek and TOP), so no statement holds a
// scan open for long. On Babelfish each statement costs a round of T-SQL
// translation and PostgreSQL planning, and a chunk is read inside one
// SNAPSHOT transaction (a PostgreSQL snapshot) anyway: the whole range
// [lo, hi) in key order is one statement there, streamed by TDS as it is
// produced. Measured on 1M rows in 10 chunks: 200 pages against 10
// statements (see the commit message).

// pageRows is the keyset page size of Read; 0 reads a chunk in one
// statement. An explicit size (Options.PageRows) is kept on both engines:
// the integration tests page through three rows at a time.
func (d dialect) pageRows(explicit int) int {
	switch {
	case explicit > 0:
		return explicit
	case d.Babelfish:
		return 0
	}
	return 5000
}

// Connections. Babelfish parses T-SQL with an ANTLR parser whose
// prediction cache is per backend process, so the first statement of a
// shape on a new connection costs parsing time: 200-600 ms for the first
// keyset read of a connection (its "Batch Parsing Time" under SET
// BABELFISH_STATISTICS PROFILE ON), 0.5 ms for the next. Read's
// connections are opened while planning runs (Source.warmConns) and each
// runs warmSQL, a statement of the keyset read's shape (a parameterised
// range over a catalog view in key order), which took the next keyset
// read's parsing from about 200 ms to 40 ms. On SQL Server it is an
// index seek that returns nothing; there it only overlaps the logins.
const warmSQL = `SELECT TOP (0) [o].[object_id], [o].[name] FROM [sys].[objects] AS [o] WHERE ([o].[object_id] >= CAST(@p1 AS bigint)) AND ([o].[object_id] < CAST(@p2 AS bigint)) ORDER BY [o].[object_id]`

// Catalog. Babelfish's sys.types ids are PostgreSQL oids (int is 23, not
// 56), so columnsSQL matches types by TYPE_NAME, never by id, on both
// engines. It has no clustered indexes (a HEAP row, index_id 0, and the
// primary key as nonclustered index 2), which caravan does not rely on:
// row counts sum index_id 0 and 1, and PostgreSQL has no clustered
// indexes to create. Its time, datetime2 and datetimeoffset keep 6
// fractional digits and sys.columns says scale 6, so their target types
// follow from the catalog as on SQL Server.

// Row estimates. Babelfish's sys.partitions is a view over pg_class
// whose rows are pg_class.reltuples (0 before PostgreSQL first analyzes
// the table). Its correlated subquery was the dearest part of the first
// catalog statement a connection runs there (about 100 ms of the
// backend's CPU of some 1.1 s for the whole catalog, measured by the
// backend's own CPU time: each new statement shape costs T-SQL parsing
// and catalog cache loading once per connection). The same number is
// read from pg_class directly, joined rather than in a subquery.
const (
	babelfishTableRows     = `CAST(CASE WHEN pc.reltuples > 0 THEN pc.reltuples ELSE 0 END AS bigint)`
	babelfishTableRowsJoin = "LEFT JOIN pg_catalog.pg_class AS pc ON pc.oid = t.object_id\n"
)

// tablesSQL reads the user tables with their row estimates and comments.
func (d dialect) tablesSQL() string {
	if !d.Babelfish {
		return tablesSQL
	}
	q := strings.Replace(tablesSQL, tableRowsExpr, babelfishTableRows, 1)
	return strings.Replace(q, "LEFT JOIN sys.extended_properties", babelfishTableRowsJoin+"LEFT JOIN sys.extended_properties", 1)
}

// Filtered indexes. Babelfish reports every index with has_filter = 0 and
// no filter_definition, so a unique index WHERE Note <> N'none' would look
// unique over all rows and fail on the target. The predicate is in its
// PostgreSQL catalog (pg_index.indpred, reachable from T-SQL there; the
// index's relname is its sys.indexes name, in its table's schema, whose
// schema_id is the namespace's oid). It is PostgreSQL text over
// Babelfish's types, which caravan does not translate: the index then
// takes the path of any filter caravan cannot translate (a unique one is
// not created, with a warning). The index is joined, not looked up in a
// correlated subquery: the subquery cost about 100 ms of the backend's CPU
// (the same measurement as the row estimates above).
const (
	babelfishFilter      = `COALESCE(CAST(pg_get_expr(x.indpred, x.indrelid) AS nvarchar(4000)), N'')`
	babelfishFilterJoins = "LEFT JOIN pg_catalog.pg_class AS xc ON xc.relname = i.name AND xc.relnamespace = t.schema_id\n" +
		"LEFT JOIN pg_catalog.pg_index AS x ON x.indexrelid = xc.oid AND x.indrelid = i.object_id\n"
)

// Sequences. Babelfish's sys.sequences is empty: a sequence is a
// PostgreSQL sequence whose oid is its sys.objects object_id, so its
// options are read from pg_sequence (reachable from T-SQL there) and its
// last value from pg_sequence_last_value (NULL until first used, as
// last_used_value on SQL Server). format_type names the PostgreSQL type.
const babelfishSequencesSQL = `SELECT CAST(SCHEMA_NAME(o.schema_id) AS nvarchar(128)), CAST(o.name AS nvarchar(128)), CAST(format_type(s.seqtypid, NULL) AS nvarchar(128)),
  CAST(s.seqstart AS nvarchar(60)), CAST(s.seqincrement AS nvarchar(60)), CAST(s.seqmin AS nvarchar(60)), CAST(s.seqmax AS nvarchar(60)),
  CAST(CAST(s.seqcycle AS int) AS bit), CAST(pg_catalog.pg_sequence_last_value(o.object_id) AS nvarchar(60))
FROM sys.objects AS o JOIN pg_catalog.pg_sequence AS s ON s.seqrelid = o.object_id
WHERE o.type = 'SO' AND o.is_ms_shipped = 0
ORDER BY 1, 2`

func (d dialect) sequencesSQL() string {
	if d.Babelfish {
		return babelfishSequencesSQL
	}
	return sequencesSQL
}

// Synonyms. Babelfish has none (CREATE SYNONYM is not supported), and
// generating a synonym's definition from sys.synonyms cost about 110 ms of
// the backend's CPU in the inventory statement there (the measurement of
// the row estimates above): its inventory reads OBJECT_DEFINITION alone.
func (d dialect) objectsSQL() string {
	if d.Babelfish {
		return strings.Replace(objectsSQL, objectDefinition, "OBJECT_DEFINITION(o.object_id)", 1)
	}
	return objectsSQL
}

// indexesSQL reads the indexes with their filters.
func (d dialect) indexesSQL() string {
	if d.Babelfish {
		q := strings.Replace(indexesSQL, "COALESCE(i.filter_definition, N'')", babelfishFilter, 1)
		return strings.Replace(q, indexTableJoin, indexTableJoin+babelfishFilterJoins, 1)
	}
	return indexesSQL
}

// indexName is an index's name as its creator wrote it: Babelfish appends
// the table's name and an md5 (ux_note becomes ux_note + orders + 32 hex
// digits) to make index names unique per schema, as PostgreSQL needs.
func (d dialect) indexName(table, name string) string {
	if !d.Babelfish || len(name) <= 32 {
		return name
	}
	base, sum := name[:len(name)-32], name[len(name)-32:]
	for _, c := range sum {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return name
		}
	}
	if t := strings.ToLower(table); t != "" && strings.HasSuffix(base, t) && len(base) > len(t) {
		return base[:len(base)-len(t)]
	}
	return name
}

// filter adapts the user's include/exclude patterns to the names the
// catalog reports: Babelfish reports every name in lower case, so a
// pattern written as the tables were created (dbo.Orders) is lowered to
// match them, as T-SQL itself would (names are case-insensitive there).
func (d dialect) filter(f schema.Filter) schema.Filter {
	if !d.Babelfish {
		return f
	}
	lower := func(in []string) []string {
		out := make([]string, len(in))
		for i, p := range in {
			out[i] = strings.ToLower(p)
		}
		return out
	}
	return schema.Filter{Include: lower(f.Include), Exclude: lower(f.Exclude)}
}

// objects drops from the inventory what only looks like an object of the
// user's: Babelfish lists an identity column's PostgreSQL sequence
// (<table>_<column>_seq) in sys.objects as a sequence, which SQL Server
// does not have and caravan recreates as the identity.
func (d dialect) objects(c *catalogRows) []objectRow {
	if !d.Babelfish {
		return c.Objects
	}
	tables := map[int64]tableRow{}
	for _, t := range c.Tables {
		tables[t.ObjectID] = t
	}
	identity := map[[2]string]bool{}
	for _, col := range c.Columns {
		if t, ok := tables[col.ObjectID]; ok && col.Identity {
			identity[[2]string{strings.ToLower(t.Schema), strings.ToLower(t.Name + "_" + col.Name + "_seq")}] = true
		}
	}
	var out []objectRow
	for _, o := range c.Objects {
		if o.Type == "SO" && identity[[2]string{strings.ToLower(o.Schema), strings.ToLower(o.Name)}] {
			continue
		}
		out = append(out, o)
	}
	return out
}

// describe names the engine before the consistency note `caravan plan`
// prints.
func (d dialect) describe(note string) string {
	return fmt.Sprintf("%s. %s", d, note)
}

// viewDefinition is the CREATE VIEW text the view translator reads: the
// module's text as SQL Server keeps it. Babelfish's sys.sql_modules
// differences belong here, so viewsql.go reads SQL Server's text only;
// Babelfish 4.3 kept the text as written, as SQL Server does
// (TestIntegrationViewsTranslated and the e2e objects test pass on it).
func (d dialect) viewDefinition(text string) string { return text }

// columns corrects what the catalog says of columns where the engine
// reports them wrongly. Babelfish keeps a computed column whose result is
// decimal (qty / 2.0, price * 1.5) as PostgreSQL's unconstrained numeric
// and reports it as decimal(38,38), a type that holds no value of 1 or
// more: loaded into numeric(38,38) every such row would be refused. SQL
// Server derives the result's precision and scale, so nothing changes there.
func (d dialect) columns(cols []columnRow) {
	if !d.Babelfish {
		return
	}
	for i := range cols {
		c := &cols[i]
		base := strings.ToLower(c.BaseType)
		if c.Computed && (base == "decimal" || base == "numeric") && c.Precision == 38 && c.Scale == 38 {
			c.Precision, c.Scale = 0, 0 // unconstrained: the target column is plain numeric
		}
	}
}
