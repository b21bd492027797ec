package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/caravan-db/caravan/internal/testenv"
)

// TestInterruptedAndAbandonedRuns: Ctrl-C marks the run interrupted, exits
// 4 and prints the command that goes on, which then does; a coordinator
// that dies without a word leaves a run that status calls abandoned once
// its heartbeat is old. status exits with the run's outcome each time.
func TestInterruptedAndAbandonedRuns(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, bigTable("big", 150_000)...)
	run := uuid.NewString()
	args := []string{"--source-url", src, "--target-url", dst, "--chunk-rows", "10000", "--batch-rows", "1000"}

	migrate := exec.Command(binary, append([]string{"migrate", "--run-id", run}, args...)...)
	var stdout, stderr bytes.Buffer
	migrate.Stdout, migrate.Stderr = &stdout, &stderr
	migrate.Env = append(os.Environ(), "CARAVAN_LOG_FORMAT=json")
	if err := migrate.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Minute, "batches to be committed", func() bool {
		return countOr0(dst, `SELECT count(*) FROM caravan.ledger WHERE run_id = $1`, run) >= 5
	})
	if err := migrate.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, migrate, time.Minute); code != 4 {
		t.Fatalf("interrupted migrate exited %d, want 4\n%s", code, tail(stderr.String(), 3000))
	}
	if s := query[string](t, dst, `SELECT status FROM caravan.runs WHERE run_id = $1`, run); s != "interrupted" {
		t.Fatalf("an interrupted run is recorded as %s", s)
	}
	hint := regexp.MustCompile(`(?m)^\s+(caravan resume .*)$`).FindStringSubmatch(stderr.String())
	if hint == nil || !strings.HasSuffix(hint[1], " "+run) {
		t.Fatalf("no resume command printed:\n%s", tail(stderr.String(), 3000))
	}
	res := caravan(t, time.Minute, "status", "--target-url", dst, run)
	if res.code != 4 {
		t.Errorf("status of an interrupted run exited %d, want 4", res.code)
	}
	mustContain(t, res.stdout, "interrupted")
	mustContain(t, res.stderr, "caravan resume --source-url")

	// The printed command, run as printed (the test URLs carry no password),
	// goes on; killed in its turn, its run is abandoned once its heartbeat
	// is older than 30 s (aged here rather than waited for).
	fields := strings.Fields(hint[1])
	for i, f := range fields {
		fields[i] = strings.Trim(f, "'")
	}
	resumed := start(t, "resume", fields[1:]...)
	testenv.Eventually(t, 2*time.Minute, "the resumed run to load", func() bool {
		return countOr0(dst, `SELECT count(*) FROM caravan.runs WHERE run_id = $1 AND status = 'loading'`, run) == 1
	})
	if err := resumed.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = resumed.Wait()
	if countOr0(dst, `SELECT count(*) FROM caravan.runs WHERE run_id = $1 AND status = 'succeeded'`, run) != 0 {
		t.Fatal("the resumed run finished before it was killed: the test proves nothing")
	}
	// Its heartbeat is fresh: the run looks live until 30 s have passed.
	res = caravan(t, time.Minute, "status", "--target-url", dst, "--json", run)
	mustContain(t, res.stdout, `"schema_version": 1`, `"status": "loading"`, `"exit_code": 5`)
	if res.code != 5 {
		t.Errorf("status of a live run exited %d, want 5", res.code)
	}
	testenv.Exec(t, dst, `UPDATE caravan.runs SET heartbeat_at = now() - interval '31 seconds' WHERE run_id = '`+run+`'`)
	res = caravan(t, time.Minute, "status", "--target-url", dst, run)
	if res.code != 4 {
		t.Errorf("status of an abandoned run exited %d, want 4\n%s", res.code, res.stdout)
	}
	mustContain(t, res.stdout, "abandoned")
	mustContain(t, res.stderr, "caravan resume --source-url")

	res = caravan(t, 5*time.Minute, "resume", "--source-url", src, "--target-url", dst, run)
	if res.code != 0 {
		t.Fatalf("resume exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 4000))
	}
	assertSameContent(t, src, dst, "big")
	assertExactlyOnce(t, src, dst, run, "big")
	if res := caravan(t, time.Minute, "status", "--target-url", dst, run); res.code != 0 {
		t.Errorf("status of the finished run exited %d", res.code)
	}
}
