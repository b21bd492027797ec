package mssql

import (
	"math"
	"strings"
	"testing"

	"github.com/caravan-db/caravan/schema"
)

func mustType(t *testing.T, s string) sqlType {
	t.Helper()
	st, err := parseSQLType(s)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestQuoteAndTableRef(t *testing.T) {
	if got := quoteIdent("a]b"); got != "[a]]b]" {
		t.Fatal(got)
	}
	n := schema.Name{Schema: "dbo", Name: "Order Lines"}
	if got := tableRef("", n); got != "[dbo].[Order Lines]" {
		t.Fatal(got)
	}
	if got := tableRef("shop_caravan_1a2b", n); got != "[shop_caravan_1a2b].[dbo].[Order Lines]" {
		t.Fatal(got)
	}
}

func TestTuplePredicate(t *testing.T) {
	one := []keyCol{{Ref: "[id]", Type: mustType(t, "int")}}
	if got := sqlServer.tuplePredicate(one, []string{"@p2"}, ">="); got != "([id] >= CAST(@p2 AS int))" {
		t.Fatal(got)
	}
	three := []keyCol{
		{Ref: "[a]", Type: mustType(t, "int")},
		{Ref: "[b]", Type: mustType(t, "varchar(20) COLLATE SQL_Latin1_General_CP1_CI_AS")},
		{Ref: "[c]", Type: mustType(t, "uniqueidentifier")},
	}
	got := sqlServer.tuplePredicate(three, []string{"@p2", "@p3", "@p4"}, ">")
	b := "CAST(CAST(@p3 AS nvarchar(20)) COLLATE SQL_Latin1_General_CP1_CI_AS AS varchar(20)) COLLATE SQL_Latin1_General_CP1_CI_AS"
	bc := "[b] COLLATE SQL_Latin1_General_CP1_CI_AS"
	want := "([a] >= CAST(@p2 AS int) AND (([a] > CAST(@p2 AS int)) OR ([a] = CAST(@p2 AS int) AND " + bc + " > " + b +
		") OR ([a] = CAST(@p2 AS int) AND " + bc + " = " + b + " AND [c] > CAST(@p4 AS uniqueidentifier))))"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	lt := sqlServer.tuplePredicate(three[:2], []string{"@p5", "@p6"}, "<")
	if !strings.HasPrefix(lt, "([a] <= CAST(@p5 AS int) AND (([a] < CAST(@p5 AS int)) OR ([a] = CAST(@p5 AS int) AND "+bc+" < ") {
		t.Fatal(lt)
	}
	ge := sqlServer.tuplePredicate(three[:2], []string{"@p5", "@p6"}, ">=")
	if !strings.Contains(ge, "([a] > CAST(@p5 AS int)) OR") || !strings.HasSuffix(ge, bc+" >= "+strings.ReplaceAll(b, "@p3", "@p6")+")))") {
		t.Fatal(ge)
	}
	// Babelfish: the bound is an nvarchar parameter, cast and collated
	bb := babelfish.tuplePredicate(three[1:2], []string{"@p2"}, ">")
	if bb != "("+bc+" > CAST(@p2 AS varchar(20)) COLLATE SQL_Latin1_General_CP1_CI_AS)" {
		t.Fatal(bb)
	}
}

func TestParamExpr(t *testing.T) {
	cases := map[string]string{
		"datetime2(7)": "CONVERT(datetime2(7), @p1, 121)",
		"datetime":     "CONVERT(datetime, @p1, 121)",
		"nvarchar(50) COLLATE Latin1_General_CI_AS":  "CAST(CAST(@p1 AS nvarchar(50)) AS nvarchar(50)) COLLATE Latin1_General_CI_AS",
		"varchar(8000) COLLATE Latin1_General_CI_AS": "CAST(CAST(@p1 AS nvarchar(max)) COLLATE Latin1_General_CI_AS AS varchar(8000)) COLLATE Latin1_General_CI_AS",
		"hierarchyid":    "hierarchyid::Parse(@p1)",
		"decimal(38,10)": "CAST(@p1 AS decimal(38,10))",
		"binary(16)":     "CAST(@p1 AS binary(16))",
		"real":           "CAST(@p1 AS real)",
	}
	for typ, want := range cases {
		if got := sqlServer.paramExpr("@p1", mustType(t, typ)); got != want {
			t.Errorf("%s: got %s, want %s", typ, got, want)
		}
	}
}

func TestSelectExprs(t *testing.T) {
	text := pgKind{Name: "text"}
	cases := []struct {
		typ  string
		k    pgKind
		want string
	}{
		{"varchar(50) COLLATE Latin1_General_CI_AS", text, "CAST(CAST([c] AS nvarchar(50)) AS varbinary(100))"},
		{"varchar(max) COLLATE Latin1_General_CI_AS", text, "CAST(CAST([c] AS nvarchar(max)) AS varbinary(max))"},
		{"varchar(6000) COLLATE Latin1_General_CI_AS", text, "CAST(CAST([c] AS nvarchar(max)) AS varbinary(max))"},
		{"nvarchar(4000) COLLATE Latin1_General_CI_AS", text, "CAST([c] AS varbinary(8000))"},
		{"nchar(10) COLLATE Latin1_General_CI_AS", text, "CAST([c] AS varbinary(20))"},
		{"ntext COLLATE Latin1_General_CI_AS", text, "CAST(CAST([c] AS nvarchar(max)) AS varbinary(max))"},
		{"text COLLATE Latin1_General_CI_AS", text, "CAST(CAST([c] AS nvarchar(max)) AS varbinary(max))"},
		{"hierarchyid", text, "[c].ToString()"},
		{"geography", text, "[c].AsTextZM()"},
		{"geometry", pgKind{Name: "geometry"}, "CAST([c].STSrid AS binary(4)) + [c].AsBinaryZM()"},
		{"sql_variant", text, "[c] | CAST(SQL_VARIANT_PROPERTY([c], 'BaseType') AS nvarchar(128))"},
		{"datetime2(7)", pgKind{Name: "timestamp"}, "[c]"},
		{"uniqueidentifier", pgKind{Name: "uuid"}, "[c]"},
	}
	for _, c := range cases {
		if got := strings.Join(sqlServer.selectExprs("[c]", mustType(t, c.typ), c.k), " | "); got != c.want {
			t.Errorf("%s: got %s, want %s", c.typ, got, c.want)
		}
	}
}

// TestBabelfishText: Babelfish reads text as nvarchar strings (its
// varbinary casts are not UTF-16), the rest as on SQL Server.
func TestBabelfishText(t *testing.T) {
	text := pgKind{Name: "text"}
	cases := map[string]string{
		"varchar(50) COLLATE bbf_unicode_cp1_ci_as":  "CAST([c] AS nvarchar(50))",
		"varchar(max) COLLATE bbf_unicode_cp1_ci_as": "CAST([c] AS nvarchar(max))",
		"nvarchar(20) COLLATE bbf_unicode_cp1_ci_as": "[c]",
		"nchar(3) COLLATE bbf_unicode_cp1_ci_as":     "[c]",
		"ntext COLLATE bbf_unicode_cp1_ci_as":        "CAST([c] AS nvarchar(max))",
		"text COLLATE bbf_unicode_cp1_ci_as":         "CAST([c] AS nvarchar(max))",
		"datetime2(6)":                               "[c]",
		"datetime":                                   "CAST([c] AS datetime2(3))",
	}
	for typ, want := range cases {
		if got := strings.Join(babelfish.selectExprs("[c]", mustType(t, typ), text), " | "); got != want {
			t.Errorf("%s: got %s, want %s", typ, got, want)
		}
	}
	if got := babelfish.keyExpr("[k]", mustType(t, "datetime")); got != "CONVERT(varchar(40), CAST([k] AS datetime2(3)), 121)" {
		t.Fatal(got)
	}
	if got := sqlServer.keyExpr("[k]", mustType(t, "datetime")); got != "CONVERT(varchar(40), [k], 121)" {
		t.Fatal(got)
	}
	st := mustType(t, "varchar(10) COLLATE bbf_unicode_cp1_ci_as")
	if got := babelfish.keyExpr("[k]", st); got != "CAST([k] AS nvarchar(10))" {
		t.Fatal(got)
	}
	p, err := babelfish.paramFromText(st, "Ñé")
	if err != nil || p != "Ñé" {
		t.Fatalf("%#v %v", p, err)
	}
	if p, err := babelfish.keyParam(st, "Ñé"); err != nil || p != "Ñé" {
		t.Fatalf("%#v %v", p, err)
	}
	v, _, err := decodeValue(st, text, "Ñé😀", "")
	if err != nil || v.s != "Ñé😀" {
		t.Fatalf("%+v %v", v, err)
	}
}

func TestDialectOf(t *testing.T) {
	d := dialectOf("Babelfish for PostgreSQL with SQL Server Compatibility - 12.0.2000.8\nDec  1 2026\n", false)
	if !d.Babelfish || d.Version != "Babelfish for PostgreSQL with SQL Server Compatibility - 12.0.2000.8" {
		t.Fatalf("%+v", d)
	}
	if d := dialectOf("Microsoft SQL Server 2022 (RTM) - 16.0.1000.6 (X64)\n\tOct  8 2022", false); d.Babelfish || !strings.HasPrefix(d.String(), "Microsoft SQL Server 2022") {
		t.Fatalf("%+v", d)
	}
	if d := dialectOf("", true); !d.Babelfish || d.Version != babelfish.Version {
		t.Fatalf("%+v", d)
	}
	if q := babelfish.indexesSQL(); strings.Contains(q, "filter_definition") || !strings.Contains(q, "pg_get_expr(x.indpred, x.indrelid)") ||
		!strings.Contains(q, indexTableJoin+babelfishFilterJoins+"JOIN sys.index_columns") {
		t.Fatal(q)
	}
	if q := sqlServer.indexesSQL(); q != indexesSQL {
		t.Fatal(q)
	}
	if q := sqlServer.objectsSQL(); q != objectsSQL || !strings.Contains(q, "sys.synonyms") {
		t.Fatal(q)
	}
	if q := babelfish.objectsSQL(); strings.Contains(q, "sys.synonyms") || !strings.Contains(q, "CAST(COALESCE(OBJECT_DEFINITION(o.object_id), N'') AS nvarchar(max))") {
		t.Fatal(q)
	}
	if q := sqlServer.tablesSQL(); q != tablesSQL || !strings.Contains(q, "sys.partitions") {
		t.Fatal(q)
	}
	if q := babelfish.tablesSQL(); strings.Contains(q, "sys.partitions") || !strings.Contains(q, babelfishTableRows) ||
		!strings.Contains(q, babelfishTableRowsJoin+"LEFT JOIN sys.extended_properties") {
		t.Fatal(q)
	}
	for _, c := range [][3]string{
		{"probe_p", "ux_p_noteprobe_pcfe58cee204b062aae7bf871d9cecd1d", "ux_p_note"},
		{"probe_p", "probe_p_pkey", "probe_p_pkey"},
		{"other", "ux_p_noteprobe_pcfe58cee204b062aae7bf871d9cecd1d", "ux_p_noteprobe_pcfe58cee204b062aae7bf871d9cecd1d"},
	} {
		if got := babelfish.indexName(c[0], c[1]); got != c[2] {
			t.Errorf("%v: %s", c, got)
		}
	}
	f := babelfish.filter(schema.Filter{Include: []string{"dbo.Orders"}, Exclude: []string{"Sales.*"}})
	if !f.Match(schema.Name{Schema: "dbo", Name: "orders"}) || babelfish.filter(schema.Filter{Exclude: []string{"Sales.*"}}).Match(schema.Name{Schema: "sales", Name: "x"}) {
		t.Fatalf("%+v", f)
	}
	if sqlServer.filter(schema.Filter{Include: []string{"dbo.Orders"}}).Match(schema.Name{Schema: "dbo", Name: "orders"}) {
		t.Fatal("SQL Server patterns lowered")
	}
	cat := &catalogRows{
		Tables:  []tableRow{{ObjectID: 1, Schema: "sales", Name: "customers"}},
		Columns: []columnRow{{ObjectID: 1, Name: "id", Identity: true}},
		Objects: []objectRow{{Type: "SO", Schema: "sales", Name: "customers_id_seq"}, {Type: "SO", Schema: "sales", Name: "order_numbers"}},
	}
	if got := babelfish.objects(cat); len(got) != 1 || got[0].Name != "order_numbers" {
		t.Fatalf("%+v", got)
	}
	if got := sqlServer.objects(cat); len(got) != 2 {
		t.Fatalf("%+v", got)
	}
	if got := sqlServer.indexName("probe_p", "ux_p_noteprobe_pcfe58cee204b062aae7bf871d9cecd1d"); got != "ux_p_noteprobe_pcfe58cee204b062aae7bf871d9cecd1d" {
		t.Fatal(got)
	}
}

func TestPageQuery(t *testing.T) {
	keys := []keyCol{{Ref: "[id]", Type: mustType(t, "bigint")}}
	q := sqlServer.pageQuery("[dbo].[t]", []string{"[id]", "[v]"}, keys, true, true, true)
	want := "SELECT TOP (@p1) [id], [v] FROM [dbo].[t] WHERE ([id] >= CAST(@p2 AS bigint)) AND ([id] < CAST(@p3 AS bigint)) AND ([id] > CAST(@p4 AS bigint)) ORDER BY [id]"
	if q.SQL != want || q.LoAt != 2 || q.HiAt != 3 || q.AfterAt != 4 {
		t.Fatalf("%+v", q)
	}
	q = sqlServer.pageQuery("[dbo].[t]", []string{"[v]"}, keys, false, true, false)
	if q.SQL != "SELECT TOP (@p1) [v], [id] FROM [dbo].[t] WHERE ([id] < CAST(@p2 AS bigint)) ORDER BY [id]" || q.HiAt != 2 {
		t.Fatalf("%+v", q)
	}
	q = sqlServer.pageQuery("[dbo].[t]", []string{"[v]"}, keys, false, false, false)
	if strings.Contains(q.SQL, "WHERE") || strings.Contains(strings.ToUpper(q.SQL), "OFFSET") {
		t.Fatal(q.SQL)
	}
	cols := []readCol{
		{Name: "a", Type: mustType(t, "int"), Exprs: []string{"[a]"}},
		{Name: "b", Type: mustType(t, "varchar(10) COLLATE SQL_Latin1_General_CP1_CI_AS"), Exprs: []string{"CAST([b] AS nvarchar(10))"}},
		{Name: "x", Type: mustType(t, "xml"), Exprs: []string{"[x]"}},
	}
	if got, loc := sqlServer.heapQuery("[dbo].[h]", cols[:1]); got != "SELECT [a], %%physloc%% FROM [dbo].[h] ORDER BY %%physloc%%" || !loc {
		t.Fatal(got)
	}
	hq, loc := babelfish.heapQuery("[dbo].[h]", cols)
	wantHeap := "SELECT [a], CAST([b] AS nvarchar(10)), [x] FROM [dbo].[h] ORDER BY [a], CAST([b] AS nvarchar(10)) COLLATE Latin1_General_BIN2, CAST([x] AS nvarchar(max)) COLLATE Latin1_General_BIN2"
	if hq != wantHeap || loc {
		t.Fatalf("got  %s\nwant %s", hq, wantHeap)
	}
	// character keys are ordered in their collation, stated
	ck := []keyCol{{Ref: "[k]", Type: mustType(t, "varchar(10) COLLATE SQL_Latin1_General_CP1_CI_AS")}}
	q = babelfish.pageQuery("[dbo].[t]", []string{"[v]"}, ck, false, false, true)
	if q.SQL != "SELECT TOP (@p1) [v], CAST([k] AS nvarchar(10)) FROM [dbo].[t] WHERE ([k] COLLATE SQL_Latin1_General_CP1_CI_AS > CAST(@p2 AS varchar(10)) COLLATE SQL_Latin1_General_CP1_CI_AS) ORDER BY [k] COLLATE SQL_Latin1_General_CP1_CI_AS" {
		t.Fatal(q.SQL)
	}
}

func TestPlanSQL(t *testing.T) {
	keys := []keyCol{{Ref: "[a]", Type: mustType(t, "datetime")}, {Ref: "[b]", Type: mustType(t, "int")}}
	got := sqlServer.histogramBoundsSQL("[dbo].[t]", keys)
	want := "SELECT h.step_number, CONVERT(varchar(40), b.[a], 121), b.[b] FROM sys.dm_db_stats_histogram(OBJECT_ID(@p1), @p2) AS h" +
		" CROSS APPLY (SELECT TOP (1) x.[a], x.[b] FROM [dbo].[t] AS x WHERE x.[a] > CAST(h.range_hi_key AS datetime) ORDER BY x.[a], x.[b]) AS b" +
		" WHERE h.step_number IN (SELECT CAST(value AS int) FROM STRING_SPLIT(@p3, ',')) ORDER BY h.step_number"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	s := sqlServer.sampleBoundsSQL("[dbo].[t]", keys, 0.5, true)
	want = "SELECT CONVERT(varchar(40), x.[a], 121), x.[b], x.caravan_n FROM (SELECT [a], [b], ROW_NUMBER() OVER (ORDER BY [a], [b]) AS caravan_rn, COUNT_BIG(*) OVER () AS caravan_n" +
		" FROM [dbo].[t] TABLESAMPLE SYSTEM (0.500000 PERCENT)) AS x" +
		" WHERE x.caravan_rn < x.caravan_n AND (x.caravan_rn * @p1) / x.caravan_n <> ((x.caravan_rn - 1) * @p1) / x.caravan_n ORDER BY x.[a], x.[b]"
	if s != want {
		t.Fatalf("got  %s\nwant %s", s, want)
	}
	if s := sqlServer.sampleBoundsSQL("[dbo].[t]", keys, 100, false); strings.Contains(s, "TABLESAMPLE") {
		t.Fatal(s)
	}
	// Babelfish ignores TABLESAMPLE: it is not sent
	if s := babelfish.sampleBoundsSQL("[dbo].[t]", keys, 0.5, false); strings.Contains(s, "TABLESAMPLE") {
		t.Fatal(s)
	}
	// every key read and counted just before: the count is a parameter
	if s := babelfish.sampleBoundsSQL("[dbo].[t]", keys, 0.5, true); strings.Contains(s, "OVER ()") || !strings.Contains(s, "CAST(@p2 AS bigint) AS caravan_n") {
		t.Fatal(s)
	}
	ck := []keyCol{{Ref: "[k]", Type: mustType(t, "nvarchar(10) COLLATE Latin1_General_CI_AS")}}
	if s := sqlServer.histogramBoundsSQL("[dbo].[t]", ck); !strings.Contains(s, "WHERE x.[k] COLLATE Latin1_General_CI_AS > CAST(h.range_hi_key AS nvarchar(10)) COLLATE Latin1_General_CI_AS ORDER BY x.[k] COLLATE Latin1_General_CI_AS)") {
		t.Fatal(s)
	}
}

func TestSnapshotSQL(t *testing.T) {
	got := createSnapshotSQL("shop_caravan_01", "shop", [][2]string{{"shop", `C:\data\o'brien.mdf`}, {"shop_2", "/var/opt/mssql/data/shop_2.ndf"}})
	want := `CREATE DATABASE [shop_caravan_01] ON (NAME = [shop], FILENAME = N'C:\data\o''brien.mdf.shop_caravan_01.ss'), (NAME = [shop_2], FILENAME = N'/var/opt/mssql/data/shop_2.ndf.shop_caravan_01.ss') AS SNAPSHOT OF [shop]`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if dropSnapshotSQL("a]b") != "DROP DATABASE [a]]b]" {
		t.Fatal(dropSnapshotSQL("a]b"))
	}
}

func TestRangeQueryWholeChunk(t *testing.T) {
	keys := []keyCol{{Ref: "[id]", Type: mustType(t, "bigint")}}
	q := babelfish.rangeQuery("[dbo].[t]", []string{"[v]"}, keys, true, true, false, false)
	want := "SELECT [v], [id] FROM [dbo].[t] WHERE ([id] >= CAST(@p1 AS bigint)) AND ([id] < CAST(@p2 AS bigint)) ORDER BY [id]"
	if q.SQL != want || q.LoAt != 1 || q.HiAt != 2 {
		t.Fatalf("%+v", q)
	}
	if got := sqlServer.pageRows(0); got != 5000 {
		t.Fatal(got)
	}
	if got := babelfish.pageRows(0); got != 0 {
		t.Fatal(got)
	}
	if got := babelfish.pageRows(3); got != 3 {
		t.Fatal(got)
	}
}

func TestSpacedBounds(t *testing.T) {
	ints := []keyCol{{Ref: "[id]", Type: mustType(t, "int")}}
	text := []keyCol{{Ref: "[k]", Type: mustType(t, "nvarchar(10)")}}
	if !babelfish.spacedBounds(ints) || sqlServer.spacedBounds(ints) || babelfish.spacedBounds(text) || babelfish.spacedBounds(append(ints, ints...)) {
		t.Fatal("spaced bounds are for one integer key column on Babelfish only")
	}
	if got := keyExtentSQL("[dbo].[t]", ints[0]); got != "SELECT MIN([id]), MAX([id]) FROM [dbo].[t]" {
		t.Fatal(got)
	}
	flat := func(b [][]string) string {
		var out []string
		for _, x := range b {
			out = append(out, x...)
		}
		return strings.Join(out, ",")
	}
	for _, c := range []struct {
		lo, hi, want int64
		bounds       string
	}{
		{1, 1000000, 10, "100001,200001,300001,400001,500001,600001,700001,800001,900001"},
		{-5, 4, 2, "0"},
		{7, 9, 10, "8,9"}, // three values: at most three chunks
		{5, 5, 4, ""},
		{math.MinInt64, math.MaxInt64, 4, "-4611686018427387904,0,4611686018427387904"},
	} {
		if got := flat(spacedBounds(c.lo, c.hi, c.want)); got != c.bounds {
			t.Errorf("spacedBounds(%d, %d, %d) = %s, want %s", c.lo, c.hi, c.want, got, c.bounds)
		}
	}
}

// Babelfish reports a computed decimal column as decimal(38,38) (it is
// PostgreSQL's unconstrained numeric there): it becomes an unconstrained
// numeric, spelled numeric(max) in plans and tasks, read as the engine's
// text (TDS would cut it to 8 decimals). SQL Server's catalog is trusted.
func TestBabelfishComputedNumericIsUnconstrained(t *testing.T) {
	cols := func() []columnRow {
		return []columnRow{
			{Name: "half", BaseType: "numeric", Precision: 38, Scale: 38, Computed: true},
			{Name: "fraction", BaseType: "decimal", Precision: 38, Scale: 38},
			{Name: "price", BaseType: "decimal", Precision: 10, Scale: 2, Computed: true},
		}
	}
	bf := cols()
	babelfish.columns(bf)
	if bf[0].Precision != 0 || bf[1].Precision != 38 || bf[2].Precision != 10 {
		t.Errorf("on Babelfish: %+v", bf)
	}
	ss := cols()
	sqlServer.columns(ss)
	if ss[0].Precision != 38 || ss[0].Scale != 38 {
		t.Errorf("on SQL Server a computed decimal(38,38) changed: %+v", ss[0])
	}

	st, err := typeFromCatalog("numeric", 17, 0, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := st.String(); got != "numeric(max)" {
		t.Errorf("unconstrained numeric spelled %q", got)
	}
	back, err := parseSQLType(st.String())
	if err != nil || back.Precision != 0 {
		t.Errorf("parseSQLType(%q) = %+v, %v: want unconstrained", st.String(), back, err)
	}
	if p, err := parseSQLType("numeric"); err != nil || p.Precision != 18 || p.Scale != 0 {
		t.Errorf("bare numeric is numeric(18,0) in T-SQL, got %+v, %v", p, err)
	}
	if got := defaultPGType(st, false); got != "numeric" {
		t.Errorf("target type %q, want numeric", got)
	}
	if got := babelfish.selectExprs("[half]", back, pgKind{}); len(got) != 1 || got[0] != "CAST([half] AS varchar(max))" {
		t.Errorf("select %v", got)
	}
	v, _, err := decodeValue(back, pgKind{}, "2.3333333333333333", "")
	if err != nil || v.s != "2.3333333333333333" {
		t.Errorf("decode %+v, %v", v, err)
	}
}
