package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caravan-db/caravan/internal/testenv"
)

// TestMigrateEveryKindOfTable copies every fixture table and proves each is
// identical, row for row, on both sides.
func TestMigrateEveryKindOfTable(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, sourceSchema...)

	reportFile := filepath.Join(t.TempDir(), "report.json")
	res := caravan(t, 5*time.Minute, "migrate", "--source-url", src, "--target-url", dst,
		"--chunk-rows", "500", "--batch-rows", "200", "--extractors", "2", "--loaders", "2", "--report-json", reportFile)
	if res.code != 0 {
		t.Fatalf("migrate exited %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, tail(res.stderr, 6000))
	}
	assertSameContent(t, src, dst, sourceTables...)
	mustContain(t, res.stdout, "table", "source rows", "digest ok", "rows/s", "public.all_types", "succeeded")

	var rep struct {
		Status string
		Tables []struct {
			Table    string
			OK       bool
			DigestOK *bool `json:"digest_ok"`
		}
	}
	data, err := os.ReadFile(reportFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Status != "succeeded" || len(rep.Tables) != len(sourceTables) {
		t.Fatalf("report: status %s with %d tables, want succeeded with %d", rep.Status, len(rep.Tables), len(sourceTables))
	}
	for _, tb := range rep.Tables {
		if !tb.OK || tb.DigestOK == nil || !*tb.DigestOK {
			t.Errorf("report: table %s not ok", tb.Table)
		}
	}

	// Keys, indexes, checks, foreign keys and sequences are in place.
	for _, c := range []struct{ sql, want string }{
		{`SELECT count(*)::text FROM pg_constraint WHERE contype = 'p' AND connamespace::regnamespace::text IN ('public', '"Odd Schema"')`, "10"},
		{`SELECT count(*)::text FROM pg_constraint WHERE contype = 'f' AND convalidated AND connamespace = 'public'::regnamespace`, "1"},
		{`SELECT count(*)::text FROM pg_indexes WHERE indexname IN ('all_types_uuid', 'all_types_lower', 'all_types_jsonb', 'words_n_key')`, "4"},
		{`SELECT count(*)::text FROM pg_constraint WHERE conname = 'note_len'`, "1"},
		{`SELECT relpersistence::text FROM pg_class WHERE relname = 'orders'`, "p"},
	} {
		if got := query[string](t, dst, c.sql); got != c.want {
			t.Errorf("%s = %s, want %s", c.sql, got, c.want)
		}
	}
	// Tables of built-in types only travelled (and were digested) as binary
	// COPY, the others as text.
	encodings := query[string](t, dst, `SELECT string_agg((m->'Target'->>'Name') || '=' || (m->>'Encoding'), ',' ORDER BY m->'Target'->>'Name')
		FROM caravan.runs, jsonb_array_elements(model->'Tables') m WHERE m->'Target'->>'Name' IN ('all_types', 'builtin_types', 'orders')`)
	if encodings != "all_types=copy-text,builtin_types=copy-binary,orders=copy-binary" {
		t.Errorf("recorded encodings %s", encodings)
	}
	// The next generated ids follow the copied rows instead of colliding.
	testenv.Exec(t, dst, `INSERT INTO all_types (c_text) VALUES ('after migration')`,
		`INSERT INTO public."abcdefghij_abcdefghij_abcdefghij_abcdefghij_abcdefghij_abcdefgh" (x) VALUES ('next')`)
	if got := query[int64](t, dst, `SELECT max(c_serial) FROM all_types`); got != query[int64](t, src, `SELECT max(c_serial) FROM all_types`)+1 {
		t.Errorf("serial restarted at %d", got)
	}
	// An identity with a seed and a step goes on where the source would:
	// max + increment, on the step.
	testenv.Exec(t, dst, `INSERT INTO stepped (v) VALUES ('next')`)
	if got, want := query[int64](t, dst, `SELECT max(id) FROM stepped`), query[int64](t, src, `SELECT max(id) FROM stepped`)+5; got != want {
		t.Errorf("stepped identity gave %d next, the source would give %d", got, want)
	}

	// The run's story is in the target.
	if n := query[int64](t, dst, `SELECT count(*) FROM caravan.ledger l JOIN caravan.runs r USING (run_id)`); n == 0 {
		t.Error("ledger is empty")
	}
	if n := query[int64](t, dst, `SELECT count(*) FROM caravan.verdicts WHERE NOT ok`); n != 0 {
		t.Errorf("%d failed verdicts", n)
	}
	for _, op := range []string{"plan", "create_table", "chunk_extracted", "chunk_loaded", "finalize", "validate_digest", "validate_fk"} {
		if n := query[int64](t, dst, `SELECT count(*) FROM caravan.audit WHERE operation = $1`, op); n == 0 {
			t.Errorf("no audit row for %s", op)
		}
	}
}

// A value larger than a broker message travels through the object store
// and still arrives intact.
func TestValueLargerThanAMessage(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, `CREATE TABLE docs (id integer PRIMARY KEY, body text, blob bytea)`,
		`INSERT INTO docs SELECT g, repeat(md5(g::text), CASE WHEN g = 3 THEN 400000 ELSE 10 END),
			CASE WHEN g = 4 THEN decode(repeat('00ff', 5000000), 'hex') END FROM generate_series(1, 6) g`)
	res := caravan(t, 3*time.Minute, "migrate", "--source-url", src, "--target-url", dst)
	if res.code != 0 {
		t.Fatalf("migrate exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 3000))
	}
	assertSameContent(t, src, dst, "docs")
	if n := query[int64](t, dst, `SELECT octet_length(body) FROM docs WHERE id = 3`); n != 12_800_000 {
		t.Errorf("the 12.8 MB value arrived as %d bytes", n)
	}
}
