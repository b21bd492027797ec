package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/caravan-db/caravan/internal/testenv"
)

// assertRunAgrees checks that caravan.runs, the verdicts and the exit code
// tell the same story about a finished run.
func assertRunAgrees(t *testing.T, dst, run string, code int, want string) {
	t.Helper()
	status := query[string](t, dst, `SELECT status FROM caravan.runs WHERE run_id = $1`, run)
	failed := query[int64](t, dst, `SELECT count(*) FROM caravan.verdicts WHERE run_id = $1 AND NOT ok`, run)
	if status != want {
		t.Errorf("caravan.runs says %s, want %s", status, want)
	}
	if (code == 0) != (want == "succeeded") {
		t.Errorf("exit code %d for a run that %s", code, want)
	}
	if failed > 0 && want == "succeeded" {
		t.Errorf("%d failed verdicts for a run that %s", failed, want)
	}
}

// TestResumeRepairsRejectedBatch: a batch is rejected (a target column too
// narrow), the user widens the column, and `caravan resume` loads the failed
// table's chunks again, judges it afresh, and the run succeeds.
func TestResumeRepairsRejectedBatch(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src,
		`CREATE TABLE people (id integer PRIMARY KEY, name text)`,
		`INSERT INTO people SELECT g, CASE WHEN g = 42 THEN 'far too long a name' ELSE 'p' || g END FROM generate_series(1, 3000) g`,
		`CREATE TABLE notes (n integer, body text)`,
		`INSERT INTO notes SELECT g % 7, CASE WHEN g = 500 THEN 'far too long a note' ELSE 'n' || g END FROM generate_series(1, 2000) g`)
	testenv.Exec(t, dst, `CREATE TABLE people (id integer PRIMARY KEY, name varchar(5))`, `CREATE TABLE notes (n integer, body varchar(5))`)
	run := uuid.NewString()
	res := caravan(t, 3*time.Minute, "migrate", "--source-url", src, "--target-url", dst, "--run-id", run,
		"--mode", "truncate", "--batch-rows", "100", "--chunk-rows", "1000")
	if res.code == 0 {
		t.Fatalf("migrate succeeded with a rejected row\n%s", res.stdout)
	}
	assertRunAgrees(t, dst, run, res.code, "failed")
	if n := query[int64](t, dst, `SELECT count(*) FROM caravan.verdicts WHERE run_id = $1 AND NOT ok`, run); n == 0 {
		t.Error("no failed verdict for a table with rejected rows")
	}

	testenv.Exec(t, dst, `ALTER TABLE people ALTER name TYPE text`, `ALTER TABLE notes ALTER body TYPE text`)
	res = caravan(t, 3*time.Minute, "resume", "--source-url", src, "--target-url", dst, run)
	if res.code != 0 {
		t.Fatalf("resume exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 4000))
	}
	if strings.Contains(res.stdout, "FAILED") {
		t.Errorf("the report of the repaired run still says FAILED:\n%s", res.stdout)
	}
	assertRunAgrees(t, dst, run, res.code, "succeeded")
	assertSameContent(t, src, dst, "people", "notes")
	if n := query[int64](t, dst, `SELECT count(*) FROM caravan.rejects WHERE run_id = $1`, run); n != 0 {
		t.Errorf("%d rejects of the failed attempt are still recorded", n)
	}
}

// TestResumeReloadsTableWithWrongContent: a trigger on a pre-existing target
// table changes rows as they are loaded, so validation fails; once the user
// drops it, resume loads that table again whole and the run succeeds.
func TestResumeReloadsTableWithWrongContent(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src,
		`CREATE TABLE items (id integer PRIMARY KEY, label text)`,
		`INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 5000) g`,
		`CREATE TABLE other (id integer PRIMARY KEY)`,
		`INSERT INTO other SELECT generate_series(1, 100)`)
	testenv.Exec(t, dst,
		`CREATE TABLE items (id integer PRIMARY KEY, label text)`,
		`CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.label := upper(NEW.label); RETURN NEW; END $$`,
		`CREATE TRIGGER shout BEFORE INSERT ON items FOR EACH ROW WHEN (NEW.id % 1000 = 0) EXECUTE FUNCTION shout()`)
	run := uuid.NewString()
	res := caravan(t, 3*time.Minute, "migrate", "--source-url", src, "--target-url", dst, "--run-id", run, "--mode", "truncate")
	if res.code == 0 {
		t.Fatalf("migrate succeeded although the target changed rows\n%s", res.stdout)
	}
	assertRunAgrees(t, dst, run, res.code, "failed")

	testenv.Exec(t, dst, `DROP TRIGGER shout ON items`)
	res = caravan(t, 3*time.Minute, "resume", "--source-url", src, "--target-url", dst, run)
	if res.code != 0 {
		t.Fatalf("resume exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 4000))
	}
	assertRunAgrees(t, dst, run, res.code, "succeeded")
	assertSameContent(t, src, dst, "items", "other")
	if n := query[int64](t, dst, `SELECT count(*) FROM caravan.audit WHERE run_id = $1 AND operation = 'resume_reload' AND table_name = 'public.items'`, run); n != 1 {
		t.Errorf("items was reloaded %d times, want once", n)
	}
}

// TestResumeAfterSetupRefused: a run refused at setup (a non-empty target
// table under --mode create) is planned again by resume once the user has
// emptied the table.
func TestResumeAfterSetupRefused(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, `CREATE TABLE t (id integer PRIMARY KEY, v text)`, `INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g`)
	testenv.Exec(t, dst, `CREATE TABLE t (id integer PRIMARY KEY, v text)`, `INSERT INTO t VALUES (1, 'in the way')`)
	run := uuid.NewString()
	res := caravan(t, 2*time.Minute, "migrate", "--source-url", src, "--target-url", dst, "--run-id", run)
	if res.code == 0 {
		t.Fatalf("migrate into a non-empty table succeeded under --mode create\n%s", res.stdout)
	}
	assertRunAgrees(t, dst, run, res.code, "failed")

	testenv.Exec(t, dst, `TRUNCATE t`)
	res = caravan(t, 2*time.Minute, "resume", "--source-url", src, "--target-url", dst, run)
	if res.code != 0 {
		t.Fatalf("resume exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 4000))
	}
	assertRunAgrees(t, dst, run, res.code, "succeeded")
	assertSameContent(t, src, dst, "t")

	// A second migrate may not reuse the run id: resume is the way on.
	res = caravan(t, time.Minute, "migrate", "--source-url", src, "--target-url", dst, "--run-id", run)
	if res.code == 0 {
		t.Fatal("a new run with an existing run id was accepted")
	}
	mustContain(t, res.stderr, "already exists", "caravan resume "+run)
}
