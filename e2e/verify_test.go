package e2e

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/caravan-db/caravan/internal/testenv"
)

// pgDumpInto loads the target the way a user without caravan would: pg_dump
// piped into psql.
func pgDumpInto(t *testing.T, src, dst string) {
	t.Helper()
	cmd := exec.Command("sh", "-c", `pg_dump --no-owner --no-privileges -d "$SRC" | psql -q -v ON_ERROR_STOP=1 -d "$DST"`)
	cmd.Env = append(cmd.Environ(), "SRC="+src, "DST="+dst)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pg_dump | psql: %v\n%s", err, out)
	}
}

// verifyDiffs collects verify's difference lines per table, in the order
// printed.
func verifyDiffs(stdout string) map[string][]string {
	out := map[string][]string{}
	table := ""
	for _, line := range strings.Split(stdout, "\n") {
		switch {
		case strings.HasPrefix(line, "  "):
			out[table] = append(out[table], strings.Join(strings.Fields(line), " "))
		case strings.Contains(line, ": "):
			table, _, _ = strings.Cut(line, ": ")
		}
	}
	return out
}

// TestVerifyTargetLoadedByPgDump: verify compares a target caravan never
// saw, finds it identical, and once rows are changed, deleted and inserted
// there names exactly those keys (and the changed columns), nothing else.
func TestVerifyTargetLoadedByPgDump(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src,
		`CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL, price numeric(10,2), note text)`,
		`INSERT INTO items SELECT g, 'item ' || g, g * 1.25, CASE WHEN g % 3 = 0 THEN NULL ELSE 'n' || g END FROM generate_series(1, 5000) g`,
		`CREATE TABLE pairs (a integer, b text, v integer, PRIMARY KEY (a, b))`,
		`INSERT INTO pairs SELECT g % 10, 'b' || g, g FROM generate_series(1, 300) g`,
		// No key, and one row twice already: a multiset, not a set.
		`CREATE TABLE notes (n integer, body text)`,
		`INSERT INTO notes SELECT g % 50, 'note ' || g FROM generate_series(1, 400) g`,
		`INSERT INTO notes VALUES (7, 'note 7')`,
		`CREATE TABLE gone (id integer PRIMARY KEY)`,
		`INSERT INTO gone SELECT generate_series(1, 10)`,
		`CREATE TABLE shaped (id integer PRIMARY KEY, a text, b text)`,
		`INSERT INTO shaped SELECT g, 'a' || g, 'b' || g FROM generate_series(1, 20) g`,
		// Widened on the target: the same values, not the same binary
		// form, so compared in text only.
		`CREATE TABLE widened (id integer PRIMARY KEY, v integer)`,
		`INSERT INTO widened SELECT g, g * 3 FROM generate_series(1, 50) g`)
	pgDumpInto(t, src, dst)
	testenv.Exec(t, dst, `ALTER TABLE widened ALTER COLUMN v TYPE bigint`)

	run := uuid.NewString()
	res := caravan(t, 3*time.Minute, "verify", "--source-url", src, "--target-url", dst, "--chunk-rows", "1000", "--run-id", run, "--workers", "2")
	if res.code != 0 {
		t.Fatalf("verify of identical databases exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 4000))
	}
	mustContain(t, res.stdout, "identical: 6 tables", "public.items: identical, 5000 rows (5 of 5 chunks checked, 0 differed)",
		"public.widened: identical, 50 rows")
	// Tables of the same built-in types on both sides are compared as
	// binary COPY first; nothing differed, so nothing was read as text.
	if strings.Contains(res.stderr, "differs read as binary") {
		t.Errorf("identical tables differed read as binary:\n%s", tail(res.stderr, 4000))
	}
	assertRunAgrees(t, dst, run, res.code, "succeeded")
	if st := caravan(t, time.Minute, "status", "--target-url", dst, run); st.code != 0 {
		t.Errorf("status of the verify run exited %d\n%s", st.code, st.stdout)
	}

	// A sample checks some chunks only, and says so.
	res = caravan(t, 3*time.Minute, "verify", "--source-url", src, "--target-url", dst, "--chunk-rows", "1000", "--sample", "0.5")
	if res.code != 0 {
		t.Fatalf("sampled verify exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 4000))
	}
	mustContain(t, res.stdout, "all checked chunks")

	testenv.Exec(t, dst,
		// changed, in three different chunks
		`UPDATE items SET name = 'renamed' WHERE id IN (17, 2500)`,
		`UPDATE items SET price = price + 1, note = NULL WHERE id = 4999`,
		// missing: first row, mid table, a chunk's first key
		`DELETE FROM items WHERE id IN (1, 1234, 3001)`,
		// extra: below the first key and beyond the last
		`INSERT INTO items VALUES (-5, 'new', 1, NULL), (5001, 'new', 2, 'x')`,
		`UPDATE pairs SET v = -1 WHERE a = 3 AND b = 'b13'`,
		`DELETE FROM pairs WHERE a = 4 AND b = 'b4'`,
		// keyless: one row duplicated, one changed
		`INSERT INTO notes VALUES (12, 'note 12')`,
		`UPDATE notes SET body = 'edited' WHERE n = 20 AND body = 'note 20'`,
		// a table not there at all is a difference, not an error
		`DROP TABLE gone`,
		// so are other columns: named, the rows not compared
		`ALTER TABLE shaped DROP COLUMN b, ADD COLUMN c integer`)

	run = uuid.NewString()
	res = caravan(t, 3*time.Minute, "verify", "--source-url", src, "--target-url", dst, "--chunk-rows", "1000", "--run-id", run)
	if res.code != 2 {
		t.Fatalf("verify of a changed target exited %d, want 2 (differences)\n%s\n%s", res.code, res.stdout, tail(res.stderr, 4000))
	}
	assertVerifyDiffs(t, res.stdout, map[string][]string{
		"public.items": {
			"missing id=1", "missing id=1234", "missing id=3001",
			"extra id=-5", "extra id=5001",
			"changed id=17: name", "changed id=2500: name", "changed id=4999: price, note",
		},
		"public.pairs": {"missing a=4, b=b4", "changed a=3, b=b13: v"},
		"public.notes": {"missing x1 20 note 20", "extra x1 12 note 12", "extra x1 20 edited"},
	})
	// The tables that differ were compared as binary first, then in text.
	mustContain(t, res.stderr, "verify: differs read as binary, comparing it as text")
	mustContain(t, res.stdout, "DIFFERENT: 5 of 6 tables differ", "public.gone: not on the target (the source has 10 rows)",
		"public.shaped: other columns on the target: missing b; not on the source c (rows not compared; the source has 20 rows)")
	assertRunAgrees(t, dst, run, res.code, "failed")
	// --copy-format text: the same verdict, nothing read as binary.
	txt := caravan(t, 3*time.Minute, "verify", "--source-url", src, "--target-url", dst, "--chunk-rows", "1000", "--copy-format", "text")
	if txt.code != 2 || strings.Contains(txt.stderr, "read as binary") || !strings.Contains(txt.stdout, "DIFFERENT: 5 of 6 tables differ") {
		t.Errorf("verify --copy-format text of the changed target exited %d\n%s\n%s", txt.code, txt.stdout, tail(txt.stderr, 2000))
	}
	st := caravan(t, time.Minute, "status", "--target-url", dst, run)
	if st.code != 2 {
		t.Errorf("status of the failed verify run exited %d, want 2\n%s", st.code, st.stdout)
	}
	mustContain(t, st.stdout, "digest: 3 missing, 2 extra, 3 changed", "missing id=1234")

	// A verification has no ledger: resuming it as a migration would load
	// or empty tables it never touched.
	before := contentHash(t, dst, "items")
	rs := caravan(t, time.Minute, "resume", "--source-url", src, "--target-url", dst, run)
	if rs.code == 0 || !strings.Contains(rs.stderr, "is a verify run, not a migration") {
		t.Errorf("resume of a verify run exited %d\n%s", rs.code, tail(rs.stderr, 2000))
	}
	if after := contentHash(t, dst, "items"); after != before {
		t.Error("resume of a verify run changed the target")
	}

	// An interrupted verification is run again, not resumed: status says so.
	testenv.Exec(t, dst, `UPDATE caravan.runs SET status = 'interrupted' WHERE run_id = '`+run+`'`)
	st = caravan(t, time.Minute, "status", "--target-url", dst, run)
	if st.code != 4 || !strings.Contains(st.stderr, "caravan verify --source-url") || strings.Contains(st.stderr, "caravan resume") {
		t.Errorf("status of an interrupted verification exited %d, want 4 and the verify command:\n%s", st.code, st.stderr)
	}
}

// TestVerifyReadOnlyTarget: a target the user may only read is verified
// all the same; the verification is just not recorded, and says so.
func TestVerifyReadOnlyTarget(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, `CREATE TABLE t (id integer PRIMARY KEY, v text)`, `INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 500) g`)
	pgDumpInto(t, src, dst)
	role := "caravan_ro_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	testenv.Exec(t, dst,
		`CREATE ROLE `+role+` LOGIN`,
		`REVOKE CREATE ON SCHEMA public FROM PUBLIC`,
		`REVOKE CREATE ON DATABASE `+query[string](t, dst, `SELECT current_database()`)+` FROM PUBLIC`,
		`GRANT SELECT ON t TO `+role)
	t.Cleanup(func() { testenv.Exec(t, dst, `DROP OWNED BY `+role, `DROP ROLE `+role) })
	u, err := url.Parse(dst)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	res := caravan(t, 2*time.Minute, "verify", "--source-url", src, "--target-url", u.String())
	if res.code != 0 {
		t.Fatalf("verify of an identical read-only target exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 3000))
	}
	mustContain(t, res.stdout, "identical: 1 tables")
	mustContain(t, res.stderr, "not recorded")
	if n := query[int64](t, dst, `SELECT count(*) FROM pg_namespace WHERE nspname = 'caravan'`); n != 0 {
		t.Error("a read-only target got a caravan schema")
	}
}

