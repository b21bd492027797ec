package e2e

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/caravan-db/caravan/internal/pgsandbox"
	"github.com/caravan-db/caravan/internal/testenv"
)

// bigTable makes a table whose copy takes long enough to be interrupted.
func bigTable(name string, rows int) []string {
	return []string{
		fmt.Sprintf(`CREATE TABLE %s (id bigint PRIMARY KEY, grp integer NOT NULL, payload text, amount numeric(12,2), at timestamptz)`, name),
		fmt.Sprintf(`INSERT INTO %s SELECT g, g %% 97, repeat(md5(g::text), 1 + g %% 4), (g %% 100000) / 7.0, '2024-01-01'::timestamptz + g * interval '1 second'
			FROM generate_series(1, %d) g`, name, rows),
		`ANALYZE`,
	}
}

// countOr0 reads a count, treating "not there yet" (no caravan schema) as 0.
func countOr0(dbURL, sql string, args ...any) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		return 0
	}
	return n
}

func waitExit(t *testing.T, cmd *exec.Cmd, timeout time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
		return 0
	case <-time.After(timeout):
		t.Fatalf("process did not finish within %s", timeout)
		return -1
	}
}

// assertExactlyOnce checks the ledger side of exactly-once: every
// committed batch is one ledger row, and the ledger's rows add up to the
// source's.
func assertExactlyOnce(t *testing.T, src, dst, run string, tables ...string) {
	t.Helper()
	var want int64
	for _, tb := range tables {
		want += query[int64](t, src, "SELECT count(*) FROM "+tb)
	}
	if got := query[int64](t, dst, `SELECT coalesce(sum(rows), 0)::bigint FROM caravan.ledger WHERE run_id = $1`, run); got != want {
		t.Errorf("ledger holds %d rows, source %d", got, want)
	}
	if n := query[int64](t, dst, `SELECT count(*) FROM caravan.verdicts WHERE run_id = $1 AND NOT ok`, run); n != 0 {
		t.Errorf("%d failed verdicts", n)
	}
	if n := query[int64](t, dst, `SELECT count(*) FROM caravan.verdicts WHERE run_id = $1 AND level = 'digest' AND ok`, run); n != int64(len(tables)) {
		t.Errorf("%d ok digest verdicts, want %d", n, len(tables))
	}
}

// TestLoaderKilledMidRun SIGKILLs one of two loader processes while batches
// are being committed; the other finishes the run and every row is there
// exactly once.
func TestLoaderKilledMidRun(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, bigTable("big", 200_000)...)
	testenv.Exec(t, src, `CREATE TABLE small (id integer PRIMARY KEY, v text)`, `INSERT INTO small SELECT g, 'v' || g FROM generate_series(1, 5000) g`)
	natsURL, _ := testenv.NATS(t)
	run := uuid.NewString()

	start(t, "extractor", "extractor", "--source-url", src, "--nats-url", natsURL, "--extractors", "2")
	victim := start(t, "loader-a", "loader", "--target-url", dst, "--nats-url", natsURL, "--loaders", "2")
	start(t, "loader-b", "loader", "--target-url", dst, "--nats-url", natsURL, "--loaders", "2")
	start(t, "validator", "validator", "--target-url", dst, "--nats-url", natsURL)
	// The coordinator owns the consumers: its ack wait is the loaders'.
	coord := start(t, "coordinator", "coordinator", "--source-url", src, "--target-url", dst, "--nats-url", natsURL,
		"--run-id", run, "--chunk-rows", "20000", "--batch-rows", "500", "--batch-ack-wait", "3s")

	testenv.Eventually(t, 2*time.Minute, "loaders to commit batches", func() bool {
		return countOr0(dst, `SELECT count(*) FROM caravan.ledger WHERE run_id = $1`, run) >= 20
	})
	if err := victim.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	atKill := countOr0(dst, `SELECT count(*) FROM caravan.ledger WHERE run_id = $1`, run)
	if code := waitExit(t, coord, 4*time.Minute); code != 0 {
		t.Fatalf("coordinator exited %d", code)
	}
	total := query[int64](t, dst, `SELECT count(*) FROM caravan.ledger WHERE run_id = $1`, run)
	if total <= atKill {
		t.Fatalf("the run was over when the loader died (%d of %d batches committed): the test proves nothing", atKill, total)
	}
	assertSameContent(t, src, dst, "big", "small")
	assertExactlyOnce(t, src, dst, run, "big", "small")
}

