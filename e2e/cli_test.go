package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caravan-db/caravan/internal/testenv"
)

// plan prints mapping, DDL and chunks, and touches nothing.
func TestPlanTouchesNothing(t *testing.T) {
	src := testenv.Database(t, "src")
	testenv.Exec(t, src, sourceSchema...)
	res := caravan(t, time.Minute, "plan", "--source-url", src, "--chunk-rows", "1000", "--exclude", "events_*")
	if res.code != 0 {
		t.Fatalf("plan exited %d: %s", res.code, res.stderr)
	}
	mustContain(t, res.stdout, "-- consistency: one exported snapshot", "-- mapping", `"Odd Schema"."Table ""Quoted"" Ünïcødé"`, "CREATE TABLE", `CREATE UNIQUE INDEX "all_types_pkey" ON "public"."all_types" ("id")`, `ADD CONSTRAINT "all_types_pkey" PRIMARY KEY USING INDEX "all_types_pkey"`,
		"FOREIGN KEY", "NOT VALID", "-- chunks", "public.skewed: ")
	if strings.Contains(res.stdout, "events_log") {
		t.Error("--exclude events_* did not exclude events_log")
	}
	if n := query[int64](t, src, `SELECT count(*) FROM pg_namespace WHERE nspname = 'caravan'`); n != 0 {
		t.Error("plan created the caravan schema in the source")
	}
}

// Every flag can come from the YAML config file or the environment.
func TestConfigFileAndEnvironment(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, `CREATE TABLE a (id int PRIMARY KEY)`, `INSERT INTO a SELECT generate_series(1, 10)`,
		`CREATE TABLE b (id int PRIMARY KEY)`, `INSERT INTO b SELECT generate_series(1, 10)`)
	cfg := filepath.Join(t.TempDir(), "caravan.yaml")
	if err := os.WriteFile(cfg, []byte("source-url: "+src+"\ninclude: [public.a]\nchunk-rows: 5\nunlogged: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "migrate", "--config", cfg)
	cmd.Env = append(os.Environ(), "CARAVAN_TARGET_URL="+dst, "CARAVAN_LOG_FORMAT=json")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, tail(string(out), 3000))
	}
	assertSameContent(t, src, dst, "public.a")
	if n := query[int64](t, dst, `SELECT count(*) FROM pg_tables WHERE tablename = 'b' AND schemaname = 'public'`); n != 0 {
		t.Error("include from the config file was ignored")
	}
	if n := query[int64](t, dst, `SELECT count(*) FROM caravan.chunks`); n < 2 {
		t.Errorf("chunk-rows from the config file was ignored: %d chunks", n)
	}
	// Loaded UNLOGGED, then made durable.
	if p := query[string](t, dst, `SELECT relpersistence::text FROM pg_class WHERE oid = 'public.a'::regclass`); p != "p" {
		t.Errorf("table left with persistence %q after an unlogged load", p)
	}
	if n := query[int64](t, dst, `SELECT count(*) FROM caravan.audit WHERE metadata->>'sql' LIKE '%SET LOGGED'`); n != 1 {
		t.Error("the unlogged option from the config file was ignored")
	}
	// SET LOGGED rewrites the table, and a read whose snapshot predates the
	// rewrite sees it empty: the content is read only once it is done.
	if n := query[int64](t, dst, `SELECT count(*) FROM caravan.audit v, caravan.audit l
		WHERE v.operation IN ('validate_count', 'validate_digest') AND l.metadata->>'sql' LIKE '%SET LOGGED' AND v.started_at < l.completed_at`); n != 0 {
		t.Error("the table's content was read before SET LOGGED had rewritten it")
	}

	// status reads the run back from the target, for people and scripts.
	res := caravan(t, time.Minute, "status", "--target-url", dst)
	mustContain(t, res.stdout, "succeeded", "public.a", "digest ok")
	res = caravan(t, time.Minute, "status", "--target-url", dst, "--json")
	mustContain(t, res.stdout, `"schema_version": 1`, `"status": "succeeded"`, `"phase": "ok"`, `"source_rows": 10`, `"exit_code": 0`)
	if strings.Contains(res.stdout, "\x1b") {
		t.Error("status --json carries terminal escapes")
	}
	// --watch of a finished run prints it once and stops; with --json it is
	// one line of JSON.
	res = caravan(t, time.Minute, "status", "--target-url", dst, "--json", "--watch")
	if lines := strings.Split(strings.TrimSpace(res.stdout), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], `{"schema_version":1,`) {
		t.Errorf("status --json --watch is not JSON lines:\n%s", res.stdout)
	}
	res = caravan(t, time.Minute, "status", "--target-url", dst, "--watch")
	if res.code != 0 || strings.Contains(res.stdout, "\x1b") {
		t.Errorf("status --watch without a terminal: exit %d, escapes in\n%q", res.code, res.stdout)
	}

	// A database no run ever used says so, not with a raw SQL error.
	res = caravan(t, time.Minute, "status", "--target-url", src)
	if res.code != 1 || !strings.Contains(res.stderr, "no caravan schema in this database") {
		t.Errorf("status against a database without runs: exit %d\n%s", res.code, res.stderr)
	}
}

