package mssql

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caravan-db/caravan/pgutil"
)

// When CARAVAN_TEST_PG_URL is set, the value tests also ask PostgreSQL to
// read each canonical text as its target type and print it back: the
// canonical text must be a fixed point of PostgreSQL's input and output
// functions under caravan's session settings, or the validator's digest
// would differ from the extractor's.

var (
	pgOnce sync.Once
	pgPool *pgxpool.Pool
	pgErr  error
)

func testPG(t *testing.T) *pgxpool.Pool {
	t.Helper()
	url := os.Getenv("CARAVAN_TEST_PG_URL")
	if url == "" {
		return nil
	}
	pgOnce.Do(func() { pgPool, pgErr = pgutil.Pool(context.Background(), url, "caravan-mssql-test", 2) })
	if pgErr != nil {
		t.Fatalf("CARAVAN_TEST_PG_URL is set but PostgreSQL is not reachable: %v", pgErr)
	}
	return pgPool
}

// pgRoundTrip returns PostgreSQL's output for text read as typ (through
// concat, which calls the output function as the validator does), or
// ok=false when no PostgreSQL is configured.
func pgRoundTrip(t *testing.T, typ, text string) (string, bool) {
	t.Helper()
	pool := testPG(t)
	if pool == nil {
		return "", false
	}
	var out string
	if err := pool.QueryRow(context.Background(), "SELECT concat($1::"+typ+")", text).Scan(&out); err != nil {
		t.Fatalf("PostgreSQL refused %q as %s: %v", text, typ, err)
	}
	return out, true
}
