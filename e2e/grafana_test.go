package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/caravan-db/caravan/internal/testenv"
)

// TestGrafanaDashboardMatchesMetrics: every query of deploy/grafana's
// dashboard names metrics and labels that a real caravan process exposes on
// /metrics during a run (one with a rejected batch and a failed check, so
// error and failure series exist too).
func TestGrafanaDashboardMatchesMetrics(t *testing.T) {
	queries := dashboardQueries(t)

	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	// big is one chunk that loads for a while, and narrow's batch is
	// rejected at once, beside it: its failed check is on /metrics for the
	// rest of the run, not only in the moment before the process exits.
	testenv.Exec(t, src, bigTable("big", 300_000)...)
	testenv.Exec(t, src, `CREATE TABLE narrow (id int PRIMARY KEY, v text)`, `INSERT INTO narrow SELECT g, 'v' || g FROM generate_series(1, 100) g`)
	testenv.Exec(t, dst, `CREATE TABLE narrow (id int PRIMARY KEY, v varchar(2))`)
	p := startLogged(t, "migrate", "migrate", "--source-url", src, "--target-url", dst, "--run-id", uuid.NewString(), "--mode", "truncate",
		"--chunk-rows", "1000000", "--batch-rows", "1000", "--metrics-addr", "127.0.0.1:0")
	addr := regexp.MustCompile(`"metrics_addr":"([^"]+)"`).FindStringSubmatch(p.waitForLog(t, regexp.MustCompile(`"metrics_addr":"[^"]+"`)))[1]

	// Scrape until the run ends: the union of what was exposed.
	series := map[string]map[string]bool{} // metric name -> label names
	for done := false; !done; {
		select {
		case <-p.done:
			done = true
		case <-time.After(200 * time.Millisecond):
		}
		if body, ok := tryScrape("http://" + addr + "/metrics"); ok {
			collectSeries(body, series)
		}
	}
	if len(series) == 0 {
		t.Fatal("no scrape succeeded during the run")
	}

	for _, q := range queries {
		names := regexp.MustCompile(`\bcaravan_[a-z_]+\b`).FindAllString(q, -1)
		if len(names) == 0 {
			t.Errorf("query names no caravan metric: %s", q)
		}
		var used []string
		for _, m := range regexp.MustCompile(`(?:by|without) \(([^)]*)\)`).FindAllStringSubmatch(q, -1) {
			used = append(used, splitLabels(m[1])...)
		}
		for _, m := range regexp.MustCompile(`\{([^}]*)\}`).FindAllStringSubmatch(q, -1) {
			for _, matcher := range regexp.MustCompile(`([a-z_]+)\s*(?:=~|!~|!=|=)`).FindAllStringSubmatch(m[1], -1) {
				used = append(used, matcher[1])
			}
		}
		for _, name := range names {
			labels, ok := series[name]
			if !ok {
				t.Errorf("query uses %s, which /metrics never exposed during the run: %s", name, q)
				continue
			}
			for _, l := range used {
				if !labels[l] {
					t.Errorf("query uses label %q on %s, which has only %v: %s", l, name, keys(labels), q)
				}
			}
		}
	}
}

// dashboardQueries reads every PromQL expression of the dashboard (panel
// targets and template variables), with Grafana's variables replaced by
// values PromQL accepts.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	data, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(file)), "deploy", "grafana", "caravan.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Type       string `json:"type"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("deploy/grafana/caravan.json: %v", err)
	}
	vars := strings.NewReplacer("$__rate_interval", "1m", "$table", ".*")
	var out []string
	for _, p := range dash.Panels {
		if p.Title == "" || p.Type == "" || len(p.Targets) == 0 {
			t.Errorf("panel %q: a title, a type and queries are needed", p.Title)
		}
		for _, tg := range p.Targets {
			out = append(out, vars.Replace(tg.Expr))
		}
	}
	for _, v := range dash.Templating.List {
		if v.Type == "query" {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(v.Definition, "label_values("), ")"))
		}
	}
	if len(out) < 5 {
		t.Fatalf("the dashboard has %d queries", len(out))
	}
	return out
}

func tryScrape(url string) (string, bool) {
	resp, err := http.Get(url)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err == nil && resp.StatusCode == http.StatusOK
}

// collectSeries adds the metric names and label names of a Prometheus text
// exposition to series.
func collectSeries(body string, series map[string]map[string]bool) {
	sample := regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? `)
	label := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="`)
	for _, line := range strings.Split(body, "\n") {
		m := sample.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if series[m[1]] == nil {
			series[m[1]] = map[string]bool{}
		}
		for _, l := range label.FindAllStringSubmatch(m[2], -1) {
			series[m[1]][l[1]] = true
		}
	}
}

func splitLabels(s string) []string {
	var out []string
	for _, l := range strings.Split(s, ",") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
