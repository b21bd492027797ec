package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/caravan-db/caravan/coordinator"
	"github.com/caravan-db/caravan/internal/testenv"
)

// wideTable creates a table of cols columns (PostgreSQL allows 1,600, SQL
// Server 1,024) filled with rows rows: an integer key, then smallints,
// booleans and short texts with tabs, newlines and NULLs, small enough
// that a row fits a heap page.
func wideTable(name string, cols, rows int) []string {
	defs := []string{"id integer PRIMARY KEY"}
	vals := []string{"g"}
	for i := 1; i < cols; i++ {
		typ, val := "smallint", fmt.Sprintf("(g * %d) %% 30000", i)
		switch i % 10 {
		case 0:
			typ, val = "text", `CASE WHEN g % 3 = 0 THEN NULL WHEN g % 3 = 1 THEN E'\t\\' || g % 10 ELSE E'\n' END`
		case 5:
			typ, val = "boolean", fmt.Sprintf("(g + %d) %% 2 = 0", i)
		}
		defs = append(defs, fmt.Sprintf("c%d %s", i, typ))
		vals = append(vals, val)
	}
	return []string{
		fmt.Sprintf("CREATE TABLE %s (%s)", name, strings.Join(defs, ", ")),
		fmt.Sprintf("INSERT INTO %s SELECT %s FROM generate_series(1, %d) g", name, strings.Join(vals, ", "), rows),
	}
}

// awkwardValues are values whose text form is easy to get wrong: the
// validator's read-back digest of them must equal the extractor's.
var awkwardValues = []string{
	`CREATE TABLE awkward (id integer PRIMARY KEY, t text, e text, by bytea, b boolean, i inet, ts timestamptz, tsn timestamp,
		n numeric, f float8, a text[], j json, jb jsonb, u text)`,
	`INSERT INTO awkward VALUES
		(1, E'tab\there\nnewline \\ backslash \\N', '', '\x00ff5c0a'::bytea, true, '10.0.0.1', '2020-01-01 10:00:00.5+02', '2020-02-29 23:59:59.999999',
		 123456789012345.000100, 1.5e-7, '{"a b",NULL,"x\\y","",NULL}', '{"k":  [1, 2.50], "t": "a\tb"}', '{"b": {"c": null}, "a": 1}', '😀 𝄞 ünï'),
		(2, NULL, NULL, ''::bytea, false, '2001:db8::/32', '-infinity', 'infinity', 'NaN', '-Infinity', '{}', '[]', '[]', ''),
		(3, '\N', E'\r\n', NULL, NULL, NULL, NULL, NULL, -0.001, 'NaN', NULL, NULL, NULL, NULL)`,
	`INSERT INTO awkward SELECT g, E'row\t' || g, repeat(E'\\', g % 5), decode(md5(g::text), 'hex'), g % 2 = 0, ('10.0.' || g % 256 || '.1')::inet,
		'2024-01-01'::timestamptz + g * interval '1 second', '2024-01-01'::timestamp + g * interval '1 ms', g / 7.0, g / 3.0,
		ARRAY[g::text, NULL], ('{"g": ' || g || '}')::json, ('{"g": ' || g || '}')::jsonb, 'ü' || g FROM generate_series(4, 900) g`,
}

// TestWideTablesValidate migrates tables of 1,600 and 1,024 columns and a
// table of awkward values, and proves each at every level (count, keys,
// per-chunk digest), the digests recomputed on the target by reading the
// chunks back.
func TestWideTablesValidate(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, wideTable("wide1600", 1600, 600)...)
	testenv.Exec(t, src, wideTable("wide1024", 1024, 600)...)
	testenv.Exec(t, src, awkwardValues...)
	testenv.Exec(t, src, "ANALYZE")

	w := migrateInProcess(t, src, dst, coordinator.Options{RowsPerChunk: 200, BatchRows: 100, Validation: []string{"count", "keys", "digest"}})
	if w.err != nil {
		t.Fatalf("run: %v\nlogs:\n%s", w.err, tail(w.logs.String(), 6000))
	}
	tables := []string{"public.wide1600", "public.wide1024", "public.awkward"}
	assertSameContent(t, src, dst, tables...)
	for _, table := range tables {
		if n := query[int64](t, dst, `SELECT count(*) FROM caravan.chunks WHERE run_id = $1 AND table_id = $2`, w.run, table); n < 2 {
			t.Errorf("%s: %d chunks; the per-chunk digests are not exercised", table, n)
		}
		for _, level := range []string{"count", "keys", "digest"} {
			ok := query[bool](t, dst, `SELECT coalesce((SELECT ok FROM caravan.verdicts WHERE run_id = $1 AND table_id = $2 AND level = $3), false)`,
				w.run, table, level)
			if !ok {
				t.Errorf("%s %s: not ok: %s", table, level, query[string](t, dst,
					`SELECT coalesce((SELECT detail FROM caravan.verdicts WHERE run_id = $1 AND table_id = $2 AND level = $3), 'no verdict')`, w.run, table, level))
			}
		}
	}
}