// TestVerifyDistributed: `caravan verify --nats-url` hands its chunk checks
// to `caravan verifier` processes on a stock nats-server; one of them is
// SIGKILLed while it holds checks, which go to the other. The differences
// printed and the exit code are those of the in-process verification of
// the same databases, and every check is recorded exactly once.
func TestVerifyDistributed(t *testing.T) {
	srv := testenv.StartNATSServer(t)
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src,
		`CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL, price numeric(10,2))`,
		`INSERT INTO items SELECT g, 'item ' || g, g * 1.25 FROM generate_series(1, 20000) g`,
		`CREATE TABLE notes (n integer, body text)`,
		`INSERT INTO notes SELECT g % 50, 'note ' || g FROM generate_series(1, 400) g`,
		`CREATE TABLE gone (id integer PRIMARY KEY)`,
		`INSERT INTO gone SELECT generate_series(1, 10)`)
	pgDumpInto(t, src, dst)
	testenv.Exec(t, dst,
		`UPDATE items SET name = 'renamed' WHERE id IN (17, 9000, 19999)`,
		`DELETE FROM items WHERE id IN (1, 4321, 15000)`,
		`INSERT INTO items VALUES (-5, 'new', 1), (20001, 'new', 2)`,
		`INSERT INTO notes VALUES (12, 'note 12')`,
		`DROP TABLE gone`)
	args := []string{"--source-url", src, "--target-url", dst, "--chunk-rows", "100"}

	local := caravan(t, 3*time.Minute, append([]string{"verify"}, args...)...)
	if local.code != 2 {
		t.Fatalf("in-process verify exited %d, want 2\n%s\n%s", local.code, local.stdout, tail(local.stderr, 4000))
	}

	// Started before any verifier, the verification says that nobody
	// takes its checks rather than wait in silence.
	run := uuid.NewString()
	bg := startVerify(t, append([]string{"--nats-url", srv.URL, "--run-id", run, "--check-ack-wait", "3s"}, args...))
	testenv.Eventually(t, time.Minute, "verify to say no verifier takes its checks", func() bool {
		return strings.Contains(bg.logText(), "no verifier is taking the checks")
	})
	victim := startLogged(t, "verifier-1", "verifier", "--source-url", src, "--target-url", dst, "--nats-url", srv.URL, "--verifiers", "2")
	survivor := startLogged(t, "verifier-2", "verifier", "--source-url", src, "--target-url", dst, "--nats-url", srv.URL, "--verifiers", "2",
		"--metrics-addr", "127.0.0.1:0")
	var checkedBeforeKill int64
	testenv.Eventually(t, time.Minute, "some checks recorded", func() bool {
		checkedBeforeKill = query[int64](t, dst, `SELECT count(*) FROM caravan.checks WHERE run_id = $1`, run)
		return checkedBeforeKill >= 10
	})
	if checkedBeforeKill >= 201 {
		t.Fatal("the verification ended before a verifier could be killed")
	}
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	dist := bg.wait(t, 3*time.Minute)
	if dist.code != local.code {
		t.Fatalf("distributed verify exited %d, in-process %d\n%s\n%s", dist.code, local.code, dist.stdout, tail(dist.stderr, 4000))
	}
	if got, want := verifyDiffs(dist.stdout), verifyDiffs(local.stdout); !reflect.DeepEqual(got, want) {
		t.Errorf("distributed verify printed\n%v\nin-process\n%v", got, want)
	}
	if got, want := summaries(dist.stdout), summaries(local.stdout); got != want {
		t.Errorf("distributed verify summed up\n%s\nin-process\n%s", got, want)
	}
	mustContain(t, dist.stdout, "DIFFERENT: 3 of 3 tables differ", "public.items: 3 missing, 2 extra, 3 changed",
		"public.gone: not on the target")
	// 200 chunks of items and notes compared whole: each recorded once, the
	// killed verifier's unfinished ones by the survivor.
	if n := query[int64](t, dst, `SELECT count(*) FROM caravan.checks WHERE run_id = $1`, run); n != 201 {
		t.Errorf("%d checks recorded, want 201", n)
	}
	victimID := fmt.Sprintf(":%d", victim.cmd.Process.Pid)
	if n := query[int64](t, dst, `SELECT count(*) FROM caravan.checks WHERE run_id = $1 AND worker NOT LIKE '%' || $2`, run, victimID); n == 0 {
		t.Error("the surviving verifier recorded no check")
	}
	// The verifier's checks are on its /metrics, as a validator's are.
	addr := regexp.MustCompile(`"metrics_addr":"([^"]+)"`).FindStringSubmatch(survivor.waitForLog(t, regexp.MustCompile(`"metrics_addr":"[^"]+"`)))[1]
	if body, ok := tryScrape("http://" + addr + "/metrics"); !ok || !regexp.MustCompile(`caravan_checks_total\{[^}]*level="verify"`).MatchString(body) {
		t.Errorf("the surviving verifier's /metrics has no verify checks (scraped: %v)", ok)
	}
	t.Logf("verifier killed after %d checks; the victim recorded %d of 201", checkedBeforeKill,
		query[int64](t, dst, `SELECT count(*) FROM caravan.checks WHERE run_id = $1 AND worker LIKE '%' || $2`, run, victimID))
	assertRunAgrees(t, dst, run, dist.code, "failed")
}