// TestTaskRedeliveredWhileExtracting gives chunk tasks an ack wait far
// shorter than a chunk's read and no heartbeat, so JetStream hands the same
// chunk to a second extractor while the first still reads it. Both publish
// the same batches; the target still holds each row once.
func TestTaskRedeliveredWhileExtracting(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, bigTable("big", 150_000)...)
	run := uuid.NewString()
	// COPY text: a binary read of a chunk can end inside the ack wait, and
	// then nothing is redelivered.
	res := caravan(t, 5*time.Minute, "migrate", "--source-url", src, "--target-url", dst, "--run-id", run,
		"--chunk-rows", "75000", "--batch-rows", "1000", "--extractors", "3", "--loaders", "2",
		"--task-ack-wait", "100ms", "--task-heartbeat", "-1s", "--copy-format", "text")
	if res.code != 0 {
		t.Fatalf("migrate exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 4000))
	}
	chunks := query[int64](t, dst, `SELECT count(*) FROM caravan.chunks WHERE run_id = $1`, run)
	reads := query[int64](t, dst, `SELECT count(*) FROM caravan.audit WHERE run_id = $1 AND operation = 'chunk_extracted'`, run)
	if reads <= chunks {
		t.Fatalf("%d chunk reads for %d chunks: no task was redelivered, the test proves nothing", reads, chunks)
	}
	t.Logf("%d chunks were read %d times", chunks, reads)
	assertSameContent(t, src, dst, "big")
	assertExactlyOnce(t, src, dst, run, "big")
}

// TestRejectedBatchFailsOnlyItsTable loads into a pre-existing target table
// that cannot hold one source value: that table's verdict fails naming
// table, column and key, the other table loads, and the exit is non-zero.
func TestRejectedBatchFailsOnlyItsTable(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src,
		`CREATE TABLE people (id integer PRIMARY KEY, name text)`,
		`INSERT INTO people SELECT g, CASE WHEN g = 42 THEN 'far too long a name' ELSE 'p' || g END FROM generate_series(1, 100) g`,
		`CREATE TABLE things (id integer PRIMARY KEY, label text)`,
		`INSERT INTO things SELECT g, 't' || g FROM generate_series(1, 1000) g`)
	testenv.Exec(t, dst, `CREATE TABLE people (id integer PRIMARY KEY, name varchar(5))`)

	res := caravan(t, 3*time.Minute, "migrate", "--source-url", src, "--target-url", dst, "--mode", "truncate", "--batch-rows", "10")
	if res.code == 0 {
		t.Fatalf("migrate succeeded with a rejected row\n%s", res.stdout)
	}
	mustContain(t, res.stdout, "public.people", "FAILED", "column name", `id="42"`, "too long")
	assertSameContent(t, src, dst, "things")
	if n := query[int64](t, dst, `SELECT count(*) FROM caravan.rejects WHERE table_id = 'public.people' AND column_name = 'name' AND key = 'id="42"'`); n != 1 {
		t.Errorf("%d rejects rows for people id 42, want 1", n)
	}
	if !strings.Contains(query[string](t, dst, `SELECT row_text FROM caravan.rejects LIMIT 1`), "far too long a name") {
		t.Error("the rejected row is not recorded")
	}
	if n := query[int64](t, dst, `SELECT count(*) FROM people`); n != 90 {
		t.Errorf("people holds %d rows, want the 90 outside the rejected batch", n)
	}
}

