package e2e

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/caravan-db/caravan/broker"
	"github.com/caravan-db/caravan/internal/testenv"
	"github.com/caravan-db/caravan/proto"
)

// The fault tests of this file run caravan as it is deployed: a broker
// process keeping JetStream in files, and every role its own OS process.
// One process is SIGKILLed while it has work in flight; the run must still
// end with exit 0 and the target holding the source's rows exactly once.

// startBroker starts `caravan broker` listening on host (any free port)
// with its streams on disk, and returns its URL.
func startBroker(t *testing.T, host string) string {
	t.Helper()
	p := startLogged(t, "broker", "broker", "--listen", host+":0", "--data-dir", t.TempDir())
	return p.waitForLog(t, regexp.MustCompile(`nats://`+regexp.QuoteMeta(host)+`:\d+`))
}

// batchesInBroker returns how many row batches wait in CARAVAN_BATCHES, not
// yet acknowledged by a loader.
func batchesInBroker(t *testing.T, natsURL string) uint64 {
	t.Helper()
	nc, js, err := broker.Connect(natsURL, "caravan-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, proto.StreamBatches)
	if err != nil {
		t.Fatalf("stream %s: %v", proto.StreamBatches, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s: %v", proto.StreamBatches, err)
	}
	return info.State.Msgs
}

// activeQueries counts the statements other sessions are running in a
// database whose text starts with prefix or, with contains, holds it.
func activeQueries(dbURL, pattern string) int64 {
	return countOr0(dbURL, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active' AND query LIKE $1`, pattern)
}

// exited waits for a background process to end and returns its exit code.
func (p *proc) exited(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("%s did not finish within %s", p.name, timeout)
		return -1
	}
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL %s: %v", p.name, err)
	}
	<-p.done
}

// freeze stops the process where it is (SIGSTOP) until thaw: a stand-in for
// a worker that is slow or stuck, holding whatever it holds.
func (p *proc) freeze(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %s: %v", p.name, err)
	}
}

func (p *proc) thaw(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT %s: %v", p.name, err)
	}
}

// runExit waits for a coordinator process to end and returns its exit
// code; when it does not end in time the test fails with what the run
// was waiting for, as `caravan status` tells it.
func runExit(t *testing.T, coord *exec.Cmd, timeout time.Duration, dst, run string) int {
	t.Helper()
	done := make(chan struct{})
	go func() { _ = coord.Wait(); close(done) }()
	select {
	case <-done:
		return coord.ProcessState.ExitCode()
	case <-time.After(timeout):
		st := caravan(t, 30*time.Second, "status", "--target-url", dst, run)
		t.Fatalf("the run did not end within %s; caravan status:\n%s%s", timeout, st.stdout, tail(st.stderr, 2000))
		return -1
	}
}

func ledgerRows(dst, run string) int64 {
	return countOr0(dst, `SELECT count(*) FROM caravan.ledger WHERE run_id = $1`, run)
}

// TestExtractorKilledMidRun SIGKILLs the extractor process while it streams
// a chunk out of the source, and starts another, as an orchestrator would.
// The chunk's task comes back to the new extractor, which reads the chunk
// again from the start: JetStream's duplicate window and the ledger drop
// what the first one had published already.
func TestExtractorKilledMidRun(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, bigTable("big", 200_000)...)
	natsURL := startBroker(t, "127.0.0.1")
	run := uuid.NewString()

	extractorArgs := []string{"extractor", "--source-url", src, "--nats-url", natsURL}
	victim := startLogged(t, "extractor-1", extractorArgs...)
	loader := startLogged(t, "loader", "loader", "--target-url", dst, "--nats-url", natsURL)
	startLogged(t, "validator", "validator", "--target-url", dst, "--nats-url", natsURL)
	coord := start(t, "coordinator", "coordinator", "--source-url", src, "--target-url", dst, "--nats-url", natsURL,
		"--run-id", run, "--chunk-rows", "10000", "--batch-rows", "500", "--task-ack-wait", "3s",
		"--broker-batches-mib", "1", "--batch-bytes", "262144")

	// Once batches are committed the loader is frozen: nothing drains the
	// 1 MiB batches stream, and a chunk (20 batches of about 75 kB) does
	// not fit in it, so the extractor ends up refused in the middle of its
	// chunks, some of their batches published, and is killed there.
	// (Waiting for its COPY to show on the source while the run went on
	// raced the run: a chunk's rows fit in the socket's buffers, and on a
	// fast machine the run ended first.)
	testenv.Eventually(t, 2*time.Minute, "batches to be committed", func() bool {
		return ledgerRows(dst, run) >= 10
	})
	loader.freeze(t)
	nc, js, err := broker.Connect(natsURL, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	testenv.Eventually(t, time.Minute, "the extractor to fill the batches stream", func() bool {
		stream, err := js.Stream(t.Context(), proto.StreamBatches)
		if err != nil {
			return false
		}
		info := stream.CachedInfo()
		return info.Config.MaxBytes-int64(info.State.Bytes) < 256<<10
	})
	victim.kill(t)
	unread := countOr0(dst, `SELECT count(*) FROM caravan.chunks WHERE run_id = $1 AND batches IS NULL`, run)
	if unread == 0 {
		t.Fatal("every chunk was read when the extractor died: the test proves nothing")
	}
	loader.thaw(t)
	startLogged(t, "extractor-2", extractorArgs...)

	if code := runExit(t, coord, 90*time.Second, dst, run); code != 0 {
		t.Fatalf("coordinator exited %d after an extractor was killed", code)
	}
	t.Logf("%d chunks were unread when the extractor died", unread)
	assertSameContent(t, src, dst, "big")
	assertExactlyOnce(t, src, dst, run, "public.big")
}

