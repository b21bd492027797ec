package mssql

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caravan-db/caravan/schema"
)

// viewCatalog is a source with two customers tables' worth of types and a
// same-named table in two schemas.
func viewCatalog(views map[string]string) *catalogRows {
	col := func(obj int64, id int, name, base string, maxLen, prec, scale int, coll string) columnRow {
		return columnRow{ObjectID: obj, ColumnID: id, Name: name, BaseType: base, MaxLength: maxLen, Precision: prec, Scale: scale, Collation: coll, Nullable: id > 1}
	}
	ci := "SQL_Latin1_General_CP1_CI_AS"
	rows := &catalogRows{
		Tables: []tableRow{{ObjectID: 1, Schema: "dbo", Name: "Customers"}, {ObjectID: 2, Schema: "dbo", Name: "Orders"},
			{ObjectID: 3, Schema: "sales", Name: "Orders"}, {ObjectID: 4, Schema: "dbo", Name: "Skipped"}},
		Columns: []columnRow{
			col(1, 1, "Id", "int", 4, 10, 0, ""), col(1, 2, "FirstName", "nvarchar", 100, 0, 0, ci), col(1, 3, "LastName", "varchar", 50, 0, 0, ci),
			col(1, 4, "Code", "varchar", 10, 0, 0, "Latin1_General_CS_AS"), col(1, 5, "Credit", "decimal", 9, 10, 2, ""),
			col(1, 6, "Score", "float", 8, 53, 0, ""), col(1, 7, "Born", "datetime", 8, 23, 3, ""), col(1, 8, "Active", "bit", 1, 1, 0, ""),
			col(1, 9, "Pad", "char", 5, 0, 0, ci), col(1, 10, "Photo", "varbinary", 100, 0, 0, ""),
			col(2, 1, "Id", "int", 4, 10, 0, ""), col(2, 2, "CustomerId", "int", 4, 10, 0, ""), col(2, 3, "Qty", "int", 4, 10, 0, ""),
			col(2, 4, "Price", "decimal", 9, 9, 2, ""), col(2, 5, "OrderedAt", "datetime2", 8, 27, 3, ""),
			col(3, 1, "Id", "int", 4, 10, 0, ""),
			col(4, 1, "Id", "int", 4, 10, 0, ""),
		},
		Indexes: []indexRow{{ObjectID: 1, IndexID: 1, Name: "PK_C", Type: 1, PrimaryKey: true, Unique: true, KeyOrdinal: 1, Column: "Id"},
			{ObjectID: 2, IndexID: 1, Name: "PK_O", Type: 1, PrimaryKey: true, Unique: true, KeyOrdinal: 1, Column: "Id"}},
		Objects: []objectRow{{Type: "FN", Schema: "dbo", Name: "Twice"}, {Type: "SN", Schema: "dbo", Name: "Cust"}},
	}
	for name, def := range views {
		s, n, _ := strings.Cut(name, ".")
		rows.Objects = append(rows.Objects, objectRow{Type: "V", Schema: s, Name: n, Definition: def})
	}
	return rows
}

// translateCatalog discovers the catalog and applies the name policy, as
// a run does.
func translateCatalog(t *testing.T, rows *catalogRows, policy schema.NamePolicy) *schema.Database {
	t.Helper()
	filter := schema.Filter{Exclude: []string{"dbo.Skipped"}}
	db, err := buildModel(rows, filter, Options{}, policy)
	if err != nil {
		t.Fatal(err)
	}
	db.Unmigrated = inventory(rows, filter)
	db.Translate = func(db *schema.Database) { translateViews(rows, dialect{}, db) }
	if err := policy.Apply(db); err != nil {
		t.Fatal(err)
	}
	return db
}

var lowerPolicy = schema.NamePolicy{Case: schema.CaseLower, SchemaMap: map[string]string{"dbo": "public"}}

