package coordinator

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/target"
)

// createTables prepares every target table according to the mode, in one
// transaction: a refused table leaves the target as it was.
func (c *Coordinator) createTables(ctx context.Context, plan *Plan) error {
	ctx, span := c.tracer.Start(ctx, "create tables")
	defer span.End()
	started := time.Now()
	tx, err := c.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("create tables: %w", err)
	}
	defer tx.Rollback(ctx)

	mode, unlogged := c.cfg.Options.Mode, c.cfg.Options.Unlogged
	var stmts []string
	for _, s := range plan.DB.TargetSchemas() {
		stmts = append(stmts, schema.CreateSchema(s))
	}
	if err := execAll(ctx, tx, stmts); err != nil {
		return err
	}
	if err := createExtensions(ctx, tx, plan.DB); err != nil {
		return err
	}
	created := map[string]bool{}
	for _, t := range plan.DB.Tables {
		exists, rows, err := lookupTable(ctx, tx, t.Target)
		if err != nil {
			return err
		}
		switch {
		case exists && mode == ModeCreate && rows:
			return fmt.Errorf("table %s already exists and holds rows: choose --mode truncate to empty it or --mode drop-recreate to replace it", schema.QuoteName(t.Target))
		case exists && mode == ModeTruncate:
			if err := execAll(ctx, tx, []string{"TRUNCATE " + schema.QuoteName(t.Target)}); err != nil {
				return err
			}
		case exists:
			// drop-recreate, or create over an empty table: nothing is lost.
			if err := execAll(ctx, tx, []string{"DROP TABLE " + schema.QuoteName(t.Target) + " CASCADE"}); err != nil {
				return err
			}
			created[t.ID()] = true
		default:
			created[t.ID()] = true
		}
	}
	if err := c.createTypes(ctx, tx, plan.DB); err != nil {
		return err
	}
	for _, s := range plan.DB.Sequences {
		if err := execAll(ctx, tx, schema.CreateSequence(s)); err != nil {
			return fmt.Errorf("create sequence %s: %w", schema.QuoteName(s.Name), err)
		}
	}
	for _, t := range plan.DB.Tables {
		if !created[t.ID()] {
			continue
		}
		create, err := plan.DB.CreateTable(t, unlogged)
		if err != nil {
			return err
		}
		stmts := append(schema.CreateSequences(t), create)
		if err := execAll(ctx, tx, stmts); err != nil {
			return fmt.Errorf("create table %s: %w", schema.QuoteName(t.Target), err)
		}
	}
	if err := execAll(ctx, tx, plan.DB.SequenceOwners()); err != nil {
		return err
	}
	refused, err := c.createViews(ctx, tx, plan.DB)
	if err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("create tables: %w", err)
	}
	for _, v := range plan.DB.Views {
		c.audit(ctx, target.AuditEntry{Operation: "create_view", Status: "ok", Started: started,
			Metadata: map[string]any{"name": v.Name, "sql": v.SQL}})
	}
	for _, u := range refused {
		c.audit(ctx, target.AuditEntry{Operation: "not_migrated", Status: "accepted", Started: started,
			Metadata: map[string]any{"kind": u.Kind, "name": u.Name, "reason": u.Reason, "accepted_by": c.cfg.Options.AcceptedBy(u)}})
	}
	for _, t := range plan.DB.Tables {
		c.tables[t.ID()] = &tableState{t: t, created: created[t.ID()]}
		op := "truncate_table"
		if created[t.ID()] {
			op = "create_table"
		}
		c.audit(ctx, target.AuditEntry{Table: t.ID(), Operation: op, Status: "ok", Started: started,
			Metadata: map[string]any{"source": t.Source.String(), "mode": mode, "unlogged": t.Unlogged(unlogged) && created[t.ID()]}})
	}
	return nil
}