// TestValidatorKilledMidRun SIGKILLs the validator process while it
// computes a table's digests, and starts another. The table's
// table_finalized event must come back to the new validator soon enough for
// the run to end with its verdict.
func TestValidatorKilledMidRun(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, bigTable("big", 200_000)...)
	natsURL := startBroker(t, "127.0.0.1")
	run := uuid.NewString()

	startLogged(t, "extractor", "extractor", "--source-url", src, "--nats-url", natsURL)
	startLogged(t, "loader", "loader", "--target-url", dst, "--nats-url", natsURL)
	validatorArgs := []string{"validator", "--target-url", dst, "--nats-url", natsURL}
	victim := startLogged(t, "validator-1", validatorArgs...)
	coord := start(t, "coordinator", "coordinator", "--source-url", src, "--target-url", dst, "--nats-url", natsURL,
		"--run-id", run, "--chunk-rows", "20000", "--batch-rows", "2000")

	// Only the validator reads rows out of the target (COPY (SELECT ...)
	// TO STDOUT, to digest them); loaders copy into it.
	testenv.Eventually(t, 2*time.Minute, "the validator to digest the table", func() bool {
		return activeQueries(dst, "COPY (SELECT%") > 0
	})
	victim.kill(t)
	if n := countOr0(dst, `SELECT count(*) FROM caravan.verdicts WHERE run_id = $1 AND level = 'digest'`, run); n != 0 {
		t.Fatal("the digest verdict was in when the validator died: the test proves nothing")
	}
	startLogged(t, "validator-2", validatorArgs...)

	if code := runExit(t, coord, 90*time.Second, dst, run); code != 0 {
		t.Fatalf("coordinator exited %d after the validator was killed", code)
	}
	assertSameContent(t, src, dst, "big")
	assertExactlyOnce(t, src, dst, run, "public.big")
}

// TestCoordinatorKilledKeylessMidLoad SIGKILLs the coordinator process
// while a keyless table is partly loaded and batches of its chunks still
// wait in the broker, then resumes the run through the same broker while
// the old extractor, loader and validator go on working. A keyless table
// cannot re-select a chunk's rows on the target, so resume starts the
// table over; a batch of the old attempt committed during that restart
// must not survive it.
func TestCoordinatorKilledKeylessMidLoad(t *testing.T) {
	for _, tc := range []struct {
		name   string
		resume func(src, dst, natsURL, run string) []string
	}{
		// docs/DEPLOY.md: a coordinator restarted on its own, the workers
		// being deployed apart.
		{"coordinator --resume", func(src, dst, natsURL, run string) []string {
			return []string{"coordinator", "--source-url", src, "--target-url", dst, "--nats-url", natsURL, "--resume", run}
		}},
		// `caravan resume` with the run's broker: its own workers join the old ones.
		{"resume", func(src, dst, natsURL, run string) []string {
			return []string{"resume", "--source-url", src, "--target-url", dst, "--nats-url", natsURL, run}
		}},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			coordinatorKilledKeyless(t, tc.resume)
		})
	}
}