// Each case is T-SQL in, PostgreSQL out (the text after "AS "), or the
// reason it is refused.
func TestViewTranslation(t *testing.T) {
	cases := []struct {
		def, want, refused string
	}{
		{def: "CREATE VIEW [dbo].[v] AS SELECT [c].[Id], c.[FirstName] + N' ' + c.LastName AS [Full Name] FROM [dbo].[Customers] AS c",
			want: `SELECT "c"."id" AS "id", "c"."firstname" || ' ' || "c"."lastname" AS "full name" FROM "public"."customers" AS "c"`},
		{def: "create view v as select Id, ISNULL(FirstName, N'?') AS Name, GETDATE() AS Now, NEWID() AS G from Customers",
			want: `SELECT "customers"."id" AS "id", COALESCE("customers"."firstname", '?') AS "name", LOCALTIMESTAMP(3) AS "now", gen_random_uuid() AS "g" FROM "public"."customers"`},
		{def: "CREATE VIEW dbo.v WITH SCHEMABINDING AS SELECT TOP (5) o.Id, Total = o.Qty * o.Price FROM dbo.Orders o ORDER BY o.Qty DESC, Total",
			want: `SELECT "o"."id" AS "id", "o"."qty" * "o"."price" AS "total" FROM "public"."orders" AS "o" ORDER BY "o"."qty" DESC NULLS LAST, "total" NULLS FIRST LIMIT 5`},
		{def: `CREATE VIEW dbo.v AS SELECT "Id" FROM dbo.Customers`, refused: "QUOTED_IDENTIFIER"},
		{def: "CREATE VIEW dbo.v AS\n-- big spenders\n/* nested /* comment */ still */ SELECT c.Id, COUNT(*) AS n, SUM(o.Qty) AS q FROM dbo.Customers c JOIN dbo.Orders o ON o.CustomerId = c.Id LEFT OUTER JOIN sales.Orders s ON s.Id = o.Id WHERE o.Qty BETWEEN 1 AND 10 AND s.Id IS NULL GROUP BY c.Id HAVING COUNT(*) > 1",
			want: `SELECT "c"."id" AS "id", count(*) AS "n", sum("o"."qty") AS "q" FROM "public"."customers" AS "c" JOIN "public"."orders" AS "o" ON "o"."customerid" = "c"."id" LEFT JOIN "sales"."orders" AS "s" ON "s"."id" = "o"."id" WHERE "o"."qty" BETWEEN 1 AND 10 AND "s"."id" IS NULL GROUP BY "c"."id" HAVING count(*) > 1`},
		{def: "CREATE VIEW dbo.v AS SELECT Id, CASE WHEN Credit > 100.5 THEN N'big' WHEN Credit IS NULL THEN NULL ELSE N'small' END AS Size, LEN(LastName) AS L, CHARINDEX('x', Code) AS P, CAST(Born AS date) AS D, CONVERT(varchar(30), Id) AS S, YEAR(Born) AS Y FROM dbo.Customers WHERE Id IN (1, 2, 3) AND NOT Score < 0.5",
			want: `SELECT "customers"."id" AS "id", CASE WHEN "customers"."credit" > 100.5 THEN 'big' WHEN "customers"."credit" IS NULL THEN NULL ELSE 'small' END AS "size", length(rtrim("customers"."lastname")) AS "l", strpos("customers"."code", 'x') AS "p", CAST("customers"."born" AS date) AS "d", CAST("customers"."id" AS character varying(30)) AS "s", CAST(EXTRACT(YEAR FROM "customers"."born") AS integer) AS "y" FROM "public"."customers" WHERE "customers"."id" IN (1, 2, 3) AND NOT "customers"."score" < 0.5`},
		{def: "CREATE VIEW dbo.v (a, b) AS SELECT Id, Qty FROM dbo.Orders UNION ALL SELECT Id, 0 FROM dbo.Customers WITH (NOLOCK) WITH CHECK OPTION;",
			want: `("a", "b") AS SELECT "orders"."id" AS "id", "orders"."qty" AS "qty" FROM "public"."orders" UNION ALL SELECT "customers"."id" AS "id", 0 FROM "public"."customers" WITH CASCADED CHECK OPTION`},
		{def: "CREATE VIEW dbo.v AS SELECT x.Id FROM (SELECT Id FROM dbo.Orders WHERE Qty > 0) AS x",
			want: `SELECT "x"."id" AS "id" FROM (SELECT "orders"."id" AS "id" FROM "public"."orders" WHERE "orders"."qty" > 0) AS "x"`},
		{def: "CREATE VIEW dbo.v AS SELECT 'it''s' AS [a]]b], GETUTCDATE() AS u, DATALENGTH(Photo) AS n FROM dbo.Customers",
			want: `SELECT 'it''s' AS "a]b", CAST(now() AT TIME ZONE 'utc' AS timestamp(3)) AS "u", octet_length("customers"."photo") AS "n" FROM "public"."customers"`},

		{def: "CREATE VIEW dbo.v AS SELECT c.Id FROM dbo.Customers c CROSS APPLY (SELECT 1 AS x) a", refused: "CROSS APPLY is not translated"},
		{def: "CREATE VIEW dbo.v AS SELECT * FROM dbo.Customers", refused: "SELECT * is not translated"},
		{def: "CREATE VIEW dbo.v AS SELECT Id FROM dbo.Customers WHERE LastName = 'x'", refused: "on strings is not translated"},
		{def: "CREATE VIEW dbo.v AS SELECT Id FROM dbo.Customers WHERE LastName LIKE 'x%'", refused: "LIKE is not translated"},
		{def: "CREATE VIEW dbo.v AS SELECT Id + LastName AS x FROM dbo.Customers", refused: "between a string and a number"},
		{def: "CREATE VIEW dbo.v AS SELECT Pad + LastName AS x FROM dbo.Customers", refused: "char(n)"},
		{def: "CREATE VIEW dbo.v AS SELECT TOP 10 PERCENT Id FROM dbo.Customers ORDER BY Id", refused: "PERCENT"},
		{def: "CREATE VIEW dbo.v AS SELECT TOP 3 WITH TIES Id FROM dbo.Customers ORDER BY Id", refused: "WITH TIES"},
		{def: "CREATE VIEW dbo.v AS SELECT TOP 3 Id FROM dbo.Customers", refused: "TOP without ORDER BY"},
		{def: "CREATE VIEW dbo.v AS SELECT CONVERT(varchar(20), Born, 120) AS d FROM dbo.Customers", refused: "CONVERT with a style"},
		{def: "CREATE VIEW dbo.v AS SELECT CAST(Credit AS int) AS d FROM dbo.Customers", refused: "could change values"},
		{def: "CREATE VIEW dbo.v AS SELECT Id FROM Orders", refused: "several schemas hold an object"},
		{def: "CREATE VIEW dbo.v AS SELECT Id FROM dbo.Skipped", refused: "table dbo.Skipped, which is not part of this run"},
		{def: "CREATE VIEW dbo.v AS SELECT Id FROM dbo.Cust", refused: "synonym dbo.Cust"},
		{def: "CREATE VIEW dbo.v AS SELECT dbo.Twice(Id) AS t FROM dbo.Customers", refused: "function dbo.Twice is not translated"},
		{def: "CREATE VIEW dbo.v AS SELECT Id, ROW_NUMBER() OVER (ORDER BY Id) AS n FROM dbo.Customers", refused: "ROW_NUMBER"},
		{def: "CREATE VIEW dbo.v AS SELECT Id FROM dbo.Customers WHERE Id IN (SELECT CustomerId FROM dbo.Orders)", refused: "IN (a subquery)"},
		{def: "CREATE VIEW dbo.v AS SELECT Id FROM dbo.Customers WHERE Born > '2020-01-02'", refused: "on strings"},
		{def: "CREATE VIEW dbo.v AS SELECT Qty / Price AS r FROM dbo.Orders", refused: "/ on decimals"},
		{def: "CREATE VIEW dbo.v AS SELECT DISTINCT FirstName FROM dbo.Customers", refused: "DISTINCT on strings"},
		{def: "CREATE VIEW dbo.v AS SELECT Id FROM dbo.Customers UNION SELECT Id FROM dbo.Orders", want: `UNION SELECT`},
		{def: "CREATE VIEW dbo.v AS SELECT LastName FROM dbo.Customers UNION SELECT LastName FROM dbo.Customers", refused: "UNION (which removes duplicates) on strings"},
		{def: "CREATE VIEW dbo.v AS SELECT Id * 2 FROM dbo.Customers", refused: "without a name"},
		{def: "CREATE VIEW dbo.v AS WITH x AS (SELECT 1 AS a) SELECT a FROM x", refused: "common table expression"},
		{def: "CREATE VIEW dbo.v AS SELECT LEN(FirstName) AS n FROM dbo.Customers", refused: "outside the BMP"},
		{def: "CREATE VIEW dbo.v AS SELECT AVG(Qty) AS n FROM dbo.Orders", refused: "AVG"},
		{def: "CREATE VIEW dbo.v AS SELECT Id FROM dbo.Customers WHERE Active = 1", refused: "different types"},
		{def: "", refused: "WITH ENCRYPTION"},
		{def: "CREATE VIEW dbo.v AS SELECT LEFT(LastName, 2) AS x FROM dbo.Customers", refused: "function LEFT is not translated"},
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			db := translateCatalog(t, viewCatalog(map[string]string{"dbo.v": c.def}), lowerPolicy)
			var reason string
			for _, u := range db.Unmigrated {
				if u.Key() == "view:dbo.v" {
					reason = u.Reason
				}
			}
			switch {
			case c.refused != "":
				if len(db.Views) != 0 || !strings.Contains(reason, c.refused) {
					t.Errorf("%s\ntranslated %v, reason %q; want it refused for %q", c.def, db.Views, reason, c.refused)
				}
			case len(db.Views) != 1:
				t.Errorf("%s\nnot translated: %s", c.def, reason)
			case !strings.Contains(db.Views[0].SQL[0], c.want):
				t.Errorf("%s\ngot  %s\nwant %s", c.def, db.Views[0].SQL[0], c.want)
			}
		})
	}
}

