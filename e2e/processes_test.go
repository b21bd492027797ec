package e2e

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caravan-db/caravan/internal/testenv"
)

// TestEveryRoleItsOwnProcess runs caravan the way it is deployed: a broker
// process (`caravan broker`), then coordinator, extractor, loader and
// validator each as its own OS process, meeting only through NATS and the
// databases. The copy must be identical, every role must serve Prometheus
// metrics on --metrics-addr, and every process must stop cleanly on SIGTERM.
func TestEveryRoleItsOwnProcess(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, traceSource...)

	brokerProc := startLogged(t, "broker", "broker", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	natsURL := brokerProc.waitForLog(t, regexp.MustCompile(`nats://127\.0\.0\.1:\d+`))

	workers := map[string][]string{
		"extractor": {"extractor", "--source-url", src, "--nats-url", natsURL, "--metrics-addr", "127.0.0.1:0"},
		"loader":    {"loader", "--target-url", dst, "--nats-url", natsURL, "--metrics-addr", "127.0.0.1:0"},
		"validator": {"validator", "--target-url", dst, "--nats-url", natsURL, "--metrics-addr", "127.0.0.1:0"},
	}
	procs := map[string]*proc{}
	metricsAddr := map[string]string{}
	addrRE := regexp.MustCompile(`"metrics_addr":"([^"]+)"`)
	for role, args := range workers {
		p := startLogged(t, role, args...)
		procs[role] = p
		metricsAddr[role] = addrRE.FindStringSubmatch(p.waitForLog(t, addrRE))[1]
	}

	res := caravan(t, 3*time.Minute, "coordinator", "--source-url", src, "--target-url", dst, "--nats-url", natsURL,
		"--chunk-rows", "300", "--batch-rows", "100")
	if res.code != 0 {
		t.Fatalf("coordinator exited %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, tail(res.stderr, 6000))
	}
	mustContain(t, res.stdout, "succeeded", "public.items", "public.notes")
	assertSameContent(t, src, dst, "items", "notes")
	run := query[string](t, dst, `SELECT run_id::text FROM caravan.runs`)
	assertExactlyOnce(t, src, dst, run, "public.items", "public.notes")

	// Each role's endpoint counts what that role did.
	for role, want := range map[string][]string{
		"extractor": {`caravan_rows_total{`, `role="extractor"`, `table="public.items"`, `caravan_chunk_duration_seconds_bucket{`, `caravan_consumer_lag{`},
		"loader":    {`caravan_rows_total{`, `role="loader"`, `caravan_bytes_total{`, `caravan_batches_total{`, `caravan_consumer_lag{`},
		"validator": {`caravan_checks_total{`, `level="digest"`, `role="validator"`},
	} {
		body := scrape(t, "http://"+metricsAddr[role]+"/metrics")
		mustContain(t, body, want...)
		if rows := metricValue(body, "caravan_rows_total", `role="`+role+`"`, `table="public.items"`); role != "validator" && rows != "900" {
			t.Errorf("%s: caravan_rows_total for public.items = %q, want 900", role, rows)
		}
		if got := scrape(t, "http://"+metricsAddr[role]+"/healthz"); strings.TrimSpace(got) != "ok" {
			t.Errorf("%s /healthz: %q", role, got)
		}
	}

	for role, p := range procs {
		if code := p.stop(t); code != 0 {
			t.Errorf("%s exited %d on SIGTERM", role, code)
		}
	}
	if code := brokerProc.stop(t); code != 0 {
		t.Errorf("broker exited %d on SIGTERM", code)
	}
}

// proc is a caravan process running in the background.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string // its stdout and stderr
	done chan struct{}
}

// startLogged starts the binary in the background with its stdout and
// stderr in a file; the process is killed at cleanup if still running, and
// its log shown when the test failed.
func startLogged(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return startArgv(t, name, append([]string{binary}, args...)...)
}

// startArgv is startLogged for any command line, such as the binary run
// by `ip netns exec` in another network namespace.
func startArgv(t *testing.T, name string, argv ...string) *proc {
	t.Helper()
	p := &proc{name: name, log: filepath.Join(t.TempDir(), name+".log"), done: make(chan struct{})}
	log, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = log, log
	p.cmd.Env = append(os.Environ(), "CARAVAN_LOG_FORMAT=json")
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		log.Close()
		if t.Failed() {
			data, _ := os.ReadFile(p.log)
			t.Logf("%s log:\n%s", name, tail(string(data), 6000))
		}
	})
	return p
}

// stop sends SIGTERM and returns the exit code.
func (p *proc) stop(t *testing.T) int {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop within 30s of SIGTERM", p.name)
	}
	return p.cmd.ProcessState.ExitCode()
}

// waitForLog polls the process's log until re matches and returns the match.
func (p *proc) waitForLog(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	var match string
	testenv.Eventually(t, 30*time.Second, p.name+" log to match "+re.String(), func() bool {
		data, _ := os.ReadFile(p.log)
		match = re.FindString(string(data))
		return match != ""
	})
	return match
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return string(body)
}

// metricValue returns the value of the first sample of a metric whose
// labels contain every given label, "" when there is none.
func metricValue(body, name string, labels ...string) string {
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if ok {
			return line[strings.LastIndexByte(line, ' ')+1:]
		}
	}
	return ""
}
