package target

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caravan-db/caravan/internal/testenv"
	"github.com/caravan-db/caravan/pgutil"
)

// TestLockWaitsNamesTheHolder: a caravan session that waits on a lock held
// by another application's open transaction is reported with its
// statement and the holder's pid, application and state; the holder's
// statement (which may hold anything) is not.
func TestLockWaitsNamesTheHolder(t *testing.T) {
	ctx := context.Background()
	db := testenv.Database(t, "locks")
	testenv.Exec(t, db, `CREATE TABLE held (id integer PRIMARY KEY, secret text)`, `INSERT INTO held VALUES (1, 'x')`)
	holderPool, err := pgutil.Pool(ctx, db, "someone-else", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer holderPool.Close()
	tx, err := holderPool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var holder int32
	if err := tx.QueryRow(ctx, `SELECT pg_backend_pid() FROM held WHERE secret = 'x' FOR UPDATE`).Scan(&holder); err != nil {
		t.Fatal(err)
	}

	ours, err := pgutil.Pool(ctx, db, App, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	if waits, err := LockWaits(ctx, ours); err != nil || len(waits) != 0 {
		t.Fatalf("before any wait: %q, %v", waits, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := ours.Exec(ctx, `DELETE FROM ONLY "public"."held" WHERE id = 1`)
		done <- err
	}()
	var waits []string
	testenv.Eventually(t, 30*time.Second, "the delete waits for the row lock", func() bool {
		waits, err = LockWaits(ctx, ours)
		return err == nil && len(waits) == 1
	})
	got := waits[0]
	for _, want := range []string{`(DELETE FROM ONLY "public"."held"`, "waits for a lock held by pid " + strconv.Itoa(int(holder)),
		"application someone-else", "idle in transaction", "in a transaction open for"} {
		if !strings.Contains(got, want) {
			t.Errorf("lock wait %q does not say %q", got, want)
		}
	}
	if strings.Contains(got, "secret") {
		t.Errorf("lock wait %q shows the holder's statement", got)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