// summaries are verify's lines about each table.
func summaries(stdout string) string {
	var out []string
	for _, line := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(line, "public.") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// bgVerify is a verify run in the background, its stdout kept apart from
// its log.
type bgVerify struct {
	cmd *exec.Cmd
	out bytes.Buffer
	log string
}

func startVerify(t *testing.T, args []string) *bgVerify {
	t.Helper()
	v := &bgVerify{log: filepath.Join(t.TempDir(), "verify.log")}
	log, err := os.Create(v.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	v.cmd = exec.Command(binary, append([]string{"verify"}, args...)...)
	v.cmd.Stdout, v.cmd.Stderr = &v.out, log
	v.cmd.Env = append(os.Environ(), "CARAVAN_LOG_FORMAT=json")
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.cmd.Process.Kill() })
	return v
}

func (v *bgVerify) logText() string {
	data, _ := os.ReadFile(v.log)
	return string(data)
}

// wait waits for the run to end and returns its result.
func (v *bgVerify) wait(t *testing.T, timeout time.Duration) result {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- v.cmd.Wait() }()
	var res result
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			res.code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
	case <-time.After(timeout):
		t.Fatalf("verify did not end within %s\n%s", timeout, tail(v.logText(), 4000))
	}
	res.stdout, res.stderr = v.out.String(), v.logText()
	return res
}

// assertVerifyDiffs checks that verify's output names exactly the
// differences want lists per table, in any order, and no other table.
func assertVerifyDiffs(t *testing.T, stdout string, want map[string][]string) {
	t.Helper()
	got := verifyDiffs(stdout)
	for table, lines := range want {
		have := append([]string(nil), got[table]...)
		sort.Strings(have)
		sort.Strings(lines)
		if strings.Join(have, "\n") != strings.Join(lines, "\n") {
			t.Errorf("%s: verify named\n  %s\nwant\n  %s", table, strings.Join(have, "\n  "), strings.Join(lines, "\n  "))
		}
	}
	if len(got) != len(want) {
		t.Errorf("differences in %d tables, want %d:\n%s", len(got), len(want), stdout)
	}
}
