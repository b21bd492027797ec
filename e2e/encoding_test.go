package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/caravan-db/caravan/internal/testenv"
)

// legacySource is a SQL_ASCII database holding Latin-1 text, as old
// databases do: 'café' as caf\xe9 (key 7, column name) and 'naïve' as
// na\xefve (key 31, column note), beside a table of plain ASCII.
func legacySource(t *testing.T) string {
	src := testenv.SQLASCIIDatabase(t, "src")
	testenv.Exec(t, src, `CREATE TABLE legacy (id integer PRIMARY KEY, name text, note text)`,
		`INSERT INTO legacy SELECT g, 'row ' || g, CASE WHEN g % 3 = 0 THEN 'tab	and \ backslash' END FROM generate_series(1, 60) g`,
		`UPDATE legacy SET name = convert_from('\x636166e9'::bytea, 'SQL_ASCII') WHERE id = 7`,
		`UPDATE legacy SET note = convert_from('\x6e61ef7665'::bytea, 'SQL_ASCII') WHERE id = 31`,
		`CREATE TABLE plain (id integer PRIMARY KEY, v text)`,
		`INSERT INTO plain SELECT g, 'v' || g FROM generate_series(1, 20) g`)
	return src
}

// rawText hashes a table's text as bytes, each column through convert_to
// with the given encoding: SQL_ASCII on the source gives the stored bytes,
// LATIN1 on the target turns the loaded text back into Latin-1 bytes.
func rawText(t *testing.T, dbURL, encoding string) string {
	return query[string](t, dbURL, `SELECT md5(string_agg(id || ':' || coalesce(encode(convert_to(name, $1), 'hex'), 'N') || ':' ||
		coalesce(encode(convert_to(note, $1), 'hex'), 'N'), ',' ORDER BY id)) FROM legacy`, encoding)
}

