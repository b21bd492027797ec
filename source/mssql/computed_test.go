package mssql

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/caravan-db/caravan/schema"
)

// computedCols are the table the computed-column cases are written over,
// with their SQL Server types; computedRows its rows on PostgreSQL.
var computedCols = map[string]*columnInfo{
	"qty":   {Name: "qty", Type: sqlType{Name: "int"}},
	"tiny":  {Name: "tiny", Type: sqlType{Name: "tinyint"}},
	"price": {Name: "price", Type: sqlType{Name: "decimal", Precision: 10, Scale: 2}},
	"name":  {Name: "name", Type: sqlType{Name: "varchar", Length: 20}},
	"nname": {Name: "nname", Type: sqlType{Name: "nvarchar", Length: 30}},
	"code":  {Name: "code", Type: sqlType{Name: "char", Length: 5}},
	"f":     {Name: "f", Type: sqlType{Name: "float"}},
}

const computedTable = `CREATE TEMP TABLE computed_t (id int PRIMARY KEY, qty integer, tiny smallint, price numeric(10,2),
	name varchar(20), nname varchar(30), code char(5), f double precision)`

const computedRows = `INSERT INTO computed_t VALUES (1, 3, 2, 1.25, 'ab', 'Zoë', 'x', 1.5), (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
	(3, -7, 255, 12.35, 'a ', '', 'yy', -2)`

