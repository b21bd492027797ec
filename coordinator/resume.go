package coordinator

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/source"
	"github.com/caravan-db/caravan/target"
)

// Resume finishes a run from the state in the target alone, and repairs
// what it can of a run that ended failed. Chunks that were fully loaded
// stay; every other chunk gets a new attempt read in a new snapshot after
// the rows of its earlier attempts are removed; a table whose content
// failed validation is loaded again whole; a run refused at setup is
// planned again. Stale verdicts go with the data they judged, so the
// report, caravan.runs and the exit code all speak of the resumed run.
// The old snapshot died with the old coordinator, so the rows a resumed run
// copies are those of the source as it is now.
func Resume(ctx context.Context, src source.Source, pool *pgxpool.Pool, js jetstream.JetStream, cfg Config) error {
	run, err := target.LoadRun(ctx, pool, cfg.Run)
	if err != nil {
		return err
	}
	if kind, _ := run.Config["kind"].(string); kind != "" && kind != "migrate" {
		// A verification's record holds verdicts but no ledger: resuming
		// it as a migration would load (or empty) tables it never touched.
		return fmt.Errorf("run %s is a %s run, not a migration: nothing to resume (run caravan %s again)", run.ID, kind, kind)
	}
	if run.Model == nil {
		return fmt.Errorf("run %s stopped before its plan was recorded: nothing to resume; start a new run with caravan migrate", run.ID)
	}
	// The run's options are its own, but source options given to the
	// resume (say, --invalid-text replace after a run failed on bad text)
	// override the recorded ones for the chunks it reads.
	given := cfg.Options.SourceOptions
	if err := optionsFromRecord(run.Config, &cfg.Options); err != nil {
		return fmt.Errorf("run %s options: %w", run.ID, err)
	}
	for k, v := range given {
		if cfg.Options.SourceOptions == nil {
			cfg.Options.SourceOptions = map[string]string{}
		}
		cfg.Options.SourceOptions[k] = v
	}
	if len(given) > 0 {
		// Recorded, or a later resume without the flags would read the
		// rest of the run the old way.
		if err := target.SetRunSourceOptions(ctx, pool, run.ID, cfg.Options.SourceOptions); err != nil {
			return err
		}
	}
	c := New(src, pool, js, cfg)
	if run.Status == target.RunSucceeded {
		c.log.InfoContext(ctx, "run already succeeded: nothing to resume; start a new run to copy the source again")
		return nil
	}
	defer c.keepAlive(ctx)()
	defer c.releaseSnapshot(ctx)
	states, err := target.Tables(ctx, pool, run.ID)
	if err != nil {
		return err
	}
	switch {
	case len(states) == 0:
		// Setup is all or nothing (createTables is one transaction), so a
		// run refused there left nothing behind: plan it again, now that
		// the user may have fixed the cause.
		c.log.InfoContext(ctx, "the run stopped before loading anything: planning it again")
		if err := c.start(ctx); err != nil {
			return err
		}
		return c.track(ctx)
	case len(states) < len(run.Model.Tables):
		return fmt.Errorf("run %s stopped while recording its plan (%d of %d tables): it cannot be resumed; start a new run with caravan migrate --mode drop-recreate",
			run.ID, len(states), len(run.Model.Tables))
	}
	c.db = run.Model

	snap, err := src.Snapshot(ctx)
	if err != nil {
		return err
	}
	c.snapshot, c.snapID = snap, snap.ID
	if err := target.SetRunSnapshot(ctx, pool, run.ID, snap.ID, snap.Note); err != nil {
		return err
	}
	if err := target.SetRunStatus(ctx, pool, run.ID, target.RunLoading, ""); err != nil {
		return err
	}
	c.audit(ctx, target.AuditEntry{Operation: "resume", Status: "ok", Metadata: map[string]any{"consistency": snap.Note, "was": run.Status}})

	verdicts, err := target.Verdicts(ctx, pool, run.ID)
	if err != nil {
		return err
	}
	// Foreign keys are judged again once every table is in: the verdict of
	// the interrupted run may predate tables loaded now.
	if err := target.DeleteVerdicts(ctx, pool, run.ID, "*"); err != nil {
		return err
	}
	var restart, reload, judge []*tableState
	for _, st := range states {
		t := findTable(c.db, st.Table)
		if t == nil {
			return fmt.Errorf("run %s: table %s missing from the recorded plan", run.ID, st.Table)
		}
		ts := &tableState{t: t, created: st.Created}
		c.tables[st.Table] = ts
		v := tableVerdict(run.ID, st.Table, verdicts, cfg.Options.Validation)
		switch {
		case st.Status == target.StatusFinalized && v != nil && v.OK:
			ts.finalized, ts.verdict = true, v
		case st.Status == target.StatusFinalized && v != nil:
			c.log.WarnContext(ctx, "table failed validation: loading it again", "table", st.Table, "verdict", v.Detail)
			reload = append(reload, ts)
		case st.Status == target.StatusFinalized:
			// Finalized but not judged yet: ask the validator again (it
			// judges a table once; a second request returns its verdict).
			ts.finalized = true
			judge = append(judge, ts)
		default:
			// Loading, loaded (finalization under way) or failed (chunks
			// rejected, or finalization refused): chunks not loaded start
			// over, and tables whose chunks are all loaded are finalized.
			restart = append(restart, ts)
		}
	}
	if err := c.dropForeignKeysOf(ctx, reload); err != nil {
		return err
	}
	for _, ts := range reload {
		if err := c.forgetTable(ctx, ts); err != nil {
			return err
		}
		if _, err := target.RestartTable(ctx, pool, run.ID, ts.t.Target, ts.t.ID(), true); err != nil {
			return err
		}
		c.audit(ctx, target.AuditEntry{Table: ts.t.ID(), Operation: "resume_reload", Status: "ok"})
		if err := c.publishChunks(ctx, ts.t, nil); err != nil {
			return err
		}
	}
	for _, ts := range restart {
		if err := c.forgetTable(ctx, ts); err != nil {
			return err
		}
		if err := c.restartTable(ctx, ts.t); err != nil {
			return err
		}
		if err := c.publishChunks(ctx, ts.t, nil); err != nil {
			return err
		}
	}
	for _, ts := range judge {
		if err := broadcast(ctx, js, run.ID, proto.EventTableFinalized, &proto.TableFinalized{V: proto.Version, Run: run.ID, Table: ts.t.ID()}); err != nil {
			return err
		}
	}
	return c.track(ctx)
}