// Views on views are translated after the views they use and say so
// (Needs); a view on a refused view is refused, naming it; names follow
// the run's policy (here: case kept); a view outside the run's schemas is
// not created for one inside.
func TestViewsOnViews(t *testing.T) {
	rows := viewCatalog(map[string]string{
		"dbo.Top":   "CREATE VIEW dbo.[Top] AS SELECT m.Id, m.Total FROM dbo.Mid AS m WHERE m.Total > 10",
		"dbo.Mid":   "CREATE VIEW dbo.Mid AS SELECT b.Id, b.Qty * 2 AS Total FROM dbo.Base b",
		"dbo.Base":  "CREATE VIEW dbo.Base AS SELECT Id, Qty FROM dbo.Orders",
		"dbo.Bad":   "CREATE VIEW dbo.Bad AS SELECT o.Id FROM dbo.Orders o CROSS APPLY (SELECT 1 AS x) a",
		"dbo.OnBad": "CREATE VIEW dbo.OnBad AS SELECT Id FROM dbo.Bad",
	})
	rows.Tables = append(rows.Tables, tableRow{ObjectID: 9, Schema: "other", Name: "T"})
	rows.Objects = append(rows.Objects, objectRow{Type: "V", Schema: "other", Name: "Far", Definition: "CREATE VIEW other.Far AS SELECT 1 AS x"},
		objectRow{Type: "V", Schema: "dbo", Name: "OnFar", Definition: "CREATE VIEW dbo.OnFar AS SELECT x FROM other.Far"})
	filter := schema.Filter{Include: []string{"dbo.*", "sales.*"}}
	db, err := buildModel(rows, filter, Options{}, schema.NamePolicy{})
	if err != nil {
		t.Fatal(err)
	}
	db.Unmigrated = inventory(rows, filter)
	db.Translate = func(db *schema.Database) { translateViews(rows, dialect{}, db) }
	if err := (schema.NamePolicy{Case: schema.CasePreserve}).Apply(db); err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, v := range db.Views {
		order = append(order, v.Name+fmt.Sprint(v.Needs))
	}
	if got := strings.Join(order, " "); got != "dbo.Base[] dbo.Mid[dbo.Base] dbo.Top[dbo.Mid]" {
		t.Errorf("views in order %s", got)
	}
	if got := db.Views[2].SQL[0]; got != `CREATE OR REPLACE VIEW "dbo"."Top" ("Id", "Total") AS SELECT "m"."Id" AS "Id", "m"."Total" AS "Total" FROM "dbo"."Mid" AS "m" WHERE "m"."Total" > 10` {
		t.Errorf("dbo.Top: %s", got)
	}
	reasons := map[string]string{}
	for _, u := range db.Unmigrated {
		reasons[u.Key()] = u.Reason
	}
	if !strings.Contains(reasons["view:dbo.OnBad"], "it uses view dbo.Bad, which is not migrated") || !strings.Contains(reasons["view:dbo.Bad"], "CROSS APPLY") ||
		!strings.Contains(reasons["view:dbo.OnFar"], "it uses view other.Far, which is not part of this run") {
		t.Errorf("refusals: %v", reasons)
	}
}