// Each translated case is made a GENERATED column of its SQL Server type
// on a real PostgreSQL, and its values are those SQL Server computes for
// the same rows (written out by hand: T-SQL semantics, ids 1..3).
func TestTranslateComputed(t *testing.T) {
	cases := []struct {
		def, want, typ string
		values         []string // per id, "NULL" for NULL
	}{
		{"([qty]*[price])", `"qty" * "price"`, "numeric(21,2)", []string{"3.75", "NULL", "-86.45"}},
		{"([qty]/(2))", `"qty" / 2`, "integer", []string{"1", "NULL", "-3"}},
		{"([qty]%(3))", `"qty" % 3`, "integer", []string{"0", "NULL", "-1"}},
		{"(isnull([name],'')+[nname])", `COALESCE("name", '') || "nname"`, "varchar(50)", []string{"abZoë", "NULL", "a "}},
		{"(isnull([qty],(0)))", `COALESCE("qty", 0)`, "integer", []string{"3", "0", "-7"}},
		{"(isnull([tiny],(0)))", `COALESCE("tiny", 0)`, "smallint", []string{"2", "0", "255"}},
		{"(CONVERT([varchar](20),[qty],(0)))", `CAST("qty" AS varchar(20))`, "varchar(20)", []string{"3", "NULL", "-7"}},
		{"(CONVERT([decimal](5,1),[price]))", `CAST("price" AS numeric(5,1))`, "numeric(5,1)", []string{"1.3", "NULL", "12.4"}},
		{"(CAST([qty] AS bigint))", `CAST("qty" AS bigint)`, "bigint", []string{"3", "NULL", "-7"}},
		{"(coalesce([name],[nname],N'none'))", `COALESCE("name", "nname", 'none')`, "varchar(30)", []string{"ab", "none", "a "}},
		{"(-[qty]+(1))", `(-"qty") + 1`, "integer", []string{"-2", "NULL", "8"}},
		{"([tiny]+(1))", `"tiny" + 1`, "integer", []string{"3", "NULL", "256"}},
		{"([tiny]*(1.5))", `"tiny" * 1.5`, "numeric(6,1)", []string{"3.0", "NULL", "382.5"}},
		{"(([qty]+(1))*(2))", `("qty" + 1) * 2`, "integer", []string{"8", "NULL", "-12"}},
		{"([name]+' - '+[nname])", `"name" || ' - ' || "nname"`, "varchar(53)", []string{"ab - Zoë", "NULL", "a  - "}},
	}
	pool := testPG(t)
	var tx pgx.Tx
	if pool != nil {
		var err error
		if tx, err = pool.Begin(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(context.Background())
		for _, stmt := range []string{computedTable, computedRows} {
			if _, err := tx.Exec(context.Background(), stmt); err != nil {
				t.Fatal(err)
			}
		}
	} else {
		t.Log("CARAVAN_TEST_PG_URL not set: translations checked as text only, not run on PostgreSQL")
	}
	for i, c := range cases {
		got, err := translateComputed(c.def, computedCols, schema.NamePolicy{})
		if err != nil || got != c.want {
			t.Errorf("%s: got %q, %v; want %q", c.def, got, err, c.want)
			continue
		}
		if tx == nil {
			continue
		}
		col := fmt.Sprintf("g%d", i)
		if _, err := tx.Exec(context.Background(), fmt.Sprintf("ALTER TABLE computed_t ADD COLUMN %s %s GENERATED ALWAYS AS (%s) STORED", col, c.typ, got)); err != nil {
			t.Fatalf("%s: PostgreSQL refused GENERATED ALWAYS AS (%s): %v", c.def, got, err)
		}
		rows, err := tx.Query(context.Background(), fmt.Sprintf("SELECT coalesce(%s::text, 'NULL') FROM computed_t ORDER BY id", col))
		if err != nil {
			t.Fatal(err)
		}
		values, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(values, "|") != strings.Join(c.values, "|") {
			t.Errorf("%s as %s: PostgreSQL computes %q, SQL Server %q", c.def, got, values, c.values)
		}
	}
}

// What the translator cannot vouch for is not converted, never guessed.
func TestTranslateComputedRefuses(t *testing.T) {
	for def, why := range map[string]string{
		"([code]+'z')":                   "char(5)", // || drops char padding
		"(-[tiny])":                      "tinyint",
		"([tiny]*[tiny])":                "tinyint",
		"(getdate())":                    "getdate",      // not a known function
		"(upper([name]))":                "upper",        // not in the list
		"([price]/(3))":                  "decimals",     // result scale differs
		"(CONVERT([varchar](10),[qty]))": "could change", // '*' on overflow in SQL Server
		"(isnull([name],'this is much too long for it'))": "does not fit", // ISNULL truncates
		"(isnull([tiny],(1.5)))":                          "does not fit",
		"(CAST([price] AS int))":                          "could change", // truncates vs rounds
		"([qty]+'1')":                                     "string and a number",
		"(CONVERT([varchar](20),[qty],(112)))":            "style",
		"(CONVERT([varchar](30),[nname]))":                "could change", // Unicode to a code page
		"([f]*(2))":                                       "float",
		"([qty]*(1e3))":                                   "float literal",
		"([missing]+(1))":                                 "not a column",
		"([qty]+(3000000000))":                            "past int",
		"([price]*[price]*[price]*[price])":               "43 digits",
		"([qty]+)":                                        "unexpected",
		"([qty] (1))":                                     "unexpected",
		"(N'é'+[name])":                                   "non-ASCII",
	} {
		got, err := translateComputed(def, computedCols, schema.NamePolicy{})
		if err == nil {
			t.Errorf("%s translated to %q; want it refused (%s)", def, got, why)
		} else if !strings.Contains(err.Error(), why) {
			t.Errorf("%s refused with %q; want it to say %q", def, err, why)
		}
	}
}

// --computed generated makes a computed column GENERATED when it
// translates (under the name policy), and leaves the others plain with a
// warning; without it, every computed column is copied.
func TestBuildModelComputed(t *testing.T) {
	rows := sampleCatalog()
	rows.Columns = append(rows.Columns,
		columnRow{ObjectID: 2, ColumnID: 7, Name: "QtyX2", BaseType: "decimal", MaxLength: 9, Precision: 22, Scale: 2, Computed: true, ComputedDef: "([Qty]*(2))"})
	for _, mode := range []string{"", ComputedCopy, ComputedGenerated} {
		db, err := buildModel(rows, schema.Filter{}, Options{Computed: mode}, (*Source)(nil).DefaultNames())
		if err != nil {
			t.Fatal(err)
		}
		lines := db.Table(schema.Name{Schema: "sales", Name: "OrderLines"})
		orders := db.Table(schema.Name{Schema: "dbo", Name: "Orders"})
		want := ""
		if mode == ComputedGenerated {
			want = `"qty" * 2`
		}
		if got := lines.Column("QtyX2").Generated; got != want {
			t.Errorf("--computed %q: QtyX2 generated as %q, want %q", mode, got, want)
		}
		if got := orders.Column("TotalX2").Generated; got != "" {
			t.Errorf("--computed %q: a money expression became %q", mode, got)
		}
		warned := strings.Join(db.Warnings, "\n")
		if !strings.Contains(warned, `column "TotalX2": computed column (([Total]*(2)))`) || !strings.Contains(warned, "plain column holding SQL Server's computed values") {
			t.Errorf("--computed %q: no warning for TotalX2:\n%s", mode, warned)
		}
		if (mode == ComputedGenerated) == strings.Contains(warned, `"QtyX2"`) {
			t.Errorf("--computed %q: warnings for QtyX2:\n%s", mode, warned)
		}
		for _, c := range lines.LoadColumns() {
			if c.Name == "QtyX2" && mode == ComputedGenerated {
				t.Error("a generated column is loaded")
			}
		}
	}
}