// forgetTable returns a table to pending and drops its verdicts: what is
// loaded again is judged again.
func (c *Coordinator) forgetTable(ctx context.Context, ts *tableState) error {
	if err := target.DeleteVerdicts(ctx, c.pool, c.cfg.Run, ts.t.ID()); err != nil {
		return err
	}
	return target.SetTableStatus(ctx, c.pool, c.cfg.Run, ts.t.ID(), target.StatusPending, "")
}

// dropForeignKeysOf drops the foreign keys caravan created from or to the
// given tables, so they can be emptied and loaded again; the run's foreign
// key step creates and validates them anew once every table is in.
func (c *Coordinator) dropForeignKeysOf(ctx context.Context, tables []*tableState) error {
	if len(tables) == 0 {
		return nil
	}
	reloaded := map[string]bool{}
	for _, ts := range tables {
		reloaded[ts.t.ID()] = true
	}
	for _, t := range c.db.Tables {
		for _, fk := range t.ForeignKeys {
			ref := c.db.Table(fk.RefTable)
			if !reloaded[t.ID()] && (ref == nil || !reloaded[ref.ID()]) {
				continue
			}
			stmt := "ALTER TABLE IF EXISTS " + schema.QuoteName(t.Target) + " DROP CONSTRAINT IF EXISTS " + schema.Quote(c.db.Policy.Ident(fk.Name))
			if _, err := c.pool.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("resume: drop foreign key %s of %s before reloading: %w", fk.Name, t.ID(), err)
			}
			c.audit(ctx, target.AuditEntry{Table: t.ID(), Operation: "resume_drop_foreign_key", Status: "ok", Metadata: map[string]any{"sql": stmt}})
		}
	}
	return nil
}

