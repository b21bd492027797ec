package mssql

import (
	"strings"
	"testing"

	"github.com/caravan-db/caravan/schema"
)

// sampleCatalog is what the catalog queries return for a small database:
// two tables with a composite key, identity, alias type, computed column,
// defaults, checks, a filtered index, an included column and a foreign
// key with actions, plus a heap.
func sampleCatalog() *catalogRows {
	return &catalogRows{
		Tables: []tableRow{
			{ObjectID: 1, Schema: "dbo", Name: "Orders", Rows: 1000, Comment: "customer orders"},
			{ObjectID: 2, Schema: "sales", Name: "OrderLines", Rows: 5000},
			{ObjectID: 3, Schema: "dbo", Name: "EventLog", Rows: 10},
		},
		Columns: []columnRow{
			{ObjectID: 1, ColumnID: 1, Name: "OrderID", BaseType: "int", MaxLength: 4, Precision: 10, Identity: true, Seed: "1000", Increment: "1"},
			{ObjectID: 1, ColumnID: 2, Name: "Customer", BaseType: "nvarchar", Alias: "dbo.CustomerName", MaxLength: 200, Collation: "Latin1_General_CI_AS", DefaultDef: "(N'anonymous')", Comment: "who ordered"},
			{ObjectID: 1, ColumnID: 3, Name: "Placed", BaseType: "datetime2", MaxLength: 8, Scale: 7, DefaultDef: "(sysdatetime())"},
			{ObjectID: 1, ColumnID: 4, Name: "Total", BaseType: "money", MaxLength: 8, Precision: 19, Scale: 4, Nullable: true, DefaultDef: "((0))"},
			{ObjectID: 1, ColumnID: 5, Name: "Active", BaseType: "bit", MaxLength: 1, DefaultDef: "((1))"},
			{ObjectID: 1, ColumnID: 6, Name: "Ref", BaseType: "uniqueidentifier", MaxLength: 16, DefaultDef: "(newsequentialid())"},
			{ObjectID: 1, ColumnID: 7, Name: "Odd", BaseType: "int", MaxLength: 4, Nullable: true, DefaultDef: "(datepart(year,getdate()))"},
			{ObjectID: 1, ColumnID: 8, Name: "TotalX2", BaseType: "money", MaxLength: 8, Precision: 19, Scale: 4, Nullable: true, Computed: true, ComputedDef: "([Total]*(2))"},
			{ObjectID: 1, ColumnID: 9, Name: "Sparse", BaseType: "xml", MaxLength: -1, Nullable: true, ColumnSet: true},
			{ObjectID: 2, ColumnID: 1, Name: "OrderID", BaseType: "int", MaxLength: 4},
			{ObjectID: 2, ColumnID: 2, Name: "Line", BaseType: "smallint", MaxLength: 2},
			{ObjectID: 2, ColumnID: 3, Name: "Sku", BaseType: "varchar", MaxLength: 20, Collation: "SQL_Latin1_General_CP1_CI_AS"},
			{ObjectID: 2, ColumnID: 4, Name: "Qty", BaseType: "decimal", MaxLength: 9, Precision: 10, Scale: 2},
			{ObjectID: 2, ColumnID: 5, Name: "Note", BaseType: "sysname", MaxLength: 256, Collation: "Latin1_General_CI_AS", Nullable: true},
			{ObjectID: 2, ColumnID: 6, Name: "Shape", BaseType: "geography", MaxLength: -1, Nullable: true},
			{ObjectID: 3, ColumnID: 1, Name: "At", BaseType: "datetimeoffset", MaxLength: 10, Scale: 7},
			{ObjectID: 3, ColumnID: 2, Name: "Payload", BaseType: "sql_variant", MaxLength: 8016, Nullable: true},
			{ObjectID: 3, ColumnID: 3, Name: "Node", BaseType: "hierarchyid", MaxLength: 892, Nullable: true},
			{ObjectID: 3, ColumnID: 4, Name: "Ver", BaseType: "timestamp", MaxLength: 8},
			{ObjectID: 3, ColumnID: 5, Name: "Seq", BaseType: "numeric", MaxLength: 9, Precision: 18, Identity: true, Seed: "1", Increment: "10"},
		},
		Indexes: []indexRow{
			{ObjectID: 1, IndexID: 1, Name: "PK_Orders", Type: 1, Unique: true, PrimaryKey: true, KeyOrdinal: 1, Column: "OrderID"},
			{ObjectID: 1, IndexID: 2, Name: "UQ_Orders_Ref", Type: 2, Unique: true, UniqueConstraint: true, KeyOrdinal: 1, Column: "Ref"},
			{ObjectID: 1, IndexID: 3, Name: "IX_Orders_Customer", Type: 2, Filter: "([Total]>(0) AND [Customer] IS NOT NULL)", KeyOrdinal: 1, Column: "Customer", Desc: true},
			{ObjectID: 1, IndexID: 3, Name: "IX_Orders_Customer", Type: 2, Filter: "([Total]>(0) AND [Customer] IS NOT NULL)", Included: true, Column: "Placed"},
			{ObjectID: 1, IndexID: 4, Name: "UX_Active", Type: 2, Unique: true, Filter: "([Active]=(1))", KeyOrdinal: 1, Column: "Customer"},
			{ObjectID: 1, IndexID: 5, Name: "CS", Type: 6, Column: "Total"},
			{ObjectID: 2, IndexID: 1, Name: "PK_Lines", Type: 1, Unique: true, PrimaryKey: true, KeyOrdinal: 2, Column: "Line"},
			{ObjectID: 2, IndexID: 1, Name: "PK_Lines", Type: 1, Unique: true, PrimaryKey: true, KeyOrdinal: 1, Column: "OrderID"},
		},
		FKs: []fkRow{
			{ObjectID: 10, ParentID: 2, Name: "FK_Lines_Orders", RefSchema: "dbo", RefTable: "Orders", OnDelete: 1, OnUpdate: 0, Column: "OrderID", RefColumn: "OrderID"},
			{ObjectID: 11, ParentID: 2, Name: "FK_Off", RefSchema: "dbo", RefTable: "Orders", Disabled: true, Column: "OrderID", RefColumn: "OrderID"},
		},
		Checks: []checkRow{
			{ParentID: 2, Name: "CK_Qty", Definition: "([Qty]>=(0) AND [Qty]<=(1000))"},
			{ParentID: 2, Name: "CK_Sku", Definition: "(len([Sku])>(3))"},
			{ParentID: 2, Name: "CK_Old", Definition: "([Qty]<>(5))", NotTrusted: true},
		},
	}
}

