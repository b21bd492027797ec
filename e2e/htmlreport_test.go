package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/caravan-db/caravan/internal/testenv"
)

// TestHTMLReport: `caravan report --html` writes one self-contained page
// (no script, nothing fetched) that Chromium renders, with one timeline bar
// per chunk of the run.
func TestHTMLReport(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, `CREATE TABLE a (id int PRIMARY KEY, v text)`, `INSERT INTO a SELECT g, md5(g::text) FROM generate_series(1, 20000) g`,
		`CREATE TABLE b (n int)`, `INSERT INTO b SELECT g % 7 FROM generate_series(1, 5000) g`, `ANALYZE`)
	run := uuid.NewString()
	res := caravan(t, 2*time.Minute, "migrate", "--source-url", src, "--target-url", dst, "--run-id", run, "--chunk-rows", "4000", "--batch-rows", "1000")
	if res.code != 0 {
		t.Fatalf("migrate exited %d\n%s", res.code, tail(res.stderr, 3000))
	}
	chunks := query[int64](t, dst, `SELECT count(*) FROM caravan.chunks WHERE run_id = $1`, run)
	page := filepath.Join(t.TempDir(), "run.html")
	res = caravan(t, time.Minute, "report", "--target-url", dst, "--html", page, run)
	if res.code != 0 {
		t.Fatalf("report exited %d: %s", res.code, res.stderr)
	}
	mustContain(t, res.stdout, "public.a", "succeeded")
	data, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	html := string(data)
	mustContain(t, html, "<svg", run, "public.a", "public.b", "validation")
	for _, banned := range []string{"<script", "http://", "https://", "<link", "@import", "url("} {
		if strings.Contains(html, banned) {
			t.Errorf("the page is not self-contained: it holds %q", banned)
		}
	}
	bars := regexp.MustCompile(`<g class="chunk[^"]*"`)
	if n := len(bars.FindAllString(html, -1)); int64(n) != chunks {
		t.Errorf("the page has %d chunk bars, the run %d chunks", n, chunks)
	}

	browser := chromium()
	if browser == "" {
		t.Skip("chromium is not installed (apt-get install chromium): the page was not rendered")
	}
	profile := t.TempDir()
	headless := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--no-first-run", "--user-data-dir=" + profile}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dom, err := exec.CommandContext(ctx, browser, append(headless, "--dump-dom", "file://"+page)...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	if n := len(bars.FindAllString(string(dom), -1)); int64(n) != chunks {
		t.Errorf("chromium rendered %d chunk bars, the run has %d chunks", n, chunks)
	}
	mustContain(t, string(dom), "<svg", "public.b")
	shot := filepath.Join(t.TempDir(), "run.png")
	if out, err := exec.CommandContext(ctx, browser, append(headless, "--window-size=1280,900", "--screenshot="+shot, "file://"+page)...).CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, tail(string(out), 2000))
	}
	if info, err := os.Stat(shot); err != nil || info.Size() < 10_000 {
		t.Errorf("no screenshot, or a blank one: %v", err)
	}
}

// chromium finds a headless-capable Chromium, "" when there is none.
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}