// restartTable gives every unfinished chunk of a table a new attempt. Where
// the target can re-select a chunk's key range, only that range's rows are
// removed, chunk by chunk, each in the transaction that moves its attempt.
// Otherwise (keyless tables, sources that order keys differently) a partly
// loaded chunk means the whole table starts over, decided and done in one
// step that old batches cannot slip into (target.RestartTable).
func (c *Coordinator) restartTable(ctx context.Context, t *schema.Table) error {
	if !t.RangeSafe || len(t.PrimaryKey) == 0 {
		emptied, err := target.RestartTable(ctx, c.pool, c.cfg.Run, t.Target, t.ID(), false)
		if err == nil && emptied {
			c.audit(ctx, target.AuditEntry{Table: t.ID(), Operation: "resume_truncate", Status: "ok"})
		}
		return err
	}
	chunks, err := target.Chunks(ctx, c.pool, c.cfg.Run, t.ID())
	if err != nil {
		return err
	}
	for _, ch := range chunks {
		if ch.Status == target.StatusLoaded {
			continue
		}
		where, args := target.KeyRange(t, ch, false)
		if err := target.RestartChunk(ctx, c.pool, c.cfg.Run, t.Target, t.ID(), ch.Chunk, ch.Attempt+1, where, args...); err != nil {
			return err
		}
	}
	return nil
}

// tableVerdict is a table's verdict from its recorded rows: failed when
// any level failed, passed only when every level the run asks for passed
// (a table's content and keys are judged apart, so a coordinator killed
// between the two leaves some levels recorded), nil otherwise.
func tableVerdict(run, table string, rows []target.VerdictRow, levels []string) *proto.Verdict {
	var v *proto.Verdict
	have := map[string]bool{}
	for _, r := range rows {
		if r.Table != table || r.Level == LevelFK {
			continue
		}
		if v == nil {
			v = &proto.Verdict{V: proto.Version, Run: run, Table: table, Level: LevelTable, OK: true}
		}
		have[r.Level] = true
		if !r.OK {
			v.OK = false
		}
	}
	if v != nil && v.OK {
		for _, l := range levels {
			if l != LevelFK && l != "none" && !have[l] {
				return nil // judged in part: asked again
			}
		}
	}
	return v
}

func findTable(db *schema.Database, id string) *schema.Table {
	for _, t := range db.Tables {
		if t.ID() == id {
			return t
		}
	}
	return nil
}

// RecordedOptions are the options a run was started with, as recorded in
// caravan.runs: caravan sync reads the run's tables with them.
func RecordedOptions(run *target.Run) (Options, error) {
	var o Options
	err := optionsFromRecord(run.Config, &o)
	return o, err
}

// optionsFromRecord reads back the options CreateRun stored.
func optionsFromRecord(rec map[string]any, o *Options) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	var r struct {
		Include      []string          `json:"include"`
		Exclude      []string          `json:"exclude"`
		NameCase     string            `json:"name_case"`
		SchemaMap    map[string]string `json:"schema_map"`
		Mode         string            `json:"mode"`
		RowsPerChunk int64             `json:"rows_per_chunk"`
		BatchBytes   int               `json:"batch_bytes"`
		BatchRows    int               `json:"batch_rows"`
		Unlogged     bool              `json:"unlogged"`
		Validation   []string          `json:"validation"`
		Source       map[string]string `json:"source_options"`
		Accept       []string          `json:"accept_unmigrated"`
		OwnersGrants bool              `json:"owners_and_grants"`
		CopyFormat   string            `json:"copy_format"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return err
	}
	*o = Options{Filter: schema.Filter{Include: r.Include, Exclude: r.Exclude}, NameCase: r.NameCase, SchemaMap: r.SchemaMap,
		Mode: r.Mode, RowsPerChunk: r.RowsPerChunk, BatchBytes: r.BatchBytes, BatchRows: r.BatchRows, Unlogged: r.Unlogged, Validation: r.Validation,
		SourceOptions: r.Source, AcceptUnmigrated: r.Accept, OwnersAndGrants: r.OwnersGrants, CopyFormat: r.CopyFormat}
	o.Defaults()
	return nil
}
