package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caravan-db/caravan/coordinator"
	"github.com/caravan-db/caravan/internal/testenv"
	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/source/postgres"
)

// TestNoPasswordAnywhere migrates with source and target URLs that carry a
// password, and fails runs on purpose, then looks for the password in
// every place caravan writes: log lines (stdout and stderr of the binary,
// the in-process workers' logs), span names, attributes, events and
// statuses, the Prometheus output, every caravan.* table in the target
// (audit, runs, ...) and the errors of failed connections.
func TestNoPasswordAnywhere(t *testing.T) {
	suffix := randomSuffix(t)
	user, password := "caravan_secret_"+suffix, "S3cr3t-"+suffix
	admin := testenv.AdminURL(t)
	// Registered before the databases, so it runs after they are dropped
	// (cleanups run last first): the role owns their tables.
	t.Cleanup(func() { execIgnore(admin, "DROP ROLE IF EXISTS "+user) })
	// The test server may trust every login: what matters is that the URLs
	// carry a password caravan must never repeat.
	testenv.Exec(t, admin, fmt.Sprintf("CREATE ROLE %s LOGIN SUPERUSER PASSWORD '%s'", user, password))

	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, traceSource...)
	srcPW, dstPW := withPassword(t, src, user, password), withPassword(t, dst, user, password)
	noSecret := func(where, text string) {
		t.Helper()
		if strings.Contains(text, password) {
			t.Errorf("the password appears in %s:\n%s", where, excerpt(text, password))
		}
	}

	// In process: spans, metrics and logs of the four workers.
	w := migrateInProcess(t, srcPW, dstPW, coordinator.Options{RowsPerChunk: 300, BatchRows: 100})
	if w.err != nil {
		t.Fatalf("run: %v", w.err)
	}
	var spans int
	for role, exp := range w.spans {
		for _, s := range exp.GetSpans() {
			spans++
			text := fmt.Sprint(s.Name, s.Attributes, s.Status, s.Resource.Attributes())
			for _, ev := range s.Events {
				text += fmt.Sprint(ev.Name, ev.Attributes)
			}
			noSecret(role+" span "+s.Name, text)
		}
	}
	if spans == 0 {
		t.Fatal("no spans recorded")
	}
	metrics := w.metricsText(t)
	mustContain(t, metrics, "caravan_rows_total")
	noSecret("Prometheus metrics", metrics)
	noSecret("worker logs", w.logs.String())
	noSecret("target state", caravanTables(t, dst))

	// The binary, logging everything it can, then status on the same URL.
	dst2 := testenv.Database(t, "dst")
	dst2PW := withPassword(t, dst2, user, password)
	res := caravan(t, 3*time.Minute, "migrate", "--source-url", srcPW, "--target-url", dst2PW, "--log-level", "debug",
		"--metrics-addr", "127.0.0.1:0", "--chunk-rows", "300", "--batch-rows", "100")
	if res.code != 0 {
		t.Fatalf("migrate exited %d\nstderr:\n%s", res.code, tail(res.stderr, 4000))
	}
	noSecret("migrate stdout", res.stdout)
	noSecret("migrate stderr", res.stderr)
	noSecret("target state", caravanTables(t, dst2))
	status := caravan(t, time.Minute, "status", "--target-url", dst2PW, "--json")
	noSecret("status output", status.stdout+status.stderr)

	// Failures: nothing listens on port 1, and a URL PostgreSQL cannot parse.
	badPort := withPort(t, dst2PW, "1")
	for _, c := range []struct{ name, src, dst string }{
		{"unreachable target", srcPW, badPort},
		{"unreachable source", badPort, dst2PW},
	} {
		res := caravan(t, time.Minute, "migrate", "--source-url", c.src, "--target-url", c.dst, "--log-level", "debug")
		if res.code == 0 {
			t.Errorf("%s: migrate succeeded", c.name)
		}
		if !strings.Contains(res.stderr, "xxxxx") {
			t.Errorf("%s: the error does not name the (redacted) URL:\n%s", c.name, tail(res.stderr, 2000))
		}
		noSecret(c.name+" stdout", res.stdout)
		noSecret(c.name+" stderr", res.stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	unparsable := strings.Replace(badPort, ":1/", ":port/", 1)
	for _, u := range []string{badPort, unparsable} {
		if _, err := postgres.Open(ctx, u, 1, nil); err == nil {
			t.Errorf("opened %s", pgutil.Redact(u))
		} else {
			noSecret("source error", err.Error())
		}
		if _, err := pgutil.Pool(ctx, u, "caravan", 1); err == nil {
			t.Errorf("opened %s", pgutil.Redact(u))
		} else {
			noSecret("target error", err.Error())
		}
	}
}

// caravanTables returns every row of every table in the target's caravan
// schema as text.
func caravanTables(t *testing.T, dbURL string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT quote_ident(table_name) FROM information_schema.tables WHERE table_schema = 'caravan'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) < 2 {
		t.Fatalf("caravan schema has %d tables", len(tables))
	}
	var out strings.Builder
	for _, table := range tables {
		var text string
		if err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT coalesce(string_agg(t::text, E'\n'), '') FROM caravan.%s t`, table)).Scan(&text); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "-- caravan.%s\n%s\n", table, text)
	}
	if !strings.Contains(out.String(), "xxxxx") {
		t.Errorf("caravan.runs does not keep the redacted source URL:\n%s", tail(out.String(), 2000))
	}
	return out.String()
}

func withPassword(t *testing.T, dbURL, user, password string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}

func withPort(t *testing.T, dbURL, port string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = u.Hostname() + ":" + port
	return u.String()
}

func randomSuffix(t *testing.T) string {
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func execIgnore(dbURL, sql string) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, sql)
}

// excerpt shows where a secret appears.
func excerpt(text, secret string) string {
	i := strings.Index(text, secret)
	lo, hi := max(0, i-300), min(len(text), i+len(secret)+300)
	return "..." + text[lo:hi] + "..."
}
