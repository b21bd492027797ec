package mssql

import (
	"strings"
	"testing"

	"github.com/caravan-db/caravan/schema"
)

// Every object the run leaves behind is named with its kind and what
// caravan does with it; those of excluded tables stay out.
func TestInventoryFromCatalogRows(t *testing.T) {
	rows := &catalogRows{
		Tables: []tableRow{{ObjectID: 1, Schema: "dbo", Name: "Orders"}, {ObjectID: 2, Schema: "dbo", Name: "Skipped"}},
		Indexes: []indexRow{
			{ObjectID: 1, IndexID: 2, Name: "CCI", Type: 5, Column: "a"}, {ObjectID: 1, IndexID: 2, Name: "CCI", Type: 5, Column: "b"},
			{ObjectID: 1, IndexID: 3, Name: "XI", Type: 3, Column: "doc"},
			{ObjectID: 1, IndexID: 4, Name: "IX", Type: 2, Column: "a", Filter: "([a]>(0))"},
			{ObjectID: 2, IndexID: 2, Name: "XI2", Type: 3, Column: "doc"},
		},
		Objects: []objectRow{
			{Type: "V", Schema: "dbo", Name: "OrderTotals", Definition: "CREATE VIEW dbo.OrderTotals AS SELECT 1 AS n"},
			{Type: "P", Schema: "sales", Name: "Refresh"},
			{Type: "IF", Schema: "dbo", Name: "TopOrders"},
			{Type: "TR", Schema: "dbo", Name: "trOrders", Parent: "dbo.Orders"},
			{Type: "TR", Schema: "dbo", Name: "trSkipped", Parent: "dbo.Skipped"},
			{Type: "SN", Schema: "dbo", Name: "Ord"},
			{Type: "SO", Schema: "dbo", Name: "OrderNo"},
			{Type: "TT", Schema: "dbo", Name: "OrderList"},
			{Type: "PS", Name: "psByYear"},
			{Type: "SV", Schema: "dbo", Name: "Orders", Parent: "dbo.OrdersHistory"},
			{Type: "SV", Schema: "dbo", Name: "Skipped", Parent: "dbo.SkippedHistory"},
			{Type: "D", Schema: "dbo", Name: "DF_x"}, // a default: migrated with its column
		},
	}
	got := map[string]string{}
	for _, u := range inventory(rows, schema.Filter{Exclude: []string{"dbo.Skipped"}}) {
		if u.Key() == "view:dbo.OrderTotals" && u.Definition != "CREATE VIEW dbo.OrderTotals AS SELECT 1 AS n" {
			t.Errorf("the view's definition is %q, want the catalog's text", u.Definition)
		}
		if _, dup := got[u.Key()]; dup {
			t.Errorf("%s listed twice", u.Key())
		}
		got[u.Key()] = u.Reason
	}
	want := map[string]string{
		"view:dbo.OrderTotals":             "query is not translated",
		"procedure:sales.Refresh":          "PL/pgSQL",
		"function:dbo.TopOrders":           "inline table-valued",
		"trigger:dbo.trOrders":             "trigger function",
		"synonym:dbo.Ord":                  "no synonyms",
		"table type:dbo.OrderList":         "no table types",
		"partition scheme:psByYear":        "copied unpartitioned",
		"system versioning:dbo.Orders":     "history table dbo.OrdersHistory",
		"columnstore index:dbo.Orders.CCI": "no equivalent",
		"xml index:dbo.Orders.XI":          "no equivalent",
	}
	for key, reason := range want {
		if !strings.Contains(got[key], reason) {
			t.Errorf("%s: reason %q, want it to say %q", key, got[key], reason)
		}
	}
	if len(got) != len(want) {
		t.Errorf("listed %d objects, want %d:\n%v", len(got), len(want), got)
	}

	// With --include, the objects of schemas that hold no included table
	// are not the run's.
	var keys []string
	for _, u := range inventory(rows, schema.Filter{Include: []string{"dbo.Orders"}}) {
		if strings.HasPrefix(u.Name, "sales.") {
			t.Errorf("%s listed in a run of dbo.Orders", u.Key())
		}
		keys = append(keys, u.Key())
	}
	if len(keys) != len(want)-1 { // all but sales.Refresh
		t.Errorf("a run of dbo.Orders lists %v", keys)
	}
}

// A table type is listed with a CREATE TYPE built from its catalog
// columns, for --objects-dir.
func TestTableTypeDefinition(t *testing.T) {
	n := schema.Name{Schema: "dbo", Name: "Order]List"}
	got := tableTypeDefinition(n, []string{
		tableTypeColumn("Id", "int", 4, 10, 0, false),
		tableTypeColumn("Note", "nvarchar", 100, 0, 0, true),
		tableTypeColumn("Amount", "decimal", 9, 12, 2, true),
	})
	want := "-- built from the catalog: columns only (keys, checks and defaults of the type are not shown)\n" +
		"CREATE TYPE [dbo].[Order]]List] AS TABLE (\n    [Id] int NOT NULL,\n    [Note] nvarchar(50) NULL,\n    [Amount] decimal(12,2) NULL\n);"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if tableTypeDefinition(n, nil) != "" {
		t.Error("a type without columns read has a definition")
	}
}
