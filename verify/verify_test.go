package verify

import (
	"context"
	"strings"
	"testing"

	"github.com/caravan-db/caravan/coordinator"
	"github.com/caravan-db/caravan/internal/testenv"
	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/source/postgres"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestNarrowsToSubRanges: a chunk that differs is cut into sub-ranges at
// the source's keys; only those that differ are compared row by row, and
// rows between two source keys, before the first or after the last are
// all found.
func TestNarrowsToSubRanges(t *testing.T) {
	ctx := context.Background()
	srcURL, dstURL := testenv.Database(t, "vsrc"), testenv.Database(t, "vdst")
	table := []string{
		`CREATE TABLE even (id integer PRIMARY KEY, v text, w integer)`,
		`INSERT INTO even SELECT 2 * g, 'v' || g, g FROM generate_series(1, 2000) g`,
	}
	testenv.Exec(t, srcURL, table...)
	testenv.Exec(t, dstURL, table...)
	testenv.Exec(t, dstURL,
		`UPDATE even SET w = -1 WHERE id IN (302, 320)`, // one sub-range
		`DELETE FROM even WHERE id = 3000`,
		`INSERT INTO even VALUES (0, 'first', 0), (301, 'between', 0), (9000, 'last', 0)`)

	src, err := postgres.Open(ctx, srcURL, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	pool, err := pgutil.Pool(ctx, dstURL, "test", 4)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	cfg := Config{Options: coordinator.Options{RowsPerChunk: 1000, Filter: schema.Filter{Include: []string{"public.even"}}}, SubRows: 100, Workers: 2}
	res, err := New(src, pool, cfg).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tab := res.Tables[0]
	assertDiffs(t, tab, evenDiffs)
	t.Log(tab.Summary())
	// Four places differ (id 0; 301..320; 3000; 9000): at most one
	// sub-range each, of the many the differing chunks were cut into.
	if tab.SubDiffered < 1 || tab.SubDiffered > 4 || tab.SubRanges < 10 {
		t.Errorf("%d of %d sub-ranges compared by key: the narrowing did not narrow (%s)", tab.SubDiffered, tab.SubRanges, tab.Summary())
	}
	if tab.OK() || res.Identical() {
		t.Error("a differing table reported identical")
	}

	// A source whose key order PostgreSQL does not share (SQL Server's)
	// is compared whole, by key, and names the same rows.
	res, err = New(rangeUnsafe{src}, pool, cfg).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tab = res.Tables[0]
	assertDiffs(t, tab, evenDiffs)
	if tab.Whole == "" {
		t.Errorf("a range-unsafe table was checked by chunk: %s", tab.Summary())
	}
}

// rangeUnsafe is a PostgreSQL source whose tables claim that PostgreSQL
// may not order their keys as the source does, as SQL Server's do.
type rangeUnsafe struct{ *postgres.Source }

func (r rangeUnsafe) Discover(ctx context.Context, f schema.Filter) (*schema.Database, error) {
	db, err := r.Source.Discover(ctx, f)
	if err == nil {
		for _, t := range db.Tables {
			t.RangeSafe = false
		}
	}
	return db, err
}

var evenDiffs = []string{
	"missing  id=3000",
	"extra    id=0",
	"extra    id=301",
	"extra    id=9000",
	"changed  id=302: w",
	"changed  id=320: w",
}

func TestNaturalLess(t *testing.T) {
	sorted := []string{"a=1, b=x", "a=2, b=x", "a=10, b=a", "id=7", "id=007x", "id=50007", "id=100007", "name=abc", "name=abd"}
	for i := range sorted {
		for j := range sorted {
			if got := naturalLess(sorted[i], sorted[j]); got != (i < j) {
				t.Errorf("naturalLess(%q, %q) = %v", sorted[i], sorted[j], got)
			}
		}
	}
}

func assertDiffs(t *testing.T, tab *Table, want []string) {
	t.Helper()
	var got []string
	for _, d := range tab.Diffs {
		got = append(got, d.String())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("differences:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if tab.SourceRows != 2000 || tab.TargetRows != 2002 {
		t.Errorf("rows: source %d, target %d; want 2000, 2002", tab.SourceRows, tab.TargetRows)
	}
}
