package coordinator

import (
	"testing"

	"github.com/caravan-db/caravan/target"
)

// A table judged in part (its content, not yet its keys, when the
// coordinator died) is asked again on resume, not taken as passed; a
// failed level fails it whatever is missing.
func TestTableVerdictWantsEveryLevel(t *testing.T) {
	levels := []string{"count", "keys", "digest", "fk"}
	row := func(level string, ok bool) target.VerdictRow {
		return target.VerdictRow{Table: "public.t", Level: level, OK: ok}
	}
	for _, c := range []struct {
		name string
		rows []target.VerdictRow
		want string // "", "ok", "failed"
	}{
		{"none", nil, ""},
		{"content only", []target.VerdictRow{row("count", true), row("digest", true)}, ""},
		{"every level", []target.VerdictRow{row("count", true), row("digest", true), row("keys", true)}, "ok"},
		{"a level failed", []target.VerdictRow{row("digest", false)}, "failed"},
		{"another table's", []target.VerdictRow{{Table: "public.u", Level: "count", OK: true}}, ""},
	} {
		v := tableVerdict("run", "public.t", c.rows, levels)
		got := ""
		switch {
		case v != nil && v.OK:
			got = "ok"
		case v != nil:
			got = "failed"
		}
		if got != c.want {
			t.Errorf("%s: verdict %q, want %q", c.name, got, c.want)
		}
	}
}
