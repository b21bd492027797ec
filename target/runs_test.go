package target

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
)

// A live run whose heartbeat stops is abandoned; interrupting marks only a
// live run; a database without caravan's tables says so.
func TestRunOutcome(t *testing.T) {
	ctx := context.Background()
	p := pool(t)
	run := uuid.NewString()
	if err := CreateRun(ctx, p, &Run{ID: run, Status: RunLoading, SourceKind: "postgres", Source: "test"}); err != nil {
		t.Fatal(err)
	}
	outcome := func() string {
		t.Helper()
		r, err := LoadRun(ctx, p, run)
		if err != nil {
			t.Fatal(err)
		}
		return r.Outcome()
	}
	if o := outcome(); o != RunLoading {
		t.Errorf("a fresh run is %s", o)
	}
	if _, err := p.Exec(ctx, `UPDATE caravan.runs SET heartbeat_at = now() - interval '1 minute' WHERE run_id = $1`, run); err != nil {
		t.Fatal(err)
	}
	if o := outcome(); o != RunAbandoned {
		t.Errorf("a run without heartbeat for a minute is %s", o)
	}
	if err := Heartbeat(ctx, p, run); err != nil {
		t.Fatal(err)
	}
	if o := outcome(); o != RunLoading {
		t.Errorf("a run beating again is %s", o)
	}
	if marked, err := InterruptRun(ctx, p, run); err != nil || !marked {
		t.Fatalf("interrupt a live run: %v %v", marked, err)
	}
	if o := outcome(); o != RunInterrupted {
		t.Errorf("an interrupted run is %s", o)
	}
	if err := SetRunStatus(ctx, p, run, RunSucceeded, ""); err != nil {
		t.Fatal(err)
	}
	if marked, _ := InterruptRun(ctx, p, run); marked {
		t.Error("a run that ended was marked interrupted")
	}
	if r, _ := LoadRun(ctx, p, run); r.Status != RunSucceeded || r.FinishedAt == nil {
		t.Errorf("a succeeded run: %s, finished %v", r.Status, r.FinishedAt)
	}

	if _, err := p.Exec(ctx, `DROP SCHEMA caravan CASCADE`); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRun(ctx, p, ""); !errors.Is(err, ErrNoState) {
		t.Errorf("no caravan schema: %v", err)
	}
}

// A ledger made by an earlier version (bytes int) is widened in place, so
// a sync's one-row record of a chunk over 2 GiB fits, and a second start
// leaves it as it is.
func TestEnsureStateWidensLedgerBytes(t *testing.T) {
	ctx := context.Background()
	p := pool(t)
	if _, err := p.Exec(ctx, `ALTER TABLE caravan.ledger ALTER COLUMN bytes TYPE int`); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := EnsureState(ctx, p); err != nil {
			t.Fatal(err)
		}
		var typ string
		if err := p.QueryRow(ctx, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute
			WHERE attrelid = 'caravan.ledger'::regclass AND attname = 'bytes'`).Scan(&typ); err != nil {
			t.Fatal(err)
		}
		if typ != "bigint" {
			t.Fatalf("caravan.ledger.bytes is %s after EnsureState, want bigint", typ)
		}
	}
}
