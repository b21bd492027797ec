package coordinator

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/source"
	"github.com/caravan-db/caravan/target"
)

// Resume finishes a run from the state in the target alone: chunks that
// were fully loaded stay, every other chunk gets a new attempt read in a
// new snapshot after the rows of its earlier attempts are removed, and the
// run then goes on as usual. The old snapshot died with the old
// coordinator, so the rows a resumed run copies are those of the source as
// it is now; a source that changed meanwhile should be copied anew.
func Resume(ctx context.Context, src source.Source, pool *pgxpool.Pool, js jetstream.JetStream, cfg Config) error {
	run, err := target.LoadRun(ctx, pool, cfg.Run)
	if err != nil {
		return err
	}
	if run.Model == nil {
		return fmt.Errorf("run %s has no recorded plan: start a new run", run.ID)
	}
	if err := optionsFromRecord(run.Config, &cfg.Options); err != nil {
		return fmt.Errorf("run %s options: %w", run.ID, err)
	}
	c := New(src, pool, js, cfg)
	c.db = run.Model
	defer c.releaseSnapshot(ctx)

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
	c.audit(ctx, target.AuditEntry{Operation: "resume", Status: "ok", Metadata: map[string]any{"consistency": snap.Note}})

	states, err := target.Tables(ctx, pool, run.ID)
	if err != nil {
		return err
	}
	verdicts, err := target.Verdicts(ctx, pool, run.ID)
	if err != nil {
		return err
	}
	for _, st := range states {
		t := findTable(c.db, st.Table)
		if t == nil {
			return fmt.Errorf("run %s: table %s missing from the recorded plan", run.ID, st.Table)
		}
		ts := &tableState{t: t, created: st.Created}
		c.tables[st.Table] = ts
		switch st.Status {
		case target.StatusFinalized:
			ts.finalized = true
			if v := tableVerdict(run.ID, st.Table, verdicts); v != nil {
				ts.verdict = v
			} else if err := broadcast(ctx, js, run.ID, proto.EventTableFinalized, &proto.TableFinalized{V: proto.Version, Run: run.ID, Table: st.Table}); err != nil {
				return err
			}
			continue
		case target.StatusLoaded:
			// Finalization was under way: chunks are complete, finish it.
			if err := c.finalizeTable(ctx, ts); err != nil {
				return err
			}
			continue
		}
		if err := c.restartTable(ctx, t); err != nil {
			return err
		}
		if err := target.SetTableStatus(ctx, pool, run.ID, st.Table, target.StatusPending, ""); err != nil {
			return err
		}
		if err := c.publishChunks(ctx, t, nil); err != nil {
			return err
		}
	}
	return c.track(ctx)
}

// restartTable gives every unfinished chunk of a table a new attempt. Where
// the target can re-select a chunk's key range, only that range's rows are
// removed; otherwise (keyless tables, sources that order keys differently)
// a partly loaded chunk means the whole table starts over.
func (c *Coordinator) restartTable(ctx context.Context, t *schema.Table) error {
	chunks, err := target.Chunks(ctx, c.pool, c.cfg.Run, t.ID())
	if err != nil {
		return err
	}
	rangeSafe := t.RangeSafe && len(t.PrimaryKey) > 0
	wholeTable := false
	for _, ch := range chunks {
		if ch.Status == target.StatusLoaded {
			continue
		}
		partial, err := target.HasLedgerRows(ctx, c.pool, c.cfg.Run, t.ID(), ch.Chunk)
		if err != nil {
			return err
		}
		if partial && !rangeSafe {
			wholeTable = true
		}
	}
	if wholeTable {
		if _, err := c.pool.Exec(ctx, "TRUNCATE "+schema.QuoteName(t.Target)); err != nil {
			return fmt.Errorf("restart %s: %w", t.ID(), err)
		}
		c.audit(ctx, target.AuditEntry{Table: t.ID(), Operation: "resume_truncate", Status: "ok"})
	}
	for _, ch := range chunks {
		if ch.Status == target.StatusLoaded && !wholeTable {
			continue
		}
		where, args := "", []any(nil)
		if rangeSafe && !wholeTable {
			where, args = keyRangeOnTarget(t, ch)
		}
		if err := target.RestartChunk(ctx, c.pool, c.cfg.Run, t.Target, t.ID(), ch.Chunk, ch.Attempt+1, where, args...); err != nil {
			return err
		}
	}
	return nil
}

func keyRangeOnTarget(t *schema.Table, ch target.ChunkState) (string, []any) {
	cols := make([]string, len(t.PrimaryKey))
	types := make([]string, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		col := t.Column(k)
		cols[i], types[i] = schema.Quote(col.TargetName), col.Type
	}
	return pgutil.RangePredicate(cols, types, ch.Lo, ch.Hi, 0)
}

func tableVerdict(run, table string, rows []target.VerdictRow) *proto.Verdict {
	var v *proto.Verdict
	for _, r := range rows {
		if r.Table != table || r.Level == LevelFK {
			continue
		}
		if v == nil {
			v = &proto.Verdict{V: proto.Version, Run: run, Table: table, Level: LevelTable, OK: true}
		}
		if !r.OK {
			v.OK = false
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
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return err
	}
	*o = Options{Filter: schema.Filter{Include: r.Include, Exclude: r.Exclude}, NameCase: r.NameCase, SchemaMap: r.SchemaMap,
		Mode: r.Mode, RowsPerChunk: r.RowsPerChunk, BatchBytes: r.BatchBytes, BatchRows: r.BatchRows, Unlogged: r.Unlogged, Validation: r.Validation}
	o.Defaults()
	return nil
}