// Every translated view is created on a real PostgreSQL over the tables
// caravan creates, and returns what SQL Server would.
func TestTranslatedViewsOnPostgres(t *testing.T) {
	pool := testPG(t)
	if pool == nil {
		t.Skip("CARAVAN_TEST_PG_URL not set")
	}
	ctx := context.Background()
	sfx := fmt.Sprint(time.Now().UnixNano() % 1_000_000_000)
	policy := schema.NamePolicy{Case: schema.CaseLower, SchemaMap: map[string]string{"dbo": "vw_" + sfx, "sales": "vws_" + sfx}}
	rows := viewCatalog(map[string]string{
		"dbo.Names":     "CREATE VIEW dbo.Names AS SELECT c.Id, c.FirstName + N' ' + ISNULL(c.LastName, '') AS [Full Name], LEN(c.LastName) AS L, CHARINDEX('b', c.Code) AS P FROM dbo.Customers AS c",
		"dbo.Totals":    "CREATE VIEW dbo.Totals WITH SCHEMABINDING AS SELECT o.CustomerId, COUNT(*) AS N, SUM(o.Qty * o.Price) AS Amount FROM dbo.Orders AS o WHERE o.Qty BETWEEN 1 AND 100 GROUP BY o.CustomerId",
		"dbo.Best":      "CREATE VIEW dbo.Best AS SELECT TOP (1) t.CustomerId, t.Amount FROM dbo.Totals t ORDER BY t.Amount DESC",
		"dbo.FirstBorn": "CREATE VIEW dbo.FirstBorn AS SELECT TOP 1 Id, Born FROM dbo.Customers ORDER BY Born",
		"dbo.Kinds":     "CREATE VIEW dbo.Kinds AS SELECT Id, CASE WHEN Credit IS NULL THEN N'none' WHEN Credit > 100 THEN N'big' ELSE N'small' END AS Kind, CAST(Born AS date) AS Day, YEAR(Born) AS Y, 7 / 2 AS Half, -7 % 3 AS M FROM dbo.Customers UNION ALL SELECT Id, N'order', CAST(OrderedAt AS date), 0, 0, 0 FROM dbo.Orders",
	})
	db := translateCatalog(t, rows, policy)
	if len(db.Views) != 5 {
		for _, u := range db.Unmigrated {
			t.Log(u.Key(), u.Reason)
		}
		t.Fatalf("translated %d views", len(db.Views))
	}
	t.Cleanup(func() {
		_, _ = pool.Exec(ctx, fmt.Sprintf("DROP SCHEMA IF EXISTS vw_%s CASCADE; DROP SCHEMA IF EXISTS vws_%s CASCADE", sfx, sfx))
	})
	stmts := []string{fmt.Sprintf("CREATE SCHEMA vw_%s", sfx), fmt.Sprintf("CREATE SCHEMA vws_%s", sfx)}
	for _, tb := range db.Tables {
		create, err := db.CreateTable(tb, false)
		if err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts, create)
	}
	stmts = append(stmts,
		fmt.Sprintf(`INSERT INTO vw_%s.customers (id, firstname, lastname, code, credit, born) VALUES
			(1, 'Ann', 'Lee  ', 'abc', 150.00, '2001-02-03 04:05:06.007'), (2, 'Bo', NULL, 'ABC', NULL, '1999-12-31 23:59:59.997'), (3, 'Cy', 'Ng', 'xbxb', 5.5, NULL)`, sfx),
		fmt.Sprintf(`INSERT INTO vw_%s.orders (id, customerid, qty, price, orderedat) VALUES
			(10, 1, 2, 10.50, '2024-05-06 07:08:09.123'), (11, 1, 1, 1.25, '2024-05-07 00:00:00'), (12, 2, 3, 100.00, '2024-01-01 12:00:00'), (13, 3, 0, 9.99, '2024-01-02 00:00:00')`, sfx))
	for _, v := range db.Views {
		stmts = append(stmts, v.SQL...)
	}
	for _, s := range stmts {
		if _, err := pool.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	for view, want := range map[string]string{
		// LEN ignores trailing spaces; + with a NULL is NULL in both
		"names":  "1|Ann Lee  |3|2,2|Bo ||0,3|Cy Ng|2|2",
		"totals": "1|2|22.25,2|1|300.00",
		"best":   "2|300.00",
		// SQL Server sorts NULL first
		"firstborn": "3|",
		"kinds":     "10|order|2024-05-06|0|0|0,11|order|2024-05-07|0|0|0,12|order|2024-01-01|0|0|0,13|order|2024-01-02|0|0|0,1|big|2001-02-03|2001|3|-1,2|none|1999-12-31|1999|3|-1,3|small|||3|-1",
	} {
		var got string
		q := fmt.Sprintf(`SELECT string_agg(line, ',' ORDER BY line COLLATE "C") FROM (SELECT concat_ws('|', VARIADIC ARRAY(SELECT coalesce(value, '') FROM json_each_text(row_to_json(v)))) AS line FROM vw_%s.%s AS v) AS l`, sfx, view)
		if err := pool.QueryRow(ctx, q).Scan(&got); err != nil {
			t.Fatalf("%s: %v", view, err)
		}
		if got != want {
			t.Errorf("view %s:\ngot  %s\nwant %s", view, got, want)
		}
	}
}

