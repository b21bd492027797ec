package mssql

import (
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
	if got := tuplePredicate(one, []string{"@p2"}, ">="); got != "([id] >= CAST(@p2 AS int))" {
		t.Fatal(got)
	}
	three := []keyCol{
		{Ref: "[a]", Type: mustType(t, "int")},
		{Ref: "[b]", Type: mustType(t, "varchar(20) COLLATE SQL_Latin1_General_CP1_CI_AS")},
		{Ref: "[c]", Type: mustType(t, "uniqueidentifier")},
	}
	got := tuplePredicate(three, []string{"@p2", "@p3", "@p4"}, ">")
	b := "CAST(CAST(@p3 AS nvarchar(20)) COLLATE SQL_Latin1_General_CP1_CI_AS AS varchar(20))"
	want := "([a] >= CAST(@p2 AS int) AND (([a] > CAST(@p2 AS int)) OR ([a] = CAST(@p2 AS int) AND [b] > " + b +
		") OR ([a] = CAST(@p2 AS int) AND [b] = " + b + " AND [c] > CAST(@p4 AS uniqueidentifier))))"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	lt := tuplePredicate(three[:2], []string{"@p5", "@p6"}, "<")
	if !strings.HasPrefix(lt, "([a] <= CAST(@p5 AS int) AND (([a] < CAST(@p5 AS int)) OR ([a] = CAST(@p5 AS int) AND [b] < ") {
		t.Fatal(lt)
	}
	ge := tuplePredicate(three[:2], []string{"@p5", "@p6"}, ">=")
	if !strings.Contains(ge, "([a] > CAST(@p5 AS int)) OR") || !strings.HasSuffix(ge, "[b] >= "+strings.ReplaceAll(b, "@p3", "@p6")+")))") {
		t.Fatal(ge)
	}
}

func TestParamExpr(t *testing.T) {
	cases := map[string]string{
		"datetime2(7)": "CONVERT(datetime2(7), @p1, 121)",
		"datetime":     "CONVERT(datetime, @p1, 121)",
		"nvarchar(50) COLLATE Latin1_General_CI_AS":  "CAST(CAST(@p1 AS nvarchar(50)) AS nvarchar(50))",
		"varchar(8000) COLLATE Latin1_General_CI_AS": "CAST(CAST(@p1 AS nvarchar(max)) COLLATE Latin1_General_CI_AS AS varchar(8000))",
		"hierarchyid":    "hierarchyid::Parse(@p1)",
		"decimal(38,10)": "CAST(@p1 AS decimal(38,10))",
		"binary(16)":     "CAST(@p1 AS binary(16))",
		"real":           "CAST(@p1 AS real)",
	}
	for typ, want := range cases {
		if got := paramExpr("@p1", mustType(t, typ)); got != want {
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
		if got := strings.Join(selectExprs("[c]", mustType(t, c.typ), c.k), " | "); got != c.want {
			t.Errorf("%s: got %s, want %s", c.typ, got, c.want)
		}
	}
}

func TestPageQuery(t *testing.T) {
	keys := []keyCol{{Ref: "[id]", Type: mustType(t, "bigint")}}
	q := pageQuery("[dbo].[t]", []string{"[id]", "[v]"}, keys, true, true, true)
	want := "SELECT TOP (@p1) [id], [v], [id] FROM [dbo].[t] WHERE ([id] >= CAST(@p2 AS bigint)) AND ([id] < CAST(@p3 AS bigint)) AND ([id] > CAST(@p4 AS bigint)) ORDER BY [id]"
	if q.SQL != want || q.LoAt != 2 || q.HiAt != 3 || q.AfterAt != 4 {
		t.Fatalf("%+v", q)
	}
	q = pageQuery("[dbo].[t]", []string{"[v]"}, keys, false, true, false)
	if q.SQL != "SELECT TOP (@p1) [v], [id] FROM [dbo].[t] WHERE ([id] < CAST(@p2 AS bigint)) ORDER BY [id]" || q.HiAt != 2 {
		t.Fatalf("%+v", q)
	}
	q = pageQuery("[dbo].[t]", []string{"[v]"}, keys, false, false, false)
	if strings.Contains(q.SQL, "WHERE") || strings.Contains(strings.ToUpper(q.SQL), "OFFSET") {
		t.Fatal(q.SQL)
	}
	if got := heapQuery("[dbo].[h]", []string{"[a]"}); got != "SELECT [a], %%physloc%% FROM [dbo].[h] ORDER BY %%physloc%%" {
		t.Fatal(got)
	}
}

func TestPlanSQL(t *testing.T) {
	keys := []keyCol{{Ref: "[a]", Type: mustType(t, "datetime")}, {Ref: "[b]", Type: mustType(t, "int")}}
	got := histogramBoundsSQL("[dbo].[t]", keys)
	want := "SELECT h.step_number, CONVERT(varchar(40), b.[a], 121), b.[b] FROM sys.dm_db_stats_histogram(OBJECT_ID(@p1), @p2) AS h" +
		" CROSS APPLY (SELECT TOP (1) x.[a], x.[b] FROM [dbo].[t] AS x WHERE x.[a] > CAST(h.range_hi_key AS datetime) ORDER BY x.[a], x.[b]) AS b" +
		" WHERE h.step_number IN (SELECT CAST(value AS int) FROM STRING_SPLIT(@p3, ',')) ORDER BY h.step_number"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	s := sampleBoundsSQL("[dbo].[t]", keys, 0.5)
	want = "SELECT CONVERT(varchar(40), x.[a], 121), x.[b] FROM (SELECT [a], [b], ROW_NUMBER() OVER (ORDER BY [a], [b]) AS caravan_rn FROM [dbo].[t] TABLESAMPLE SYSTEM (0.500000 PERCENT)) AS x WHERE x.caravan_rn % @p1 = 0 ORDER BY x.[a], x.[b]"
	if s != want {
		t.Fatalf("got  %s\nwant %s", s, want)
	}
	if s := sampleBoundsSQL("[dbo].[t]", keys, 100); strings.Contains(s, "TABLESAMPLE") {
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
