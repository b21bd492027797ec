package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/caravan-db/caravan/broker"
	"github.com/caravan-db/caravan/coordinator"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/source"
)

// CheckTask is one check of a distributed verification, as published on
// proto.ChecksSubject: everything a verifier needs to run the same check
// the in-process verification runs, in the verification's snapshot.
type CheckTask struct {
	Run   string
	Table *schema.Table
	// Chunk is the chunk's index, -1 for a table compared whole; Chunks
	// holds that chunk, or every chunk of the whole table.
	Chunk         int
	Chunks        []source.Chunk
	Snapshot      string
	SourceOptions map[string]string
	SubRows       int64
	MaxRowText    int
}

// task is the check as a CheckTask.
func (v *Verifier) checkTask(run string, c *check) *CheckTask {
	t := &CheckTask{Run: run, Table: c.table, Chunk: c.index, Chunks: c.all, Snapshot: v.snap,
		SourceOptions: v.cfg.Options.SourceOptions, SubRows: v.cfg.SubRows, MaxRowText: v.cfg.MaxRowText}
	if c.chunk != nil {
		t.Chunks = []source.Chunk{*c.chunk}
	}
	return t
}

// checkOf is a CheckTask as the check it stands for.
func checkOf(t *CheckTask) *check {
	c := &check{t: &Table{Table: t.Table.ID()}, table: t.Table, index: t.Chunk}
	if t.Chunk >= 0 && len(t.Chunks) == 1 {
		c.chunk = &t.Chunks[0]
	} else {
		c.all = t.Chunks
	}
	return c
}

// checksDDL keeps the outcome of each check of a distributed verification:
// one row per check, written once (the first verifier to finish it wins),
// so a redelivered check is never counted twice.
const checksDDL = `CREATE TABLE IF NOT EXISTS caravan.checks (
	run_id   text NOT NULL,
	table_id text NOT NULL,
	chunk    integer NOT NULL,
	outcome  jsonb,
	error    text,
	worker   text NOT NULL,
	finished timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (run_id, table_id, chunk))`

// RunOn is Run with the checks done by `caravan verifier` workers: it
// publishes them on the broker (the caller has made the checks stream and
// consumer, broker.EnsureChecks), holds the snapshot they join, and waits
// for their outcomes in the target's caravan.checks, saying what it waits
// for when nothing moves.
func (v *Verifier) RunOn(ctx context.Context, js jetstream.JetStream, run string) (*Result, error) {
	return v.verify(ctx, func(ctx context.Context, checks []*check, finish func(*check, outcome)) error {
		return v.dispatch(ctx, js, run, checks, finish)
	})
}

// checkKey names a check in caravan.checks.
type checkKey struct {
	table string
	chunk int
}

func (v *Verifier) dispatch(ctx context.Context, js jetstream.JetStream, run string, checks []*check, finish func(*check, outcome)) error {
	if _, err := v.pool.Exec(ctx, checksDDL); err != nil {
		return fmt.Errorf("verify: create caravan.checks on the target: %w", err)
	}
	// Whatever is left when the verification ends (an error, an
	// interruption) would only be taken for nothing.
	defer func() {
		if s, err := js.Stream(context.WithoutCancel(ctx), proto.StreamChecks); err == nil {
			_ = s.Purge(context.WithoutCancel(ctx), jetstream.WithPurgeSubject(proto.ChecksSubject(run)))
		}
	}()
	pending := map[checkKey]*check{}
	for _, c := range checks {
		data, err := json.Marshal(v.checkTask(run, c))
		if err != nil {
			return fmt.Errorf("verify: encode the check of %s: %w", c.name(), err)
		}
		m := &nats.Msg{Subject: proto.ChecksSubject(run), Data: data, Header: nats.Header{}}
		m.Header.Set(proto.HeaderMsgID, fmt.Sprintf("%s.%s.%d", run, c.table.ID(), c.index))
		if err := broker.PublishPatiently(ctx, js, m, 0); err != nil {
			return fmt.Errorf("verify: publish the check of %s: %w", c.name(), err)
		}
		pending[checkKey{c.table.ID(), c.index}] = c
	}
	v.cfg.Log.InfoContext(ctx, "verify: checks published for the verifiers", "run", run, "checks", len(checks))
	cons, _ := js.Consumer(ctx, proto.StreamChecks, proto.ConsumerVerifiers)
	moved := time.Now()
	for len(pending) > 0 {
		n, err := v.collect(ctx, run, pending, finish)
		if err != nil {
			return err
		}
		if n > 0 {
			moved = time.Now()
		}
		if len(pending) == 0 {
			break
		}
		if time.Since(moved) >= waitSay {
			v.sayWaiting(ctx, cons, pending, len(checks), time.Since(moved))
			moved = time.Now()
		}
		broker.Pause(ctx, 250*time.Millisecond)
		if ctx.Err() != nil {
			return fmt.Errorf("verify: waiting for %d checks: %w", len(pending), ctx.Err())
		}
	}
	return nil
}

