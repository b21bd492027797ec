package target

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// KnownRuns tells a worker whether its target holds a run: a worker whose
// target is another database than the run's must leave that run's
// messages to the workers that can serve them, and say so, rather than
// drop them as stale. Runs found are remembered for good (a run record is
// written before any of its work is published); runs not found are asked
// again after a while.
type KnownRuns struct {
	pool *pgxpool.Pool

	mu      sync.Mutex
	held    map[string]bool
	missing map[string]time.Time // when a missing run was last reported
}

// reportEvery is how often a run this target does not hold is reported
// again (a WARN and a notice to its coordinator) while its messages come.
const reportEvery = time.Minute

// NewKnownRuns returns an empty cache over pool.
func NewKnownRuns(pool *pgxpool.Pool) *KnownRuns {
	return &KnownRuns{pool: pool, held: map[string]bool{}, missing: map[string]time.Time{}}
}

// Holds says whether the target holds run; report is true when the run is
// missing and it is time to say so again.
func (k *KnownRuns) Holds(ctx context.Context, run string) (held, report bool, err error) {
	k.mu.Lock()
	ok := k.held[run]
	k.mu.Unlock()
	if ok {
		return true, false, nil
	}
	// A database with no caravan schema holds no run, and saying so beats
	// an "undefined table" error.
	if err := k.pool.QueryRow(ctx, `SELECT to_regclass('caravan.runs') IS NOT NULL`).Scan(&held); err != nil {
		return false, false, err
	}
	if held {
		err := k.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM caravan.runs WHERE run_id::text = $1)`, run).Scan(&held)
		if err != nil {
			return false, false, err
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if held {
		k.held[run] = true
		delete(k.missing, run)
		return true, false, nil
	}
	if last, seen := k.missing[run]; !seen || time.Since(last) >= reportEvery {
		k.missing[run] = time.Now()
		report = true
	}
	return false, report, nil
}
