// Package e2e drives the caravan binary the way users do, against a real
// PostgreSQL (source and target) and a real NATS JetStream.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caravan-db/caravan/internal/testenv"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "caravan-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "caravan")
	_, file, _, _ := runtime.Caller(0)
	build := exec.Command("go", "build", "-o", binary, "./cmd/caravan")
	build.Dir = filepath.Dir(filepath.Dir(file))
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build caravan: %v\n%s", err, out)
		os.Exit(1)
	}
	testenv.Main(m, func() { os.RemoveAll(dir) })
}

type result struct {
	code   int
	stdout string
	stderr string
}

// caravan runs the binary to completion.
func caravan(t *testing.T, timeout time.Duration, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "CARAVAN_LOG_FORMAT=json")
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	if ctx.Err() != nil {
		t.Fatalf("caravan %s: timed out after %s\nstdout:\n%s\nstderr:\n%s", args[0], timeout, res.stdout, tail(res.stderr, 4000))
	}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("caravan %s: %v", args[0], err)
	}
	return res
}

// start runs the binary in the background; the test stops it at cleanup.
func start(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary, args...)
	log, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "CARAVAN_LOG_FORMAT=json")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		log.Close()
		if t.Failed() {
			data, _ := os.ReadFile(log.Name())
			t.Logf("%s log:\n%s", name, tail(string(data), 6000))
			_ = os.WriteFile(filepath.Join(os.TempDir(), "caravan-"+name+".log"), data, 0o644)
		}
	})
	return cmd
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func query[T any](t *testing.T, dbURL, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := queryRow(t, dbURL, sql, args, &v); err != nil {
		t.Fatalf("query %q: %v", sql, err)
	}
	return v
}

// queryRow scans one row of a query on dbURL into dest.
func queryRow(t *testing.T, dbURL, sqlText string, args []any, dest ...any) error {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, sqlText, args...).Scan(dest...)
}

// contentHash is the proof of identical content: every row's text,
// sorted, hashed.
func contentHash(t *testing.T, dbURL, table string) string {
	return query[string](t, dbURL, fmt.Sprintf("SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM ONLY %s t", table))
}

func assertSameContent(t *testing.T, src, dst string, tables ...string) {
	t.Helper()
	for _, table := range tables {
		s, d := contentHash(t, src, table), contentHash(t, dst, table)
		if s != d {
			t.Errorf("table %s: content differs: source md5 %s, target %s (source rows %d, target %d)", table, s, d,
				query[int64](t, src, "SELECT count(*) FROM ONLY "+table), query[int64](t, dst, "SELECT count(*) FROM ONLY "+table))
		}
	}
}

func mustContain(t *testing.T, haystack string, needles ...string) {
	t.Helper()
	for _, n := range needles {
		if !strings.Contains(haystack, n) {
			t.Errorf("output lacks %q:\n%s", n, tail(haystack, 3000))
		}
	}
}