func coordinatorKilledKeyless(t *testing.T, resumeArgs func(src, dst, natsURL, run string) []string) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, `CREATE TABLE heap (n integer, v text)`,
		`INSERT INTO heap SELECT g % 10, 'h' || g FROM generate_series(1, 300000) g`, `ANALYZE heap`)
	natsURL := startBroker(t, "127.0.0.1")
	run := uuid.NewString()

	// One loader committing one batch at a time falls behind two
	// extractors: batches pile up in the broker.
	workers := []*proc{
		startLogged(t, "extractor", "extractor", "--source-url", src, "--nats-url", natsURL),
		startLogged(t, "loader", "loader", "--target-url", dst, "--nats-url", natsURL, "--loaders", "1"),
		startLogged(t, "validator", "validator", "--target-url", dst, "--nats-url", natsURL),
	}
	coord := startLogged(t, "coordinator", "coordinator", "--source-url", src, "--target-url", dst, "--nats-url", natsURL,
		"--run-id", run, "--chunk-rows", "20000", "--batch-rows", "200")

	testenv.Eventually(t, 2*time.Minute, "batches committed and more waiting in the broker", func() bool {
		return ledgerRows(dst, run) >= 50 && batchesInBroker(t, natsURL) > 0
	})
	coord.kill(t)
	waiting := batchesInBroker(t, natsURL)
	loaded := countOr0(dst, `SELECT coalesce(sum(rows), 0)::bigint FROM caravan.ledger WHERE run_id = $1`, run)
	if waiting == 0 || loaded >= 300000 {
		t.Fatalf("%d rows loaded and %d batches in the broker when the coordinator died: the test proves nothing", loaded, waiting)
	}
	t.Logf("coordinator killed with %d rows loaded and %d batches of the old attempt in the broker", loaded, waiting)

	res := caravan(t, 90*time.Second, resumeArgs(src, dst, natsURL, run)...)
	status := query[string](t, dst, `SELECT status FROM caravan.runs WHERE run_id = $1`, run)
	if (res.code == 0) != (status == "succeeded") {
		t.Errorf("resume exited %d but the run's status is %q", res.code, status)
	}
	if res.code != 0 {
		t.Errorf("resume exited %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, tail(res.stderr, 4000))
	}
	for _, w := range workers {
		if !w.alive() {
			t.Errorf("%s died during the resumed run", w.name)
		}
	}
	assertSameContent(t, src, dst, "heap")
	assertExactlyOnce(t, src, dst, run, "public.heap")
}

// TestLoaderOfAnotherTargetLeavesBatches runs two loaders on the run's
// broker: one writing into the run's target, one configured with another
// database (which holds caravan's state of an earlier run). The second can
// do nothing with the run's batches; it must leave them to the loader that
// can and say so (a WARN, and a notice the coordinator records), instead of
// dropping them as stale and leaving the run waiting forever.
func TestLoaderOfAnotherTargetLeavesBatches(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	other := testenv.Database(t, "other")
	testenv.Exec(t, src, bigTable("big", 50_000)...)
	testenv.Exec(t, src, `CREATE TABLE small (id integer PRIMARY KEY, v text)`, `INSERT INTO small SELECT g, 'v' || g FROM generate_series(1, 100) g`)
	// An earlier run into the other database gives it caravan's state
	// tables, as a loader's own target would have.
	if res := caravan(t, time.Minute, "migrate", "--source-url", src, "--target-url", other, "--include", "public.small"); res.code != 0 {
		t.Fatalf("earlier run into the other database exited %d\n%s", res.code, tail(res.stderr, 3000))
	}
	natsURL := startBroker(t, "127.0.0.1")
	run := uuid.NewString()

	wrong := startLogged(t, "loader-other-target", "loader", "--target-url", other, "--nats-url", natsURL)
	startLogged(t, "loader", "loader", "--target-url", dst, "--nats-url", natsURL)
	startLogged(t, "extractor", "extractor", "--source-url", src, "--nats-url", natsURL)
	startLogged(t, "validator", "validator", "--target-url", dst, "--nats-url", natsURL)
	coord := start(t, "coordinator", "coordinator", "--source-url", src, "--target-url", dst, "--nats-url", natsURL,
		"--run-id", run, "--include", "public.big", "--chunk-rows", "10000", "--batch-rows", "500")

	if code := runExit(t, coord, 90*time.Second, dst, run); code != 0 {
		t.Fatalf("coordinator exited %d", code)
	}
	assertSameContent(t, src, dst, "big")
	assertExactlyOnce(t, src, dst, run, "public.big")
	if n := countOr0(other, `SELECT count(*) FROM caravan.ledger WHERE run_id = $1`, run); n != 0 {
		t.Errorf("the other database's ledger holds %d batches of the run", n)
	}
	data, err := os.ReadFile(wrong.log)
	if err != nil {
		t.Fatal(err)
	}
	warned := false
	for _, line := range strings.Split(string(data), "\n") {
		warned = warned || strings.Contains(line, `"level":"WARN"`) && strings.Contains(line, run)
	}
	if !warned {
		t.Errorf("the loader of another target logged no WARN naming run %s:\n%s", run, tail(string(data), 3000))
	}
	// The coordinator heard of it too, and recorded it with the run.
	if n := countOr0(dst, `SELECT count(*) FROM caravan.audit WHERE run_id = $1 AND operation = 'worker_cannot_serve'
		AND metadata->>'role' = 'loader'`, run); n == 0 {
		t.Error("the run's audit does not record that a loader could not serve it")
	}
}
