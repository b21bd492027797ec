package coordinator

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/target"
)

// finalizeTable completes a loaded table: keys, indexes and checks built
// now that the data is in, sequences restarted past the data, and the
// table made LOGGED if it was loaded UNLOGGED. A table caravan did not
// create (mode truncate) keeps its own DDL; only its sequences move.
//
// Once the source's count is recorded, TableLoaded lets the validator judge
// the table's content while the indexes are built. built is called once
// they are: what is left (attaching the key, constraints) mostly waits for
// the validator's read of the table to end, and need not hold a place
// among the --finalize-parallel builds. It runs apart from the loop
// (startClosing) and says whether the table failed; the loop records the
// outcome. Every step is safe to take again: an error (the target away) or
// a resumed run finalizes the table from the start.
func (c *Coordinator) finalizeTable(ctx context.Context, ts *tableState, built func()) (failed bool, err error) {
	ctx, span := c.tracer.Start(ctx, "finalize table")
	defer span.End()
	t := ts.t
	if err := target.SetTableStatus(ctx, c.pool, c.cfg.Run, t.ID(), target.StatusLoaded, ""); err != nil {
		return false, err
	}
	if err := c.countSource(ctx, t); err != nil {
		return false, err
	}
	var failure string
	if ts.created && t.Unlogged(c.cfg.Options.Unlogged) {
		// Before the validator is told to read the table: SET LOGGED
		// rewrites it, and a rewrite is not MVCC-safe. A read whose
		// snapshot was taken before the rewrite committed (and which then
		// waited for its lock) sees the table empty: a run failed so,
		// "10 rows were read, the target has 0".
		var err error
		if failure, err = c.execFinalize(ctx, t, []string{"ALTER TABLE " + schema.QuoteName(t.Target) + " SET LOGGED"}); err != nil {
			return false, err
		}
	}
	if failure == "" {
		if err := broadcast(ctx, c.js, c.cfg.Run, proto.EventTableLoaded, &proto.TableLoaded{V: proto.Version, Run: c.cfg.Run, Table: t.ID()}); err != nil {
			return false, err
		}
	}
	var build, attach []string
	if ts.created {
		build, attach = schema.FinalizeSteps(t, c.db.Policy)
	}
	if failure == "" {
		var err error
		if failure, err = c.execFinalize(ctx, t, build); err != nil {
			return false, err
		}
	}
	built()
	if failure == "" {
		if failure, err = c.execFinalize(ctx, t, attach); err != nil {
			return false, err
		}
	}
	if failure == "" {
		failure = c.resetSequences(ctx, t)
	}
	if failure != "" {
		if err := target.SetTableStatus(ctx, c.pool, c.cfg.Run, t.ID(), target.StatusFailed, failure); err != nil {
			return false, err
		}
		c.log.ErrorContext(ctx, "finalize failed", "table", t.ID(), "err", failure)
		return true, broadcast(ctx, c.js, c.cfg.Run, proto.EventTableFinalized,
			&proto.TableFinalized{V: proto.Version, Run: c.cfg.Run, Table: t.ID(), Error: failure, Content: true})
	}
	if err := target.SetTableStatus(ctx, c.pool, c.cfg.Run, t.ID(), target.StatusFinalized, ""); err != nil {
		return false, err
	}
	c.log.InfoContext(ctx, "table finalized", "table", t.ID())
	return false, broadcast(ctx, c.js, c.cfg.Run, proto.EventTableFinalized,
		&proto.TableFinalized{V: proto.Version, Run: c.cfg.Run, Table: t.ID(), Content: true})
}

// execFinalize runs finalize statements in order, each an audit row, and
// returns the first failure; an error is an outage, after which the table
// is finalized again.
func (c *Coordinator) execFinalize(ctx context.Context, t *schema.Table, stmts []string) (string, error) {
	for _, stmt := range stmts {
		started := time.Now()
		_, err := c.pool.Exec(ctx, stmt)
		if pgutil.IsTransient(err) {
			return "", fmt.Errorf("finalize %s: %w", t.ID(), err) // tried again once the target is back
		}
		if alreadyDone(err) {
			err = nil // an earlier try got this far before the target went away
		}
		entry := target.AuditEntry{Table: t.ID(), Operation: "finalize", Status: "ok", Started: started, Metadata: map[string]any{"sql": stmt}}
		if err != nil {
			entry.Status, entry.Error = "failed", err.Error()
		}
		c.audit(ctx, entry)
		if err != nil {
			return fmt.Sprintf("%s: %v", firstLine(stmt), err), nil
		}
	}
	return "", nil
}