// Bad input is refused before anything is created, with a message that says
// what to do.
func TestRefusesNonEmptyTargetInCreateMode(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, `CREATE TABLE a (id int PRIMARY KEY)`, `INSERT INTO a VALUES (1)`)
	testenv.Exec(t, dst, `CREATE TABLE a (id int PRIMARY KEY)`, `INSERT INTO a VALUES (99)`)
	res := caravan(t, time.Minute, "migrate", "--source-url", src, "--target-url", dst)
	if res.code != 3 {
		t.Fatalf("migrate into a non-empty table in create mode exited %d, want 3 (refused)", res.code)
	}
	mustContain(t, res.stderr, `table "public"."a" already exists and holds rows`, "--mode truncate")
	if n := query[int64](t, dst, `SELECT count(*) FROM a WHERE id = 99`); n != 1 {
		t.Error("the existing row was touched")
	}
	res = caravan(t, time.Minute, "migrate", "--source-url", src, "--target-url", dst, "--mode", "drop-recreate")
	if res.code != 0 {
		t.Fatalf("drop-recreate exited %d: %s", res.code, tail(res.stderr, 2000))
	}
	assertSameContent(t, src, dst, "a")
}

// --validate none skips the checks; the report then judges on loading alone.
func TestValidateNone(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, `CREATE TABLE a (id int PRIMARY KEY)`, `INSERT INTO a SELECT generate_series(1, 100)`)
	res := caravan(t, time.Minute, "migrate", "--source-url", src, "--target-url", dst, "--validate", "none")
	if res.code != 0 || strings.Contains(res.stdout, "FAILED") {
		t.Fatalf("exit %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 2000))
	}
	if n := query[int64](t, dst, `SELECT count(*) FROM caravan.verdicts`); n != 0 {
		t.Errorf("%d verdicts recorded with --validate none", n)
	}
	assertSameContent(t, src, dst, "a")
}

// plan --target-url says what the run would meet there, touching nothing:
// a table holding rows under --mode create, an existing empty one, a type
// the target lacks; and it warns about each pattern that selects nothing.
func TestPlanChecksTheTarget(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, `CREATE EXTENSION IF NOT EXISTS citext`,
		`CREATE TABLE full_one (id int PRIMARY KEY)`, `CREATE TABLE empty_one (id int PRIMARY KEY)`,
		`CREATE TABLE fresh (id int PRIMARY KEY, email citext)`, `CREATE TABLE skip_me (id int)`)
	testenv.Exec(t, dst, `CREATE TABLE full_one (id int PRIMARY KEY)`, `INSERT INTO full_one VALUES (1)`, `CREATE TABLE empty_one (id int PRIMARY KEY)`)
	res := caravan(t, time.Minute, "plan", "--source-url", src, "--target-url", dst,
		"--include", "public.*", "--include", "nosuch_*", "--exclude", "skip_*", "--exclude", "typo_*")
	if res.code != 0 {
		t.Fatalf("plan exited %d: %s", res.code, res.stderr)
	}
	mustContain(t, res.stdout, "-- target ",
		`table "public"."full_one" exists and holds rows: --mode create will refuse the run`,
		`table "public"."empty_one" exists: --mode create will drop it and create it anew`,
		"does not exist on the target (used by public.fresh.email): CREATE EXTENSION citext there first",
		`--include "nosuch_*" matches no source table`, `--exclude "typo_*" matches no source table`)
	for _, wrong := range []string{`"public.*" matches`, `"skip_*" matches`, `"public"."fresh" exists`} {
		if strings.Contains(res.stdout, wrong) {
			t.Errorf("plan says %s:\n%s", wrong, res.stdout)
		}
	}
	if n := query[int64](t, dst, `SELECT count(*) FROM pg_namespace WHERE nspname = 'caravan'`); n != 0 {
		t.Error("plan created the caravan schema in the target")
	}
	res = caravan(t, time.Minute, "plan", "--source-url", src, "--target-url", dst, "--mode", "truncate", "--include", "full_one")
	mustContain(t, res.stdout, `table "public"."full_one" exists: --mode truncate will empty it`)
}