// TestResumeAfterCoordinatorKilled kills a whole `caravan migrate` (broker
// included) mid-run and finishes the run with `caravan resume` from the
// target's state alone.
func TestResumeAfterCoordinatorKilled(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, bigTable("big", 150_000)...)
	testenv.Exec(t, src, `CREATE TABLE heap (n integer, v text)`, `INSERT INTO heap SELECT g % 10, 'h' || g FROM generate_series(1, 60000) g`)
	run := uuid.NewString()
	first := start(t, "migrate", "migrate", "--source-url", src, "--target-url", dst, "--run-id", run,
		"--chunk-rows", "10000", "--batch-rows", "1000", "--data-dir", t.TempDir())
	testenv.Eventually(t, 2*time.Minute, "batches to be committed", func() bool {
		return countOr0(dst, `SELECT count(*) FROM caravan.ledger WHERE run_id = $1`, run) >= 10
	})
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	if n := countOr0(dst, `SELECT count(*) FROM caravan.runs WHERE run_id = $1 AND status = 'succeeded'`, run); n != 0 {
		t.Fatal("the run finished before it was killed: the test proves nothing")
	}
	res := caravan(t, 5*time.Minute, "resume", "--source-url", src, "--target-url", dst, run)
	if res.code != 0 {
		t.Fatalf("resume exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 4000))
	}
	assertSameContent(t, src, dst, "big", "heap")
	assertExactlyOnce(t, src, dst, run, "big", "heap")
}

// TestCoordinatorKilledMidFinalize holds one table's key build (a lock it
// waits for) and sees a table loaded after it finalized meanwhile: the
// coordinator is not stuck behind one table. Then it kills the coordinator
// in the middle of that finalization. The resumed run finalizes the table
// again (its status still says loaded) and ends with every row there once.
func TestCoordinatorKilledMidFinalize(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, bigTable("big", 150_000)...)
	testenv.Exec(t, src, bigTable("small", 500)...)
	run := uuid.NewString()
	first := start(t, "migrate", "migrate", "--source-url", src, "--target-url", dst, "--run-id", run,
		"--chunk-rows", "10000", "--batch-rows", "1000", "--data-dir", t.TempDir())
	testenv.Eventually(t, 2*time.Minute, "the target tables created", func() bool {
		return countOr0(dst, `SELECT count(*) FROM pg_class WHERE oid IN (to_regclass('public.big'), to_regclass('public.small'))`) == 2
	})
	lock := func(stmt string) pgx.Tx {
		t.Helper()
		conn, err := pgx.Connect(ctx, dst)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
		return tx
	}
	// ROW EXCLUSIVE lets the loaders' COPY in and holds the key build
	// (CREATE INDEX takes SHARE) off; SHARE holds the COPY into small off
	// until big's key build waits.
	holdBig := lock(`LOCK TABLE public.big IN ROW EXCLUSIVE MODE`)
	holdSmall := lock(`LOCK TABLE public.small IN SHARE MODE`)
	if n := countOr0(dst, `SELECT count(*) FROM caravan.tables WHERE run_id = $1 AND table_id = 'public.big' AND status = 'finalized'`, run) +
		countOr0(dst, `SELECT count(*) FROM caravan.ledger WHERE run_id = $1 AND table_id = 'public.small'`, run); n != 0 {
		t.Fatal("big finalized or small loaded before the locks were taken: the test proves nothing")
	}
	testenv.Eventually(t, 3*time.Minute, "big's key build waiting", func() bool {
		return countOr0(dst, `SELECT count(*) FROM caravan.tables WHERE run_id = $1 AND table_id = 'public.big' AND status = 'loaded'`, run) == 1 &&
			countOr0(dst, `SELECT count(*) FROM pg_locks WHERE relation = 'public.big'::regclass AND NOT granted`) > 0
	})
	if err := holdSmall.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, time.Minute, "small finalized while big's key build waits", func() bool {
		return countOr0(dst, `SELECT count(*) FROM caravan.tables WHERE run_id = $1 AND table_id = 'public.small' AND status = 'finalized'`, run) == 1
	})
	if n := countOr0(dst, `SELECT count(*) FROM caravan.tables WHERE run_id = $1 AND table_id = 'public.big' AND status = 'loaded'`, run); n != 1 {
		t.Fatal("big's finalization went through the lock")
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	// The killed coordinator's key build may still finish on the server
	// once the lock goes: the resumed run takes it as done.
	if err := holdBig.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	res := caravan(t, 5*time.Minute, "resume", "--source-url", src, "--target-url", dst, run)
	if res.code != 0 {
		t.Fatalf("resume exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 4000))
	}
	assertSameContent(t, src, dst, "big", "small")
	assertExactlyOnce(t, src, dst, run, "big", "small")
	if n := query[int64](t, dst, `SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.big'::regclass AND contype = 'p'`); n != 1 {
		t.Errorf("big has %d primary keys, want 1", n)
	}
}

// TestTargetCrashMidRun crashes the target PostgreSQL (immediate shutdown,
// then crash recovery) while batches are being committed. Loaders, the
// coordinator and the validator wait for it to come back, and the run ends
// with every row there exactly once.
func TestTargetCrashMidRun(t *testing.T) {
	ctx := context.Background()
	cluster, err := pgsandbox.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Stop)
	dst := cluster.URL("postgres")
	src := testenv.Database(t, "src")
	testenv.Exec(t, src, bigTable("big", 200_000)...)
	run := uuid.NewString()
	mig := start(t, "migrate", "migrate", "--source-url", src, "--target-url", dst, "--run-id", run,
		"--chunk-rows", "10000", "--batch-rows", "1000")
	testenv.Eventually(t, 2*time.Minute, "batches to be committed", func() bool {
		return countOr0(dst, `SELECT count(*) FROM caravan.ledger WHERE run_id = $1`, run) >= 20
	})
	if err := cluster.Crash(ctx); err != nil {
		t.Fatal(err)
	}
	atCrash := countOr0(dst, `SELECT count(*) FROM caravan.ledger WHERE run_id = $1`, run)
	if code := waitExit(t, mig, 90*time.Second); code != 0 {
		t.Fatalf("migrate exited %d after the target crashed", code)
	}
	if total := query[int64](t, dst, `SELECT count(*) FROM caravan.ledger WHERE run_id = $1`, run); total <= atCrash {
		t.Fatalf("the run was over when the target crashed (%d of %d batches): the test proves nothing", atCrash, total)
	}
	assertSameContent(t, src, dst, "big")
	assertExactlyOnce(t, src, dst, run, "big")
}