// countSource records the source's own count of a loaded table for the
// validator's count level: independent of the plan and the reader, so rows
// they never read cannot pass unseen. It is taken in the run's snapshot,
// which is held until every table is loaded; a source without one is
// counted live, now that the table is loaded. A count that cannot be taken
// is recorded with its reason (the verdict says it), unless the source is
// merely away, when finalization is tried again.
func (c *Coordinator) countSource(ctx context.Context, t *schema.Table) error {
	started := time.Now()
	n, exact, err := c.src.Count(ctx, t, c.snapID)
	if pgutil.IsTransient(err) {
		return fmt.Errorf("count %s on the source: %w", t.ID(), err)
	}
	rows, how := &n, target.CountLive
	if exact {
		how = target.CountSnapshot
	}
	entry := target.AuditEntry{Table: t.ID(), Operation: "source_count", Rows: rows, Status: "ok", Started: started, Metadata: map[string]any{"how": how}}
	if err != nil {
		rows, how = nil, "could not count the source: "+err.Error()
		entry.Rows, entry.Status, entry.Error = nil, "failed", err.Error()
	}
	c.audit(ctx, entry)
	return target.SetSourceCount(ctx, c.pool, c.cfg.Run, t.ID(), rows, how)
}

// alreadyDone recognises a finalize statement that an interrupted earlier
// try already applied: the index, constraint or key exists.
func alreadyDone(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "42P07", // relation (index) already exists
		"42710", // constraint already exists
		"42P16": // multiple primary keys
		return true
	}
	return false
}

// resetSequences restarts identity and serial sequences at the value the
// source would have given next (max + increment, on the seed's step), so
// the application's next insert neither collides with a migrated row nor
// leaves the source's numbering.
func (c *Coordinator) resetSequences(ctx context.Context, t *schema.Table) string {
	for _, r := range schema.SequenceResets(t) {
		var last *int64
		if err := c.pool.QueryRow(ctx, r.LastSQL).Scan(&last); err != nil {
			return fmt.Sprintf("sequence of %s: %v", r.Column, err)
		}
		if last == nil {
			continue // empty table: the sequence keeps its start
		}
		stmt := r.Restart(r.Next(*last))
		_, err := c.pool.Exec(ctx, stmt)
		entry := target.AuditEntry{Table: t.ID(), Operation: "finalize", Status: "ok", Metadata: map[string]any{"sql": stmt}}
		if err != nil {
			entry.Status, entry.Error = "failed", err.Error()
		}
		c.audit(ctx, entry)
		if err != nil {
			return fmt.Sprintf("%s: %v", stmt, err)
		}
	}
	return ""
}

// foreignKeys adds every foreign key between finalized tables as NOT VALID
// and then validates it: a violation fails that key alone, and the
// validator's fk level names the orphans.
func (c *Coordinator) foreignKeys(ctx context.Context) error {
	ctx, span := c.tracer.Start(ctx, "foreign keys")
	defer span.End()
	var problems []string
	ids := make([]string, 0, len(c.tables))
	for id := range c.tables {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		ts := c.tables[id]
		if !ts.created || !ts.finalized {
			continue
		}
		for _, fk := range ts.t.ForeignKeys {
			ref := c.db.Table(fk.RefTable)
			if ref == nil || !c.tables[ref.ID()].finalized {
				problems = append(problems, fmt.Sprintf("%s: foreign key %s skipped, %s did not load", id, fk.Name, fk.RefTable))
				continue
			}
			add, validate, err := c.db.ForeignKeySQL(ts.t, fk)
			if err != nil {
				return err
			}
			stmts, err := c.pendingFK(ctx, ts.t, fk, add, validate)
			if err != nil {
				return err
			}
			for _, stmt := range stmts {
				started := time.Now()
				_, err := c.pool.Exec(ctx, stmt)
				entry := target.AuditEntry{Table: id, Operation: "foreign_key", Status: "ok", Started: started, Metadata: map[string]any{"sql": stmt}}
				if err != nil {
					entry.Status, entry.Error = "failed", err.Error()
					problems = append(problems, fmt.Sprintf("%s: %v", firstLine(stmt), err))
				}
				c.audit(ctx, entry)
				if err != nil {
					break
				}
			}
		}
	}
	c.fksDone = true
	ev := &proto.ForeignKeysCreated{V: proto.Version, Run: c.cfg.Run}
	if len(problems) > 0 {
		ev.Error = fmt.Sprint(problems)
		c.log.ErrorContext(ctx, "foreign keys", "problems", problems)
	}
	return broadcast(ctx, c.js, c.cfg.Run, proto.EventForeignKeys, ev)
}

func sorted(s []string) []string {
	sort.Strings(s)
	return s
}

// pendingFK drops the steps a resumed run already took for a foreign key.
func (c *Coordinator) pendingFK(ctx context.Context, t *schema.Table, fk *schema.ForeignKey, add, validate string) ([]string, error) {
	var exists, valid bool
	err := c.pool.QueryRow(ctx, `SELECT count(*) > 0, coalesce(bool_and(convalidated), false) FROM pg_constraint
		WHERE conrelid = $1::regclass AND conname = $2`, schema.QuoteName(t.Target), c.db.Policy.Ident(fk.Name)).Scan(&exists, &valid)
	if err != nil {
		return nil, fmt.Errorf("foreign key %s: %w", fk.Name, err)
	}
	switch {
	case exists && valid:
		return nil, nil
	case exists:
		return []string{validate}, nil
	}
	return []string{add, validate}, nil
}