func TestBuildModel(t *testing.T) {
	rows := sampleCatalog()
	// catalog rows of an index arrive in key order
	rows.Indexes[6], rows.Indexes[7] = rows.Indexes[7], rows.Indexes[6]
	db, err := buildModel(rows, schema.Filter{}, Options{}, (*Source)(nil).DefaultNames())
	if err != nil {
		t.Fatal(err)
	}
	if len(db.Tables) != 3 {
		t.Fatalf("%d tables", len(db.Tables))
	}
	orders := db.Table(schema.Name{Schema: "dbo", Name: "Orders"})
	if orders.Comment != "customer orders" || !orders.RangeSafe || orders.RowEstimate != 1000 {
		t.Fatalf("%+v", orders)
	}
	col := func(tb *schema.Table, name string) *schema.Column {
		c := tb.Column(name)
		if c == nil {
			t.Fatalf("no column %s", name)
		}
		return c
	}
	check := func(c *schema.Column, src, pg, def string) {
		t.Helper()
		if c.SourceType != src || c.Type != pg || c.Default != def {
			t.Errorf("column %s: got (%q, %q, %q), want (%q, %q, %q)", c.Name, c.SourceType, c.Type, c.Default, src, pg, def)
		}
	}
	id := col(orders, "OrderID")
	check(id, "int", "integer", "")
	if id.Identity == nil || id.Identity.Start != 1000 || id.Identity.Increment != 1 || id.Identity.Always {
		t.Errorf("identity %+v", id.Identity)
	}
	check(col(orders, "Customer"), "nvarchar(100) COLLATE Latin1_General_CI_AS", "character varying(100)", "'anonymous'")
	if col(orders, "Customer").Comment != "who ordered" {
		t.Error("column comment lost")
	}
	check(col(orders, "Placed"), "datetime2(7)", "timestamp(6)", "LOCALTIMESTAMP")
	check(col(orders, "Total"), "money", "numeric(19,4)", "0")
	check(col(orders, "Active"), "bit", "boolean", "true")
	check(col(orders, "Ref"), "uniqueidentifier", "uuid", "gen_random_uuid()")
	check(col(orders, "Odd"), "int", "integer", "")
	check(col(orders, "TotalX2"), "money", "numeric(19,4)", "")
	if col(orders, "TotalX2").Generated != "" {
		t.Error("computed column must be materialised, not generated")
	}
	if orders.Column("Sparse") != nil {
		t.Error("column set not skipped")
	}
	if strings.Join(orders.PrimaryKey, ",") != "OrderID" || orders.PrimaryKeyName != "PK_Orders" {
		t.Errorf("pk %v %s", orders.PrimaryKey, orders.PrimaryKeyName)
	}
	if len(orders.Uniques) != 1 || orders.Uniques[0].Columns[0].Column != "Ref" {
		t.Errorf("uniques %+v", orders.Uniques)
	}
	if len(orders.Indexes) != 1 {
		t.Fatalf("indexes %+v", orders.Indexes)
	}
	ix := orders.Indexes[0]
	if ix.Where != `"total" > (0) AND "customer" IS NOT NULL` || !ix.Columns[0].Desc || strings.Join(ix.Include, ",") != "Placed" {
		t.Errorf("index %+v", ix)
	}

	lines := db.Table(schema.Name{Schema: "sales", Name: "OrderLines"})
	if strings.Join(lines.PrimaryKey, ",") != "OrderID,Line" {
		t.Errorf("composite key order %v", lines.PrimaryKey)
	}
	check(col(lines, "Line"), "smallint", "smallint", "")
	check(col(lines, "Sku"), "varchar(20) COLLATE SQL_Latin1_General_CP1_CI_AS", "character varying(20)", "")
	check(col(lines, "Qty"), "decimal(10,2)", "numeric(10,2)", "")
	check(col(lines, "Note"), "nvarchar(128) COLLATE Latin1_General_CI_AS", "character varying(128)", "")
	check(col(lines, "Shape"), "geography", "text", "")
	if len(lines.ForeignKeys) != 1 {
		t.Fatalf("fks %+v", lines.ForeignKeys)
	}
	fk := lines.ForeignKeys[0]
	if fk.OnDelete != "CASCADE" || fk.OnUpdate != "NO ACTION" || fk.RefTable != (schema.Name{Schema: "dbo", Name: "Orders"}) || fk.Columns[0] != "OrderID" {
		t.Errorf("fk %+v", fk)
	}
	if len(lines.Checks) != 1 || lines.Checks[0].Expr != `CHECK ("qty" >= (0) AND "qty" <= (1000))` {
		t.Errorf("checks %+v", lines.Checks)
	}

	log := db.Table(schema.Name{Schema: "dbo", Name: "EventLog"})
	check(col(log, "At"), "datetimeoffset(7)", "timestamp(6) with time zone", "")
	check(col(log, "Payload"), "sql_variant", "text", "")
	check(col(log, "Node"), "hierarchyid", "text", "")
	check(col(log, "Ver"), "rowversion", "bytea", "")
	check(col(log, "Seq"), "numeric(18,0)", "bigint", "")
	if col(log, "Seq").Identity == nil || col(log, "Seq").Identity.Increment != 10 {
		t.Error("numeric identity lost")
	}
	if len(log.PrimaryKey) != 0 {
		t.Error("heap got a key")
	}

	warnings := strings.Join(db.Warnings, "\n")
	for _, w := range []string{
		"alias type dbo.CustomerName", "NEWSEQUENTIALID", "default (datepart(year,getdate())) dropped",
		"computed column (([Total]*(2)))", "column set", "UX_Active", "columnstore index \"CS\"",
		"foreign key \"FK_Off\" is disabled", "check \"CK_Sku\"", "check \"CK_Old\"", "datetimeoffset becomes timestamptz",
		"sql_variant becomes text", "hierarchyid becomes", "WKT text", "rowversion becomes", "no primary key",
		"numeric(18,0) identity becomes bigint", "100 ns precision",
	} {
		if !strings.Contains(warnings, w) {
			t.Errorf("no warning mentioning %q in:\n%s", w, warnings)
		}
	}
}

