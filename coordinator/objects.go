package coordinator

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
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
	if c.cfg.Options.OwnersAndGrants {
		privs, err := c.privilegeObjects(ctx)
		if err != nil {
			return err
		}
		objects = append(objects, privs...)
	}
	// A materialized view's refresh or a big index can take a while: say so.
	c.log.InfoContext(ctx, "creating the objects defined on top of the tables", "objects", len(objects))
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
	c.log.InfoContext(ctx, "objects created", "objects", len(objects), "failed", len(problems))
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

// privilegeObjects groups the owner and grant statements per object,
// leaving out those that need a role the target lacks: the run reported
// each such role before it started (missingRoles), and the user accepted.
func (c *Coordinator) privilegeObjects(ctx context.Context) ([]*schema.Object, error) {
	missing, err := c.missingRoles(ctx)
	if err != nil {
		return nil, err
	}
	var out []*schema.Object
	for _, p := range c.db.Privileges {
		if missing[p.Role] {
			continue
		}
		if n := len(out); n > 0 && out[n-1].Name == p.Name && out[n-1].Kind == p.Kind+" privileges" {
			out[n-1].SQL = append(out[n-1].SQL, p.SQL)
			continue
		}
		out = append(out, &schema.Object{Kind: p.Kind + " privileges", Name: p.Name, SQL: []string{p.SQL}})
	}
	return out, nil
}

// missingRoles returns the roles the run's objects, owners and grants
// name that the target does not have.
func (c *Coordinator) missingRoles(ctx context.Context) (map[string]bool, error) {
	var names []string
	seen := map[string]bool{}
	need := func(role string) {
		if role != "" && !seen[role] {
			seen[role] = true
			names = append(names, role)
		}
	}
	for _, p := range c.db.Privileges {
		need(p.Role)
	}
	for _, o := range c.db.Objects {
		for _, r := range o.Roles {
			need(r)
		}
	}
	var have []string
	if err := c.pool.QueryRow(ctx, `SELECT coalesce(array_agg(rolname::text), '{}') FROM pg_roles WHERE rolname = ANY($1)`, names).Scan(&have); err != nil {
		return nil, fmt.Errorf("look up roles on the target: %w", err)
	}
	missing := map[string]bool{}
	for _, n := range names {
		missing[n] = true
	}
	for _, n := range have {
		delete(missing, n)
	}
	return missing, nil
}

// reportMissingRoles looks for the roles the run needs on the target
// before anything is copied. An object that names a role the target lacks
// (a policy TO it) is not migrated; when the run migrates owners and
// grants, each such role is listed too. Either way the run refuses to
// start until the user creates the role or accepts the loss.
func (c *Coordinator) reportMissingRoles(ctx context.Context, db *schema.Database) error {
	missing, err := c.missingRoles(ctx)
	if err != nil {
		return err
	}
	kept := db.Objects[:0]
	for _, o := range db.Objects {
		if lacks := missingOf(o.Roles, missing); len(lacks) > 0 {
			db.Unmigrated = append(db.Unmigrated, &schema.Unmigrated{Kind: o.Kind, Name: o.Name,
				Reason: "it names roles the target does not have: " + strings.Join(lacks, ", ")})
			continue
		}
		kept = append(kept, o)
	}
	db.Objects = kept
	if !c.cfg.Options.OwnersAndGrants {
		return nil
	}
	names := make([]string, 0, len(missing))
	for n := range missing {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		db.Unmigrated = append(db.Unmigrated, &schema.Unmigrated{Kind: "role", Name: n,
			Reason: "it owns or is granted objects on the source but does not exist on the target: create it there, or its ownership and grants stay behind"})
	}
	return nil
}

func missingOf(roles []string, missing map[string]bool) []string {
	var out []string
	for _, r := range roles {
		if missing[r] {
			out = append(out, r)
		}
	}
	return out
}

func duplicateFunction(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42723"
}
