// Package testenv gives tests real services: a PostgreSQL server (the one
// in CARAVAN_TEST_PG_URL, or a throwaway cluster started once per test
// binary), a fresh database per test, and an embedded NATS JetStream server.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/caravan-db/caravan/broker"
	"github.com/caravan-db/caravan/internal/pgsandbox"
)

var (
	once    sync.Once
	adminDB string
	cluster *pgsandbox.Cluster
	initErr error
)

// Main runs a package's tests, stops a cluster it started, and runs the
// package's own cleanups: os.Exit skips deferred calls, so a TestMain's
// defers would never run.
func Main(m *testing.M, cleanups ...func()) {
	code := m.Run()
	if cluster != nil {
		cluster.Stop()
	}
	for _, c := range cleanups {
		c()
	}
	os.Exit(code)
}

// AdminURL returns a URL of the test server's maintenance database.
func AdminURL(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		if u := os.Getenv("CARAVAN_TEST_PG_URL"); u != "" {
			adminDB = u
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cluster, initErr = pgsandbox.Start(ctx)
		if initErr == nil {
			adminDB = cluster.URL("postgres")
		}
	})
	if initErr != nil {
		t.Fatalf("test PostgreSQL: %v", initErr)
	}
	return adminDB
}

// Database creates a fresh database for one test and returns its URL; it
// is dropped when the test ends.
func Database(t testing.TB, prefix string) string {
	t.Helper()
	return createDatabase(t, prefix, "ENCODING 'UTF8'")
}

// SQLASCIIDatabase is Database in SQL_ASCII, the encoding of many old
// databases: PostgreSQL stores its text as bytes, unchecked.
func SQLASCIIDatabase(t testing.TB, prefix string) string {
	t.Helper()
	return createDatabase(t, prefix, "ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C'")
}

func createDatabase(t testing.TB, prefix, encoding string) string {
	t.Helper()
	admin := AdminURL(t)
	name := prefix + "_" + randomHex(6)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to test PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE template0 "+encoding); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("test PostgreSQL URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Exec runs SQL statements against a database URL.
func Exec(t testing.TB, dbURL string, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("exec %q: %v", s, err)
		}
	}
}

// NATS starts an embedded NATS JetStream server for one test, with
// caravan's streams and shared consumers (as a coordinator makes them), and returns its URL and a JetStream client.
func NATS(t testing.TB) (string, jetstream.JetStream) {
	t.Helper()
	srv, err := broker.StartEmbedded(t.TempDir(), 0, nil)
	if err != nil {
		t.Fatalf("nats: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	nc, js, err := broker.Connect(srv.URL(), "caravan-test")
	if err != nil {
		t.Fatalf("nats: %v", err)
	}
	t.Cleanup(nc.Close)
	if err := broker.EnsureStreams(context.Background(), js, broker.StreamConfig{}, slog.Default()); err != nil {
		t.Fatalf("nats streams: %v", err)
	}
	if err := broker.EnsureConsumers(context.Background(), js, broker.ConsumerConfig{}, slog.Default()); err != nil {
		t.Fatalf("nats consumers: %v", err)
	}
	return srv.URL(), js
}

// Eventually polls cond until it holds or the deadline passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