func TestBuildModelFilterAndOverrides(t *testing.T) {
	opts := Options{PostGIS: true, TypeOverrides: map[string]string{"dbo.EventLog.At": "text", "dbo.EventLog.Node": "varchar(4000)"}}
	db, err := buildModel(sampleCatalog(), schema.Filter{Include: []string{"dbo.*"}, Exclude: []string{"Orders"}}, opts, (*Source)(nil).DefaultNames())
	if err != nil {
		t.Fatal(err)
	}
	if len(db.Tables) != 1 || db.Tables[0].Source.Name != "EventLog" {
		t.Fatalf("filter: %+v", db.Tables)
	}
	if c := db.Tables[0].Column("At"); c.Type != "text" {
		t.Errorf("override: %s", c.Type)
	}
	opts.TypeOverrides = map[string]string{"dbo.EventLog.At": "uuid"}
	if _, err := buildModel(sampleCatalog(), schema.Filter{}, opts, (*Source)(nil).DefaultNames()); err == nil || !strings.Contains(err.Error(), `column "At"`) {
		t.Errorf("incompatible override: %v", err)
	}
	db, err = buildModel(sampleCatalog(), schema.Filter{}, Options{PostGIS: true}, (*Source)(nil).DefaultNames())
	if err != nil {
		t.Fatal(err)
	}
	if c := db.Table(schema.Name{Schema: "sales", Name: "OrderLines"}).Column("Shape"); c.Type != "geometry" {
		t.Errorf("PostGIS: %s", c.Type)
	}
}

