package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/caravan-db/caravan/schema"
)

// With only some tables included, partitions follow their root, a child
// whose parent stays behind is created plain, what needs an excluded table
// is listed as not migrated (and its comments stay behind with it), and
// the objects of excluded tables are left with them.
func TestDiscoverWithIncludedTables(t *testing.T) {
	s := open(t,
		`CREATE TABLE kept (id integer PRIMARY KEY)`,
		`CREATE TABLE gone (id integer PRIMARY KEY)`,
		`CREATE TABLE kept_child (extra text) INHERITS (gone)`,
		`CREATE TABLE kept_parts (at date NOT NULL) PARTITION BY RANGE (at)`,
		`CREATE TABLE parts_2024 PARTITION OF kept_parts FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')`,
		`CREATE VIEW on_kept AS SELECT id FROM kept`,
		`CREATE VIEW on_gone AS SELECT id FROM gone`,
		`CREATE VIEW on_on_gone AS SELECT id FROM on_gone`,
		`COMMENT ON VIEW on_gone IS 'left behind'`,
		`CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`,
		`CREATE TRIGGER gone_noop BEFORE INSERT ON gone FOR EACH ROW EXECUTE FUNCTION noop()`,
		`CREATE TRIGGER kept_noop BEFORE INSERT ON kept FOR EACH ROW EXECUTE FUNCTION noop()`,
		`CREATE AGGREGATE total(integer) (sfunc = int4pl, stype = integer)`,
	)
	db, err := s.Discover(context.Background(), schema.Filter{Include: []string{"kept*"}})
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for _, tb := range db.Tables {
		tables = append(tables, tb.Source.Name)
		if tb.Source.Name == "kept_child" && (len(tb.Inherits) != 0 || len(tb.Columns) != 2) {
			t.Errorf("kept_child: inherits %v with %d columns, want a plain table with both", tb.Inherits, len(tb.Columns))
		}
	}
	if got := strings.Join(tables, ","); got != "kept,kept_child,kept_parts,parts_2024" {
		t.Errorf("tables %s", got)
	}
	var objects, unmigrated []string
	for _, o := range db.Objects {
		objects = append(objects, o.Kind+":"+o.Name)
	}
	for _, u := range db.Unmigrated {
		unmigrated = append(unmigrated, u.Key())
	}
	for _, want := range []string{"function:public.noop()", "view:public.on_kept", `trigger:"kept_noop" on "public"."kept"`} {
		if !contains(objects, want) {
			t.Errorf("objects lack %s: %v", want, objects)
		}
	}
	for _, unwanted := range []string{"view:public.on_gone", `trigger:"gone_noop" on "public"."gone"`, "comment:on view public.on_gone"} {
		if contains(objects, unwanted) {
			t.Errorf("objects hold %s", unwanted)
		}
	}
	for _, want := range []string{"view:public.on_gone", "view:public.on_on_gone", "aggregate:public.total(integer)"} {
		if !contains(unmigrated, want) {
			t.Errorf("not migrated lacks %s: %v", want, unmigrated)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