// TestBrokerKilledMidRun SIGKILLs the NATS server (a `caravan broker`
// process storing JetStream on disk) mid-run and starts it again on the same
// address and directory. Every role reconnects and the run finishes with
// every row exactly once.
func TestBrokerKilledMidRun(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, bigTable("big", 200_000)...)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	brokerArgs := []string{"broker", "--listen", addr, "--data-dir", dir}
	first := start(t, "broker-1", brokerArgs...)
	natsURL := "nats://" + addr
	testenv.Eventually(t, 30*time.Second, "the broker to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	run := uuid.NewString()
	start(t, "extractor", "extractor", "--source-url", src, "--nats-url", natsURL)
	start(t, "loader", "loader", "--target-url", dst, "--nats-url", natsURL)
	start(t, "validator", "validator", "--target-url", dst, "--nats-url", natsURL)
	coord := start(t, "coordinator", "coordinator", "--source-url", src, "--target-url", dst, "--nats-url", natsURL,
		"--run-id", run, "--chunk-rows", "10000", "--batch-rows", "1000", "--batch-ack-wait", "5s")

	testenv.Eventually(t, 2*time.Minute, "batches to be committed", func() bool {
		return countOr0(dst, `SELECT count(*) FROM caravan.ledger WHERE run_id = $1`, run) >= 20
	})
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	atKill := countOr0(dst, `SELECT count(*) FROM caravan.ledger WHERE run_id = $1`, run)
	start(t, "broker-2", brokerArgs...)

	if code := waitExit(t, coord, 3*time.Minute); code != 0 {
		t.Fatalf("coordinator exited %d after the broker was killed", code)
	}
	if total := query[int64](t, dst, `SELECT count(*) FROM caravan.ledger WHERE run_id = $1`, run); total <= atKill {
		t.Fatalf("the run was over when the broker died (%d of %d batches): the test proves nothing", atKill, total)
	}
	assertSameContent(t, src, dst, "big")
	assertExactlyOnce(t, src, dst, run, "big")
}