// createViews creates the views translated from the source (db.Views) with
// the tables, before any row is copied: they do not slow the load, and a
// view the target refuses is known before anything is copied. Each is
// tried in a savepoint, in order (views on views after the views they
// use); one refused, or that uses one refused, joins db.Unmigrated with
// the target's error, and the run refuses to start unless the user
// accepts it (--accept-unmigrated), as for what planning lists. Accepted,
// the run's recorded model says so (the report reads it). CREATE OR
// REPLACE: with --mode truncate the views of an earlier run are there.
func (c *Coordinator) createViews(ctx context.Context, tx pgx.Tx, db *schema.Database) ([]*schema.Unmigrated, error) {
	if len(db.Views) == 0 {
		return nil, nil
	}
	var refused []*schema.Unmigrated
	failed := map[string]bool{}
	kept := db.Views[:0]
	for _, v := range db.Views {
		reason := ""
		for _, n := range v.Needs {
			if failed[n] {
				reason = "it uses view " + n + ", which is not migrated"
				break
			}
		}
		if reason == "" {
			err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error { return execAll(ctx, sp, v.SQL) })
			if pgutil.IsTransient(err) {
				return nil, fmt.Errorf("create view %s: %w", v.Name, err)
			}
			if err != nil {
				reason = "PostgreSQL refused its translation: " + err.Error()
			}
		}
		if reason == "" {
			kept = append(kept, v)
			continue
		}
		failed[v.Name] = true
		c.log.WarnContext(ctx, "view not created", "view", v.Name, "reason", reason)
		refused = append(refused, &schema.Unmigrated{Kind: v.Kind, Name: v.Name, Reason: reason})
	}
	if len(refused) == 0 {
		return nil, nil
	}
	db.Views = kept
	db.Unmigrated = append(db.Unmigrated, refused...)
	if err := c.cfg.Options.CheckUnmigrated(db); err != nil {
		return nil, err
	}
	return refused, target.SetRunModel(ctx, tx, c.cfg.Run, db)
}

// createExtensions creates the source's extensions the target lacks. One
// the target's server does not have (pg_available_extensions) stops the
// run before anything is copied, naming it: types, indexes or constraints
// may need it, and CREATE EXTENSION would fail with a less helpful message.
func createExtensions(ctx context.Context, tx pgx.Tx, db *schema.Database) error {
	for _, e := range db.Extensions {
		var installed, available bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = $1),
			EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = $1)`, e.Name).Scan(&installed, &available)
		if err != nil {
			return fmt.Errorf("look up extension %s: %w", e.Name, err)
		}
		if installed {
			continue
		}
		if !available {
			return fmt.Errorf("extension %q is installed on the source but not available on the target server: install it there (its package, e.g. postgresql-contrib) and run again", e.Name)
		}
		if err := execAll(ctx, tx, []string{schema.CreateExtension(e)}); err != nil {
			return fmt.Errorf("extension %s: %w", e.Name, err)
		}
	}
	return nil
}

// createTypes creates the user-defined types that do not exist yet,
// dependencies first.
func (c *Coordinator) createTypes(ctx context.Context, tx pgx.Tx, db *schema.Database) error {
	var stmts []string
	for _, t := range db.Types {
		if ok, err := typeExists(ctx, tx, t.Name); err != nil || ok {
			if err != nil {
				return err
			}
			continue
		}
		stmts = append(stmts, schema.CreateType(t))
		if c := schema.CommentOnType(t); c != "" {
			stmts = append(stmts, c)
		}
	}
	return execAll(ctx, tx, stmts)
}

func typeExists(ctx context.Context, tx pgx.Tx, n schema.Name) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, "SELECT to_regtype($1) IS NOT NULL", schema.QuoteName(n)).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("look up type %s: %w", n, err)
	}
	return ok, nil
}

// keepTextForExisting sets COPY text for the tables --mode truncate keeps:
// they have their own DDL, whose column types may differ from the source's
// (an integer loaded into a bigint, text into varchar), which COPY text
// converts and binary COPY refuses. It runs before the model is recorded,
// so the validator, resume and sync read each table in the encoding its
// rows were loaded in.
func (c *Coordinator) keepTextForExisting(ctx context.Context, db *schema.Database) error {
	if c.cfg.Options.Mode != ModeTruncate {
		return nil // every table is created by the run
	}
	for _, t := range db.Tables {
		if t.Encoding != proto.EncodingCopyBinary {
			continue
		}
		var exists bool
		if err := c.pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", schema.QuoteName(t.Target)).Scan(&exists); err != nil {
			return fmt.Errorf("look up table %s: %w", schema.QuoteName(t.Target), err)
		}
		if exists {
			t.Encoding = proto.EncodingCopyText
		}
	}
	return nil
}

func lookupTable(ctx context.Context, tx pgx.Tx, n schema.Name) (exists, hasRows bool, err error) {
	if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", schema.QuoteName(n)).Scan(&exists); err != nil {
		return false, false, fmt.Errorf("look up table %s: %w", n, err)
	}
	if !exists {
		return false, false, nil
	}
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+schema.QuoteName(n)+")").Scan(&hasRows); err != nil {
		return false, false, fmt.Errorf("look into table %s: %w", n, err)
	}
	return true, hasRows, nil
}

func execAll(ctx context.Context, tx pgx.Tx, stmts []string) error {
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", firstLine(s), err)
		}
	}
	return nil
}

func firstLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i] + " ..."
		}
	}
	return s
}