// The three ways through a SQL_ASCII source holding Latin-1 text.
func TestSQLASCIISourceEncodingPolicies(t *testing.T) {
	src := legacySource(t)
	migrate := func(t *testing.T, dst string, args ...string) result {
		return caravan(t, 3*time.Minute, append([]string{"migrate", "--source-url", src, "--target-url", dst, "--chunk-rows", "20"}, args...)...)
	}

	t.Run("source-encoding", func(t *testing.T) {
		dst := testenv.Database(t, "dst")
		res := migrate(t, dst, "--source-encoding", "LATIN1")
		if res.code != 0 {
			t.Fatalf("migrate exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 4000))
		}
		if got := query[string](t, dst, `SELECT name || '/' || (SELECT note FROM legacy WHERE id = 31) FROM legacy WHERE id = 7`); got != "café/naïve" {
			t.Errorf("converted text arrived as %q", got)
		}
		// Every value is the source's bytes read as Latin-1, nothing else.
		if s, d := rawText(t, src, "SQL_ASCII"), rawText(t, dst, "LATIN1"); s != d {
			t.Errorf("target text is not the source converted from Latin-1: source %s, target %s", s, d)
		}
		assertSameContent(t, src, dst, "plain")
		mustContain(t, res.stdout, "digest ok", "succeeded")
	})

	t.Run("replace", func(t *testing.T) {
		dst := testenv.Database(t, "dst")
		res := migrate(t, dst, "--invalid-text", "replace")
		if res.code != 0 {
			t.Fatalf("migrate exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 4000))
		}
		if got := query[string](t, dst, `SELECT name || '/' || (SELECT note FROM legacy WHERE id = 31) FROM legacy WHERE id = 7`); got != "caf\uFFFD/na\uFFFDve" {
			t.Errorf("replaced text arrived as %q", got)
		}
		if n := query[int64](t, dst, `SELECT count(*) FROM legacy WHERE name LIKE 'row %'`); n != 59 {
			t.Errorf("%d untouched names, want 59", n)
		}
		mustContain(t, res.stderr, `"level":"WARN"`, "invalid text replaced by U+FFFD",
			`"table":"public.legacy","column":"name"`, `"keys":"(id=7)"`, `"column":"note"`, `"keys":"(id=31)"`)
		mustContain(t, res.stdout, "succeeded")
	})

	t.Run("fail", func(t *testing.T) {
		dst := testenv.Database(t, "dst")
		run := uuid.NewString()
		res := migrate(t, dst, "--run-id", run) // --invalid-text fail is the default
		if res.code == 0 {
			t.Fatalf("migrate succeeded over invalid text\n%s", res.stdout)
		}
		mustContain(t, res.stderr, `"msg":"chunk failed"`, "table public.legacy column name key (id=7)", "0xe9", `caf\\xe9`)
		if strings.Contains(res.stderr, "will be retried") {
			t.Errorf("invalid text was retried:\n%s", tail(res.stderr, 3000))
		}
		reason := query[string](t, dst, `SELECT string_agg(error, '; ') FROM caravan.chunks WHERE status = 'failed'`)
		for _, want := range []string{"column name key (id=7)", "0xe9", "--source-encoding"} {
			if !strings.Contains(reason, want) {
				t.Errorf("the failed chunk's reason %q lacks %q", reason, want)
			}
		}
		// Other chunks and tables go on.
		assertSameContent(t, src, dst, "plain")
		if st := query[string](t, dst, `SELECT status FROM caravan.tables WHERE table_id = 'public.legacy'`); st != "failed" {
			t.Errorf("table legacy is %s", st)
		}

		// The user chooses a policy and finishes the run.
		res = caravan(t, 3*time.Minute, "resume", "--source-url", src, "--target-url", dst, "--source-encoding", "LATIN1", run)
		if res.code != 0 {
			t.Fatalf("resume exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 4000))
		}
		if s, d := rawText(t, src, "SQL_ASCII"), rawText(t, dst, "LATIN1"); s != d {
			t.Errorf("after resume, target text is not the source converted from Latin-1: source %s, target %s", s, d)
		}
		// The choice is the run's now: a later resume without the flag
		// reads the same way.
		if enc := query[string](t, dst, `SELECT coalesce(config->'source_options'->>'source_encoding', '') FROM caravan.runs WHERE run_id = $1`, run); enc != "LATIN1" {
			t.Errorf("the run records source encoding %q after a resume with --source-encoding LATIN1", enc)
		}
	})
}

// TestSQLASCIITextKeysSplitIntoChunks: a SQL_ASCII table whose text key
// holds Latin-1 bytes is still planned in many key-range chunks (the
// planner reads the keys as bytes and cuts only at keys that are UTF-8,
// since bounds are stored as JSON) and every row arrives, converted.
func TestSQLASCIITextKeysSplitIntoChunks(t *testing.T) {
	src := testenv.SQLASCIIDatabase(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, `CREATE TABLE names (k text PRIMARY KEY, v integer)`,
		`INSERT INTO names SELECT 'n' || g || CASE WHEN g % 3 = 0 THEN convert_from('\xe9'::bytea, 'SQL_ASCII') ELSE '' END, g FROM generate_series(1, 3000) g`,
		`ANALYZE names`)
	res := caravan(t, 3*time.Minute, "migrate", "--source-url", src, "--target-url", dst, "--chunk-rows", "300", "--source-encoding", "LATIN1")
	if res.code != 0 {
		t.Fatalf("migrate exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 4000))
	}
	if n := query[int64](t, dst, `SELECT count(*) FROM caravan.chunks WHERE table_id = 'public.names'`); n < 5 {
		t.Errorf("names planned in %d chunks, want about 10", n)
	}
	srcBytes := query[string](t, src, `SELECT md5(string_agg(encode(convert_to(k, 'SQL_ASCII'), 'hex') || ':' || v, ',' ORDER BY v)) FROM names`)
	dstBytes := query[string](t, dst, `SELECT md5(string_agg(encode(convert_to(k, 'LATIN1'), 'hex') || ':' || v, ',' ORDER BY v)) FROM names`)
	if srcBytes != dstBytes {
		t.Error("the target's keys are not the source's bytes read as Latin-1")
	}
	if got := query[string](t, dst, `SELECT k FROM names WHERE v = 3`); got != "n3é" {
		t.Errorf("key of v=3 arrived as %q", got)
	}
	mustContain(t, res.stdout, "succeeded")
}
