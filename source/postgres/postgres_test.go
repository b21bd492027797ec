package postgres

import (
	"context"
	"slices"
	"testing"

	"github.com/caravan-db/caravan/internal/testenv"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/source"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func open(t *testing.T, stmts ...string) *Source {
	t.Helper()
	url := testenv.Database(t, "src")
	testenv.Exec(t, url, stmts...)
	s, err := Open(context.Background(), url, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func table(t *testing.T, s *Source, name string) *schema.Table {
	t.Helper()
	db, err := s.Discover(context.Background(), schema.Filter{Include: []string{name}})
	if err != nil {
		t.Fatal(err)
	}
	if len(db.Tables) != 1 {
		t.Fatalf("found %d tables named %s", len(db.Tables), name)
	}
	if err := (schema.NamePolicy{Case: schema.CasePreserve}).Apply(db); err != nil {
		t.Fatal(err)
	}
	return db.Tables[0]
}

// readAll reads every chunk of a plan and returns the row count per chunk.
func readAll(t *testing.T, s *Source, tbl *schema.Table, chunks []source.Chunk) []int {
	t.Helper()
	var counts []int
	for i, ch := range chunks {
		task := &proto.ChunkTask{Table: tbl.ID(), Chunk: i, Source: proto.TableRef{Schema: tbl.Source.Schema, Name: tbl.Source.Name},
			Range: ch.Range, Lo: ch.Lo, Hi: ch.Hi, Key: tbl.PrimaryKey}
		for _, c := range tbl.LoadColumns() {
			task.Cols = append(task.Cols, c.Name)
		}
		for _, k := range tbl.PrimaryKey {
			task.KeyTypes = append(task.KeyTypes, tbl.Column(k).SourceType)
		}
		n := 0
		if err := s.Read(context.Background(), task, func([]byte) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		counts = append(counts, n)
	}
	return counts
}

func checkEven(t *testing.T, counts []int, total, per int) {
	t.Helper()
	sum := 0
	for _, c := range counts {
		sum += c
		if c > 3*per {
			t.Errorf("a chunk of %d rows for a target of %d: %v", c, per, counts)
		}
	}
	if sum != total {
		t.Errorf("chunks hold %d rows, table %d (overlap or gap): %v", sum, total, counts)
	}
	if len(counts) < total/per/2 {
		t.Errorf("%d chunks for %d rows at %d per chunk", len(counts), total, per)
	}
}

// Skewed and sparse integer keys: min..max arithmetic would put almost
// every row in the first chunk.
func TestPlanSkewedKeysGivesEvenChunks(t *testing.T) {
	s := open(t, `CREATE TABLE skew (id bigint PRIMARY KEY)`,
		`INSERT INTO skew SELECT g FROM generate_series(1, 20000) g`,
		`INSERT INTO skew SELECT 1000000000000 + g FROM generate_series(1, 20) g`, `ANALYZE skew`)
	tbl := table(t, s, "skew")
	chunks, err := s.Plan(context.Background(), tbl, "", 2000)
	if err != nil {
		t.Fatal(err)
	}
	checkEven(t, readAll(t, s, tbl, chunks), 20020, 2000)
}

func TestPlanCompositeAndTextKeys(t *testing.T) {
	s := open(t, `CREATE TABLE comp (a integer, b text, PRIMARY KEY (a, b))`,
		`INSERT INTO comp SELECT g % 7, md5(g::text) FROM generate_series(1, 14000) g`,
		`CREATE TABLE words (w text COLLATE "C" PRIMARY KEY)`,
		`INSERT INTO words SELECT md5(g::text) FROM generate_series(1, 9000) g`, `ANALYZE`)
	for name, total := range map[string]int{"comp": 14000, "words": 9000} {
		tbl := table(t, s, name)
		chunks, err := s.Plan(context.Background(), tbl, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		checkEven(t, readAll(t, s, tbl, chunks), total, 1000)
	}
}

func TestPlanKeylessUsesCtidRanges(t *testing.T) {
	s := open(t, `CREATE TABLE heap (n integer, v text)`, `INSERT INTO heap SELECT g % 3, repeat('x', 100) FROM generate_series(1, 30000) g`, `ANALYZE heap`)
	tbl := table(t, s, "heap")
	chunks, err := s.Plan(context.Background(), tbl, "", 3000)
	if err != nil {
		t.Fatal(err)
	}
	if chunks[0].Range != proto.RangePhysical {
		t.Fatalf("keyless table planned as %s", chunks[0].Range)
	}
	checkEven(t, readAll(t, s, tbl, chunks), 30000, 3000)
}

// Rows come out in PostgreSQL's canonical text, escaped for COPY.
func TestReadCanonicalText(t *testing.T) {
	s := open(t, `CREATE TABLE v (id integer PRIMARY KEY, b boolean, by bytea, t text, ts timestamptz, f float8)`,
		`INSERT INTO v VALUES (1, true, '\x00ff', E'a\tb\\c', '2020-01-01 12:00:00+02', 0.1), (2, NULL, NULL, NULL, NULL, NULL)`)
	tbl := table(t, s, "v")
	snap, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release(context.Background())
	task := &proto.ChunkTask{Source: proto.TableRef{Schema: "public", Name: "v"}, Range: proto.RangeKey, Key: []string{"id"}, KeyTypes: []string{"integer"},
		Cols: []string{"id", "b", "by", "t", "ts", "f"}, Snapshot: snap.ID}
	var lines []string
	if err := s.Read(context.Background(), task, func(l []byte) error { lines = append(lines, string(l)); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []string{"1\tt\t\\\\x00ff\ta\\tb\\\\c\t2020-01-01 10:00:00+00\t0.1\n", "2\t\\N\t\\N\t\\N\t\\N\t\\N\n"}
	if len(lines) != 2 || lines[0] != want[0] || lines[1] != want[1] {
		t.Errorf("got %q\nwant %q", lines, want)
	}
	_ = tbl
}

// Without statistics (never analysed) the planner samples the key itself.
func TestPlanWithoutStatisticsSamples(t *testing.T) {
	s := open(t, `CREATE TABLE fresh (id bigint PRIMARY KEY)`,
		`INSERT INTO fresh SELECT g * g FROM generate_series(1, 12000) g`)
	tbl := table(t, s, "fresh")
	chunks, err := s.Plan(context.Background(), tbl, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	checkEven(t, readAll(t, s, tbl, chunks), 12000, 1000)
}

// Errors no retry can mend are marked permanent; the extractor fails the
// chunk at once on them.
func TestReadErrorsNoRetryMendsArePermanent(t *testing.T) {
	s := open(t, `CREATE TABLE t (id integer PRIMARY KEY, v text)`, `INSERT INTO t VALUES (1, 'a')`)
	ok := &proto.ChunkTask{Table: "public.t", Source: proto.TableRef{Schema: "public", Name: "t"}, Cols: []string{"id", "v"},
		Key: []string{"id"}, KeyTypes: []string{"integer"}, Range: proto.RangeKey}
	missingCol, missingTable, badBound, noSnapshot := *ok, *ok, *ok, *ok
	missingCol.Cols = []string{"id", "gone"}                          // 42703
	missingTable.Source.Name = "gone"                                 // 42P01
	badBound.Lo = []string{"not a number"}                            // 22P02
	noSnapshot.Snapshot, noSnapshot.Run = "00000003-00000002-1", "r1" // 22023
	for name, task := range map[string]*proto.ChunkTask{"missing column": &missingCol, "missing table": &missingTable,
		"bad bound": &badBound, "snapshot gone": &noSnapshot} {
		err := s.Read(context.Background(), task, func([]byte) error { return nil })
		if err == nil || !source.IsPermanent(err) {
			t.Errorf("%s: %v is not permanent", name, err)
		}
	}
	if err := s.Read(context.Background(), ok, func([]byte) error { return nil }); err != nil {
		t.Fatal(err)
	}
}

// ReadKeys reads exactly the rows of the keys asked for, within the
// chunk's range and as Read prints them, whatever the key text holds
// (array syntax, quotes, backslashes, tabs): the keys are bound as
// arrays, never spliced into SQL.
func TestReadKeysSelectsRowsByKey(t *testing.T) {
	s := open(t, `CREATE TABLE k (a integer, b text, v text, PRIMARY KEY (a, b))`,
		`INSERT INTO k SELECT g % 5, 'b' || g, 'v' || g FROM generate_series(1, 500) g`,
		`INSERT INTO k VALUES (1, 'x,y', 'comma'), (1, '{"q"}', 'braces'), (2, E'back\\slash\ttab', 'escaped'), (2, 'NULL', 'word'), (3, ' ', 'space')`)
	tbl := table(t, s, "k")
	snap, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release(context.Background())
	task := &proto.ChunkTask{Source: proto.TableRef{Schema: "public", Name: "k"}, Range: proto.RangeKey, Key: tbl.PrimaryKey,
		KeyTypes: []string{"integer", "text"}, Cols: []string{"a", "b", "v"}, Snapshot: snap.ID, Lo: []string{"1", ""}, Hi: []string{"3", ""}}
	all := map[string]string{} // key text -> line, as Read gives them
	err = s.Read(context.Background(), task, func(l []byte) error {
		f, err := proto.SplitRow(nil, l)
		if err != nil {
			return err
		}
		all[string(f[0].Value)+"|"+string(f[1].Value)] = string(l)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	keys := [][]string{{"1", "x,y"}, {"1", `{"q"}`}, {"2", "back\\slash\ttab"}, {"2", "NULL"}, {"1", "b6"},
		{"3", " "},    // beyond the chunk's range: not read
		{"1", "nope"}, // no such row
	}
	var got []string
	err = s.ReadKeys(context.Background(), task, keys, func(l []byte) error { got = append(got, string(l)); return nil })
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, k := range keys[:5] {
		line, ok := all[k[0]+"|"+k[1]]
		if !ok {
			t.Fatalf("Read did not give the row of key %q", k)
		}
		want = append(want, line)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("ReadKeys gave\n%q\nwant\n%q", got, want)
	}
	one := &proto.ChunkTask{Source: proto.TableRef{Schema: "public", Name: "k"}, Range: proto.RangeKey, Key: []string{"a", "b"},
		KeyTypes: []string{"integer", "text"}, Cols: []string{"a", "b", "v"}, Snapshot: snap.ID}
	n := 0
	if err := s.ReadKeys(context.Background(), one, nil, func([]byte) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("no keys read %d rows (err %v)", n, err)
	}
}