// Checks, filtered-index predicates and generated columns name the
// columns caravan creates under the run's --name-case, not the source's
// default (lower case).
func TestExpressionsUnderTheRunsNames(t *testing.T) {
	rows := &catalogRows{
		Tables: []tableRow{{ObjectID: 1, Schema: "dbo", Name: "Items"}},
		Columns: []columnRow{{ObjectID: 1, ColumnID: 1, Name: "Id", BaseType: "int", MaxLength: 4, Precision: 10},
			{ObjectID: 1, ColumnID: 2, Name: "Qty", BaseType: "int", MaxLength: 4, Precision: 10, Nullable: true},
			{ObjectID: 1, ColumnID: 3, Name: "Twice", BaseType: "int", MaxLength: 4, Precision: 10, Nullable: true, Computed: true, ComputedDef: "([Qty]*(2))"}},
		Indexes: []indexRow{{ObjectID: 1, IndexID: 1, Name: "PK", Type: 1, Unique: true, PrimaryKey: true, KeyOrdinal: 1, Column: "Id"},
			{ObjectID: 1, IndexID: 2, Name: "IX", Type: 2, KeyOrdinal: 1, Column: "Qty", Filter: "([Qty]>(5))"}},
		Checks: []checkRow{{ParentID: 1, Name: "CK", Definition: "([Qty]>=(0))"}},
	}
	s := &Source{opts: Options{Computed: ComputedGenerated}}
	for policy, want := range map[string]string{schema.CasePreserve: `"Qty"`, "": `"qty"`} {
		db, err := buildModel(rows, schema.Filter{}, s.opts, s.DefaultNames())
		if err != nil {
			t.Fatal(err)
		}
		db.Translate = func(db *schema.Database) { s.expressionsUnder(rows, schema.Filter{}, db) }
		p := s.DefaultNames()
		if policy != "" {
			p.Case = policy
		}
		if err := p.Apply(db); err != nil {
			t.Fatal(err)
		}
		tb := db.Tables[0]
		got := tb.Checks[0].Expr + " | " + tb.Indexes[0].Where + " | " + tb.Column("Twice").Generated
		if strings.Count(got, want) != 3 {
			t.Errorf("--name-case %q: %s; want every column named %s", policy, got, want)
		}
	}
}
