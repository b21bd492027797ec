package target

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// App is the application_name of caravan's connections to the target
// (pgutil.Pool): what LockWaits looks for.
const App = "caravan"

// LockWaits says which of caravan's sessions on the target's database wait
// for a lock, and who holds it: a run (or a sync) that waits on a user's
// open transaction must say so, not sit quiet. Each line names the waiting
// statement's start (caravan's own SQL: identifiers, never values, which
// are bound) and the holder by pid, application, user, state and since
// when; never the holder's statement, which caravan did not write and may
// hold anything.
func LockWaits(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	rows, err := pool.Query(ctx, `SELECT w.pid, left(regexp_replace(w.query, '\s+', ' ', 'g'), 80),
			b.pid, coalesce(b.application_name, ''), coalesce(b.usename::text, ''), coalesce(b.state, ''), b.xact_start
		FROM pg_stat_activity w
		CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS h(pid)
		JOIN pg_stat_activity b ON b.pid = h.pid
		WHERE w.application_name = $1 AND w.datname = current_database() AND w.wait_event_type = 'Lock'
		ORDER BY w.pid, b.pid`, App)
	if err != nil {
		return nil, fmt.Errorf("read the target's lock waits: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var waiter, holder int32
		var stmt, app, user, state string
		var since *time.Time
		if err := r.Scan(&waiter, &stmt, &holder, &app, &user, &state, &since); err != nil {
			return "", err
		}
		held := fmt.Sprintf("pid %d", holder)
		if app != "" {
			held += ", application " + app
		}
		if user != "" {
			held += ", user " + user
		}
		if state != "" {
			held += ", " + state
		}
		if since != nil {
			held += fmt.Sprintf(", in a transaction open for %s", time.Since(*since).Round(time.Second))
		}
		return fmt.Sprintf("pid %d (%s...) waits for a lock held by %s", waiter, stmt, held), nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the target's lock waits: %w", err)
	}
	return out, nil
}