func TestBuildModelUnsupportedType(t *testing.T) {
	rows := sampleCatalog()
	rows.Columns = append(rows.Columns, columnRow{ObjectID: 3, ColumnID: 9, Name: "Clr", BaseType: "MyClrType", MaxLength: -1})
	_, err := buildModel(rows, schema.Filter{}, Options{}, (*Source)(nil).DefaultNames())
	if err == nil || !strings.Contains(err.Error(), "dbo.EventLog") || !strings.Contains(err.Error(), `"Clr"`) {
		t.Fatalf("got %v", err)
	}
}

// TestNameCollisions shows the default policy's collisions are reported by
// the model before anything is created.
func TestNameCollisions(t *testing.T) {
	rows := sampleCatalog()
	rows.Tables = append(rows.Tables, tableRow{ObjectID: 4, Schema: "dbo", Name: "ORDERS"})
	rows.Columns = append(rows.Columns,
		columnRow{ObjectID: 4, ColumnID: 1, Name: "Id", BaseType: "int", MaxLength: 4},
		columnRow{ObjectID: 4, ColumnID: 2, Name: "ID", BaseType: "int", MaxLength: 4},
		columnRow{ObjectID: 4, ColumnID: 3, Name: strings.Repeat("x", 70) + "a", BaseType: "int", MaxLength: 4},
		columnRow{ObjectID: 4, ColumnID: 4, Name: strings.Repeat("x", 70) + "b", BaseType: "int", MaxLength: 4})
	db, err := buildModel(rows, schema.Filter{}, Options{}, (*Source)(nil).DefaultNames())
	if err != nil {
		t.Fatal(err)
	}
	err = (*Source)(nil).DefaultNames().Apply(db)
	if err == nil {
		t.Fatal("no collision reported")
	}
	for _, want := range []string{`tables dbo.Orders and dbo.ORDERS both become "public"."orders"`, `columns "Id" and "ID"`, strings.Repeat("x", 63)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("collision report lacks %q:\n%v", want, err)
		}
	}
}

// TestRangeSafeKeys: a table is RangeSafe (its chunks re-selected by key
// range on the target) only when every key column is an integer on both
// sides; text in a collation, uniqueidentifier, or an integer overridden
// to another target type keep it compared whole.
func TestRangeSafeKeys(t *testing.T) {
	for _, c := range []struct {
		what     string
		cols     []columnRow
		override string
		want     bool
	}{
		{"int", []columnRow{{Name: "k", BaseType: "int", MaxLength: 4}}, "", true},
		{"bigint, tinyint", []columnRow{{Name: "k", BaseType: "bigint", MaxLength: 8}, {Name: "j", BaseType: "tinyint", MaxLength: 1}}, "", true},
		{"int, nvarchar", []columnRow{{Name: "k", BaseType: "int", MaxLength: 4}, {Name: "j", BaseType: "nvarchar", MaxLength: 40, Collation: "Latin1_General_CI_AS"}}, "", false},
		{"varchar CI", []columnRow{{Name: "k", BaseType: "varchar", MaxLength: 20, Collation: "SQL_Latin1_General_CP1_CI_AS"}}, "", false},
		{"uniqueidentifier", []columnRow{{Name: "k", BaseType: "uniqueidentifier", MaxLength: 16}}, "", false},
		{"decimal", []columnRow{{Name: "k", BaseType: "decimal", MaxLength: 9, Precision: 10, Scale: 2}}, "", false},
		{"int overridden to text", []columnRow{{Name: "k", BaseType: "int", MaxLength: 4}}, "text", false},
		{"int computed, generated", []columnRow{{Name: "k", BaseType: "int", MaxLength: 4, Computed: true, ComputedDef: "([j]*(2))"}, {Name: "j", BaseType: "int", MaxLength: 4}}, "generated", false},
	} {
		rows := &catalogRows{Tables: []tableRow{{ObjectID: 1, Schema: "dbo", Name: "T"}}}
		for i, col := range c.cols {
			col.ObjectID, col.ColumnID = 1, i+1
			rows.Columns = append(rows.Columns, col)
			rows.Indexes = append(rows.Indexes, indexRow{ObjectID: 1, IndexID: 1, Name: "PK_T", Type: 1, Unique: true, PrimaryKey: true, KeyOrdinal: i + 1, Column: col.Name})
		}
		opts := Options{}
		switch c.override {
		case "generated":
			opts.Computed = ComputedGenerated
		case "":
		default:
			opts.TypeOverrides = map[string]string{"dbo.T.k": c.override}
		}
		db, err := buildModel(rows, schema.Filter{}, opts, (*Source)(nil).DefaultNames())
		if err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if c.override == "generated" && db.Tables[0].Column("k").Generated == "" {
			t.Fatalf("key %s: k is not generated", c.what)
		}
		if got := db.Tables[0].RangeSafe; got != c.want {
			t.Errorf("key %s: RangeSafe %v, want %v", c.what, got, c.want)
		}
	}
}
