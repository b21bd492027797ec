package resync

import (
	"strings"
	"testing"

	"github.com/caravan-db/caravan/schema"
)

func table(name string, key []string, cols ...string) *schema.Table {
	t := &schema.Table{Source: schema.Name{Schema: "public", Name: name}, Target: schema.Name{Schema: "public", Name: name}, PrimaryKey: key}
	for _, c := range cols {
		n, typ, _ := strings.Cut(c, " ")
		t.Columns = append(t.Columns, &schema.Column{Name: n, TargetName: n, SourceType: typ, Type: typ})
	}
	return t
}

// TestDrift names every change of schema between a run and the source now.
func TestDrift(t *testing.T) {
	was := &schema.Database{Tables: []*schema.Table{
		table("items", []string{"id"}, "id integer", "name text", "price numeric"),
		table("gone", []string{"id"}, "id integer"),
		table("same", nil, "n integer"),
	}}
	now := &schema.Database{Tables: []*schema.Table{
		table("items", []string{"id", "name"}, "id integer", "name varchar(10)", "extra integer"),
		table("fresh", []string{"id"}, "id integer"),
		table("same", nil, "n integer"),
	}}
	got := Drift(was, now)
	want := []string{
		"table public.items: column name changed type from text to varchar(10)",
		"table public.items: column price was dropped",
		"table public.items: column extra was added (integer)",
		"table public.items: primary key changed from (id) to (id, name)",
		"table public.gone is gone from the source",
		"table public.fresh is new on the source",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("drift:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if d := Drift(was, was); len(d) != 0 {
		t.Errorf("a schema drifts from itself: %v", d)
	}
}