// waitSay is how long a distributed verification waits without news
// before it says what it waits for.
const waitSay = 10 * time.Second

// collect reads the outcomes recorded since the last call, passes them on
// and returns how many there were. A check a verifier could not do fails
// the verification, as it would in process. Only the keys are read on
// every call; an outcome, with its differences, is read once.
func (v *Verifier) collect(ctx context.Context, run string, pending map[checkKey]*check, finish func(*check, outcome)) (int, error) {
	rows, err := v.pool.Query(ctx, `SELECT table_id, chunk FROM caravan.checks WHERE run_id = $1`, run)
	if err != nil {
		return 0, fmt.Errorf("verify: read the checks' outcomes: %w", err)
	}
	var tables []string
	var chunks []int32
	for rows.Next() {
		var k checkKey
		if err := rows.Scan(&k.table, &k.chunk); err != nil {
			rows.Close()
			return 0, fmt.Errorf("verify: read the checks' outcomes: %w", err)
		}
		if pending[k] != nil {
			tables, chunks = append(tables, k.table), append(chunks, int32(k.chunk))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(tables) == 0 {
		return 0, err
	}
	rows, err = v.pool.Query(ctx, `SELECT table_id, chunk, outcome, error FROM caravan.checks
		WHERE run_id = $1 AND (table_id, chunk) IN (SELECT * FROM unnest($2::text[], $3::integer[]))`, run, tables, chunks)
	if err != nil {
		return 0, fmt.Errorf("verify: read the checks' outcomes: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var k checkKey
		var raw []byte
		var failed *string
		if err := rows.Scan(&k.table, &k.chunk, &raw, &failed); err != nil {
			return n, fmt.Errorf("verify: read the checks' outcomes: %w", err)
		}
		c := pending[k]
		if failed != nil {
			return n, fmt.Errorf("verify %s: %s", c.name(), *failed)
		}
		var out outcome
		if err := json.Unmarshal(raw, &out); err != nil {
			return n, fmt.Errorf("verify %s: decode its outcome: %w", c.name(), err)
		}
		delete(pending, k)
		finish(c, out)
		n++
	}
	return n, rows.Err()
}

// sayWaiting says which checks are awaited and whether any verifier has
// them, so a verification without a verifier running does not wait in
// silence.
func (v *Verifier) sayWaiting(ctx context.Context, cons jetstream.Consumer, pending map[checkKey]*check, total int, still time.Duration) {
	var some []string
	for _, c := range pending {
		if len(some) == 3 {
			some = append(some, "...")
			break
		}
		some = append(some, c.name())
	}
	args := []any{"checked", total - len(pending), "of", total, "waiting_for", strings.Join(some, ", "), "no_news_for", still.Round(time.Second).String()}
	if cons != nil {
		if info, err := cons.Info(ctx); err == nil {
			args = append(args, "not_taken", info.NumPending, "in_progress", info.NumAckPending)
			if info.NumAckPending == 0 && info.NumPending > 0 {
				v.cfg.Log.WarnContext(ctx, "verify: no verifier is taking the checks (start `caravan verifier --nats-url` with this broker)", args...)
				return
			}
		}
	}
	v.cfg.Log.InfoContext(ctx, "verify: waiting for the verifiers", args...)
}

// runCheck runs one check of a distributed verification: the very check the
// in-process verification runs, in the verification's snapshot.
func runCheck(ctx context.Context, src source.Source, pool *pgxpool.Pool, task *CheckTask, cfg Config) (outcome, error) {
	if task.Table == nil || len(task.Chunks) == 0 && task.Chunk >= 0 {
		return outcome{}, source.Permanent(errors.New("verify: a check task without its table or chunk"))
	}
	cfg.Options = coordinator.Options{SourceOptions: task.SourceOptions}
	cfg.SubRows, cfg.MaxRowText = task.SubRows, task.MaxRowText
	v := New(src, pool, cfg)
	v.snap = task.Snapshot
	start := time.Now()
	out, err := v.run(ctx, checkOf(task))
	out.Seconds = time.Since(start).Seconds()
	return out, err
}
