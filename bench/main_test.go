package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caravan-db/caravan/internal/pgsandbox"
)

// Everything heavy (a PostgreSQL cluster, the dataset, the binary) is set
// up lazily by the first benchmark that needs it, so `go test ./...`
// without -bench costs nothing here; TestMain only tears down what was
// actually set up.
var (
	serverOnce sync.Once
	adminURL   string
	cluster    *pgsandbox.Cluster
	serverErr  error

	binaryOnce sync.Once
	binaryPath string
	binaryDir  string
	binaryErr  error

	datasetOnce sync.Once
	source      *dataset
	datasetErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	teardown()
	os.Exit(code)
}

func teardown() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The source database lives for the whole binary (every benchmark
	// shares it), so no benchmark's Cleanup may drop it: it goes here. On a
	// throwaway cluster this is moot, on a shared server it is not.
	if source != nil && !source.Kept {
		if err := dropDatabase(ctx, source.Name); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
	}
	if binaryDir != "" {
		os.RemoveAll(binaryDir)
	}
	if cluster != nil {
		cluster.Stop()
	}
}

// admin returns a URL of the server's maintenance database: the server in
// CARAVAN_TEST_PG_URL (make bench sets it), else a throwaway cluster of our
// own. testenv's cluster is not used because its lifetime ends in
// testenv.Main, before we could drop the shared source database.
func admin(b *testing.B) string {
	b.Helper()
	serverOnce.Do(func() {
		if u := os.Getenv("CARAVAN_TEST_PG_URL"); u != "" {
			adminURL = u
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cluster, serverErr = pgsandbox.Start(ctx)
		if serverErr == nil {
			adminURL = cluster.URL("postgres")
		}
	})
	if serverErr != nil {
		b.Fatalf("benchmark PostgreSQL: %v", serverErr)
	}
	return adminURL
}

// caravanBinary builds the binary once, fresh from this tree, like e2e
// does: a stale bin/caravan would measure the wrong code. The Go build
// cache makes this a link step after `make build`.
func caravanBinary(b *testing.B) string {
	b.Helper()
	binaryOnce.Do(func() {
		if p := os.Getenv("CARAVAN_BENCH_BINARY"); p != "" {
			binaryPath = p
			return
		}
		binaryDir, binaryErr = os.MkdirTemp("", "caravan-bench-")
		if binaryErr != nil {
			return
		}
		binaryPath = filepath.Join(binaryDir, "caravan")
		_, file, _, _ := runtime.Caller(0)
		cmd := exec.Command("go", "build", "-o", binaryPath, "./cmd/caravan")
		cmd.Dir = filepath.Dir(filepath.Dir(file))
		if out, err := cmd.CombinedOutput(); err != nil {
			binaryErr = fmt.Errorf("build caravan: %w\n%s", err, out)
		}
	})
	if binaryErr != nil {
		b.Fatal(binaryErr)
	}
	return binaryPath
}

// newDatabase creates an empty database and returns its name and URL. The
// caller drops it (dropDatabase) when done: benchmarks drop each target
// right after its iteration so a multi-iteration run does not pile up
// copies of the dataset.
func newDatabase(ctx context.Context, b *testing.B, prefix string) (string, string) {
	b.Helper()
	base := admin(b)
	name := prefix + "_" + randomHex(6)
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		b.Fatalf("connect to benchmark PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
		b.Fatalf("create database %s: %v", name, err)
	}
	return name, databaseURL(b, name)
}

func databaseURL(b *testing.B, name string) string {
	u, err := url.Parse(admin(b))
	if err != nil {
		b.Fatalf("benchmark PostgreSQL URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

func dropDatabase(ctx context.Context, name string) error {
	if adminURL == "" {
		return nil
	}
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// withDatabase runs fn against a fresh database and drops it afterwards,
// outside the benchmark timer.
func withDatabase(ctx context.Context, b *testing.B, prefix string, fn func(dbURL string)) {
	b.Helper()
	b.StopTimer()
	name, dbURL := newDatabase(ctx, b, prefix)
	defer func() {
		b.StopTimer()
		if err := dropDatabase(ctx, name); err != nil {
			b.Error(err)
		}
		b.StartTimer()
	}()
	b.StartTimer()
	fn(dbURL)
}

func execAll(ctx context.Context, dbURL string, stmts ...string) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("exec %.80q: %w", s, err)
		}
	}
	return nil
}

// runCommand runs a command to completion and returns its output; on
// failure the error carries the tail of both streams.
func runCommand(ctx context.Context, name string, env []string, args ...string) (string, string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), env...)
	err := cmd.Run()
	if err != nil {
		return stdout.String(), stderr.String(), fmt.Errorf("%s: %w\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), err,
			tail(stdout.String(), 3000), tail(stderr.String(), 4000))
	}
	return stdout.String(), stderr.String(), nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func randomHex(n int) string {
	p := make([]byte, n)
	_, _ = rand.Read(p)
	return hex.EncodeToString(p)
}
