package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/target"
)

// createObjects creates, once every table is loaded and finalized, what
// the source defines on top of its tables: row-level security, functions,
// procedures, views and materialized views (refreshed), triggers (now, so
// they never fire on copied rows), rules, policies and comments. Each
// object is one transaction, audited; one that already exists (a resumed
// run) is left as it is. An object that fails is reported and fails the
// run; the others are still created. An outage is returned, to try again.
func (c *Coordinator) createObjects(ctx context.Context) error {
	if c.objectsDone {
		return nil
	}
	ctx, span := c.tracer.Start(ctx, "create objects")
	defer span.End()
	objects := append([]*schema.Object{}, c.db.Objects...)
	if rls := c.db.RowSecuritySQL(); len(rls) > 0 {
		objects = append([]*schema.Object{{Kind: "row security", Name: "tables", SQL: rls, Mapped: true}}, objects...)
	}
	var problems []string
	for _, o := range objects {
		started := time.Now()
		err := c.createObject(ctx, o)
		if pgutil.IsTransient(err) {
			return fmt.Errorf("create %s %s: %w", o.Kind, o.Name, err)
		}
		entry := target.AuditEntry{Operation: "create_object", Status: "ok", Started: started,
			Metadata: map[string]any{"kind": o.Kind, "name": o.Name, "sql": o.SQL}}
		if err != nil {
			entry.Status, entry.Error = "failed", err.Error()
			problems = append(problems, fmt.Sprintf("%s %s: %v", o.Kind, o.Name, err))
			c.log.ErrorContext(ctx, "create object", "kind", o.Kind, "name", o.Name, "err", err)
		}
		c.audit(ctx, entry)
	}
	c.objectsDone, c.objectProblems = true, problems
	return nil
}

func (c *Coordinator) createObject(ctx context.Context, o *schema.Object) error {
	return pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		// As pg_dump: a function's body may use what is created after it.
		if _, err := tx.Exec(ctx, "SET LOCAL check_function_bodies = off"); err != nil {
			return err
		}
		for _, stmt := range o.SQL {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				if alreadyDone(err) || duplicateFunction(err) {
					return nil // an earlier try created it
				}
				return fmt.Errorf("%s: %w", firstLine(stmt), err)
			}
		}
		return nil
	})
}

func duplicateFunction(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42723"
}
