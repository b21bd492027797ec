package mssql

import (
	"database/sql"
	"strings"
	"testing"

	"github.com/caravan-db/caravan/schema"
)

// A sequence of the run's schemas is created on the target and continues
// from its last value; one that cannot be, or lies outside the run, stays
// listed with its T-SQL.
func TestMigrateSequencesFromCatalogRows(t *testing.T) {
	rows := &catalogRows{
		Objects: []objectRow{
			{Type: "SO", Schema: "dbo", Name: "OrderNo"}, {Type: "SO", Schema: "dbo", Name: "Fresh"},
			{Type: "SO", Schema: "dbo", Name: "Huge"}, {Type: "SO", Schema: "dbo", Name: "Tiny"},
			{Type: "SO", Schema: "other", Name: "Elsewhere"},
		},
		Sequences: []sequenceRow{
			{Schema: "dbo", Name: "OrderNo", Type: "bigint", Start: "10", Increment: "5", Min: "1", Max: "9223372036854775807", Last: sql.NullString{String: "25", Valid: true}},
			{Schema: "dbo", Name: "Fresh", Type: "int", Start: "1", Increment: "-1", Min: "-100", Max: "1", Cycle: true},
			{Schema: "dbo", Name: "Huge", Type: "decimal", Start: "1", Increment: "1", Min: "1", Max: "99999999999999999999999999999999999999"},
			{Schema: "dbo", Name: "Tiny", Type: "tinyint", Start: "0", Increment: "1", Min: "0", Max: "255", Last: sql.NullString{String: "7", Valid: true}},
			{Schema: "other", Name: "Elsewhere", Type: "int", Start: "1", Increment: "1", Min: "1", Max: "10"},
			{Schema: "dbo", Name: "Orders_id_seq", Type: "bigint", Start: "1", Increment: "1", Min: "1", Max: "10"}, // not in sys.objects' inventory
		},
	}
	db := &schema.Database{Tables: []*schema.Table{{Source: schema.Name{Schema: "dbo", Name: "Orders"}}}}
	left := migrateSequences(rows, schema.Filter{}, db)

	got := map[string]string{}
	for _, s := range db.Sequences {
		got[s.Name.String()] = strings.Join(schema.CreateSequence(s), "; ")
	}
	want := map[string]string{
		"dbo.OrderNo": `CREATE SEQUENCE IF NOT EXISTS "dbo"."OrderNo" AS bigint INCREMENT BY 5 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 10 CACHE 1 NO CYCLE; SELECT setval('"dbo"."OrderNo"', 25, true)`,
		"dbo.Fresh":   `CREATE SEQUENCE IF NOT EXISTS "dbo"."Fresh" AS integer INCREMENT BY -1 MINVALUE -100 MAXVALUE 1 START WITH 1 CACHE 1 CYCLE`,
		"dbo.Tiny":    `CREATE SEQUENCE IF NOT EXISTS "dbo"."Tiny" AS smallint INCREMENT BY 1 MINVALUE 0 MAXVALUE 255 START WITH 0 CACHE 1 NO CYCLE; SELECT setval('"dbo"."Tiny"', 7, true)`,
	}
	for name, sql := range want {
		if got[name] != sql {
			t.Errorf("%s:\n got %s\nwant %s", name, got[name], sql)
		}
	}
	if len(got) != len(want) {
		t.Errorf("created %v, want %d sequences", got, len(want))
	}

	reasons := map[string]*schema.Unmigrated{}
	for _, u := range left {
		reasons[u.Key()] = u
	}
	if u := reasons["sequence:dbo.Huge"]; u == nil || !strings.Contains(u.Reason, "does not fit") ||
		u.Definition != "-- never used\nCREATE SEQUENCE [dbo].[Huge] AS decimal START WITH 1 INCREMENT BY 1 MINVALUE 1 MAXVALUE 99999999999999999999999999999999999999 NO CYCLE;" {
		t.Errorf("dbo.Huge: %+v", u)
	}
	if u := reasons["sequence:other.Elsewhere"]; u == nil || !strings.Contains(u.Reason, "holds no table of the run") {
		t.Errorf("other.Elsewhere: %+v", u)
	}
	if len(left) != 2 {
		t.Errorf("left %d sequences unmigrated, want 2", len(left))
	}

	// A run of some tables leaves out the other schemas' sequences.
	rows.Tables = []tableRow{{Schema: "dbo", Name: "Orders"}, {Schema: "other", Name: "T"}}
	db = &schema.Database{Tables: db.Tables}
	if left := migrateSequences(rows, schema.Filter{Include: []string{"dbo.*"}}, db); len(left) != 1 || left[0].Name != "dbo.Huge" {
		t.Errorf("a run of dbo left %v unmigrated, want dbo.Huge alone", left)
	}
}

// A default NEXT VALUE FOR a sequence the run creates becomes nextval of
// that sequence under its target name; one on a sequence the run does not
// create is dropped with a warning.
func TestNextValueForDefaults(t *testing.T) {
	rows := &catalogRows{
		Tables: []tableRow{{ObjectID: 1, Schema: "dbo", Name: "Tickets"}},
		Columns: []columnRow{{ObjectID: 1, ColumnID: 1, Name: "No", BaseType: "bigint", MaxLength: 8, Precision: 19, DefaultDef: "(NEXT VALUE FOR [dbo].[TicketNo])"},
			{ObjectID: 1, ColumnID: 2, Name: "Other", BaseType: "int", MaxLength: 4, Precision: 10, Nullable: true, DefaultDef: "(NEXT VALUE FOR [Huge])"}},
		Objects: []objectRow{{Type: "SO", Schema: "dbo", Name: "TicketNo"}, {Type: "SO", Schema: "dbo", Name: "Huge"}},
		Sequences: []sequenceRow{{Schema: "dbo", Name: "TicketNo", Type: "bigint", Start: "1", Increment: "1", Min: "1", Max: "9223372036854775807"},
			{Schema: "dbo", Name: "Huge", Type: "decimal", Start: "1", Increment: "1", Min: "1", Max: "99999999999999999999"}},
	}
	db, err := buildModel(rows, schema.Filter{}, Options{}, lowerPolicy)
	if err != nil {
		t.Fatal(err)
	}
	db.Unmigrated = migrateSequences(rows, schema.Filter{}, db)
	db.Translate = func(db *schema.Database) { sequenceDefaults(rows, db) }
	policy := schema.NamePolicy{Case: schema.CasePreserve, SchemaMap: map[string]string{"dbo": "app"}}
	if err := policy.Apply(db); err != nil {
		t.Fatal(err)
	}
	tb := db.Tables[0]
	if got := tb.Column("No").Default; got != `nextval('"app"."TicketNo"'::regclass)` {
		t.Errorf("default %q", got)
	}
	if tb.Column("Other").Default != "" || !strings.Contains(strings.Join(db.Warnings, "\n"), `column "Other": default (NEXT VALUE FOR [Huge]) dropped`) {
		t.Errorf("default %q, warnings %v", tb.Column("Other").Default, db.Warnings)
	}
}
