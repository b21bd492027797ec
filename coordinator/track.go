package coordinator

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/caravan-db/caravan/broker"
	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/target"
	"github.com/caravan-db/caravan/telemetry"
)

// track follows a run's events until every table has its verdict.
// Completion itself is read from the ledger (CompleteChunks): events carry
// what the extractors read and say when to look again, and the ledger is
// polled every PollEvery besides, so a batch report lost with a dying
// loader delays the run by a poll at most.
func (c *Coordinator) track(ctx context.Context) error {
	// Tables being finalized stop with the loop: what they left undone is
	// done again by a resume (their status still says loaded).
	defer c.closers.Wait()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	cons, err := broker.EventConsumer(ctx, c.js, "coordinator", c.cfg.Run)
	if err != nil {
		return err
	}
	stopLag, err := c.cfg.Metrics.ObserveLag(proto.EventsConsumer("coordinator", c.cfg.Run), broker.LagFunc(cons))
	if err != nil {
		return err
	}
	defer stopLag()
	events := make(chan jetstream.Msg, 64)
	pumpCtx, stopPump := context.WithCancel(ctx)
	defer stopPump()
	go c.pump(pumpCtx, cons, events)

	tick := time.NewTicker(c.cfg.PollEvery)
	defer tick.Stop()
	c.wait.progress()
	for {
		c.sayWaiting(ctx)
		err := c.advance(ctx)
		if err == nil {
			var done bool
			if done, err = c.finished(ctx); done && !pgutil.IsTransient(err) {
				return err
			}
		}
		if err != nil && !c.bearable(ctx, err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		case id := <-c.built:
			delete(c.building, id) // the next table may start building
		case r := <-c.closed:
			if err := c.tableClosed(r); err != nil && !c.bearable(ctx, err) {
				return err
			}
		case msg := <-events:
			// Take what else is waiting too before the next ledger query.
			for more := true; more; {
				if err := c.event(ctx, msg); err != nil && !c.bearable(ctx, err) {
					return err
				}
				select {
				case msg = <-events:
				default:
					more = false
				}
			}
		}
	}
}

// bearable says whether the run can go on after err: the target being
// away (restarting, failing over) only pauses the coordinator, which picks
// up from the ledger when it is back.
func (c *Coordinator) bearable(ctx context.Context, err error) bool {
	if ctx.Err() != nil || !pgutil.IsTransient(err) {
		return false
	}
	c.log.WarnContext(ctx, "target unavailable, waiting", "err", err)
	return true
}

// pump feeds the run's events into ch until ctx ends, re-subscribing when
// the broker goes away and comes back.
func (c *Coordinator) pump(ctx context.Context, cons jetstream.Consumer, ch chan<- jetstream.Msg) {
	for ctx.Err() == nil {
		iter, err := cons.Messages(jetstream.PullMaxMessages(64))
		if err != nil {
			c.log.WarnContext(ctx, "subscribe to events", "err", err)
			broker.Pause(ctx, time.Second)
			continue
		}
		for {
			msg, err := iter.Next()
			if err != nil {
				break
			}
			select {
			case ch <- msg:
			case <-ctx.Done():
				iter.Stop()
				return
			}
		}
		iter.Stop()
		if ctx.Err() == nil {
			c.log.WarnContext(ctx, "event subscription ended, subscribing again")
			broker.Pause(ctx, time.Second)
		}
	}
}

// event records one event; it is acknowledged once recorded, and comes
// back later when the target could not take it.
func (c *Coordinator) event(ctx context.Context, msg jetstream.Msg) error {
	if err := c.record(ctx, msg); err != nil {
		_ = msg.NakWithDelay(time.Second)
		return err
	}
	_ = msg.Ack() // a lost ack redelivers the event, which records the same again
	return nil
}

func (c *Coordinator) record(ctx context.Context, msg jetstream.Msg) error {
	kind := proto.EventKind(msg.Subject())
	if kind == proto.EventWorkerNotice {
		var ev proto.WorkerNotice
		if err := proto.Unmarshal(msg.Data(), &ev); err == nil {
			c.notice(ctx, &ev)
		}
		return nil
	}
	c.wait.progress()
	switch kind {
	case proto.EventChunkExtracted:
		var ev proto.ChunkExtracted
		if err := proto.Unmarshal(msg.Data(), &ev); err != nil {
			return nil
		}
		var done time.Time
		if ev.Finished != 0 {
			done = time.Unix(0, ev.Finished)
		}
		if err := target.MarkExtractedBy(ctx, c.pool, c.cfg.Run, &ev, readAt(ev.Started), done); err != nil {
			return err
		}
		rows := ev.Rows
		c.audit(ctx, target.AuditEntry{Table: ev.Table, Operation: "chunk_extracted", Rows: &rows, Status: "ok",
			Metadata: map[string]any{"chunk": ev.Chunk, "attempt": ev.Attempt, "batches": ev.Batches, "bytes": ev.Bytes, "digest": ev.Digest}})
	case proto.EventBatchRejected:
		var ev proto.BatchRejected
		if err := proto.Unmarshal(msg.Data(), &ev); err != nil {
			return nil
		}
		c.recount = true // its loader failed the chunk
		c.log.ErrorContext(ctx, "batch rejected", "table", ev.Table, "chunk", ev.Chunk, "seq", ev.Seq, "err", ev.Error)
		c.audit(ctx, target.AuditEntry{Table: ev.Table, Operation: "batch_rejected", Status: "failed", Error: ev.Error,
			Metadata: map[string]any{"chunk": ev.Chunk, "attempt": ev.Attempt, "seq": ev.Seq, "column": ev.Column, "key": ev.Key}})
	case proto.EventChunkFailed:
		var ev proto.ChunkFailed
		if err := proto.Unmarshal(msg.Data(), &ev); err != nil {
			return nil
		}
		if err := target.FailChunk(ctx, c.pool, c.cfg.Run, ev.Table, ev.Chunk, ev.Attempt, ev.Error); err != nil {
			return err
		}
		c.recount = true
		c.cfg.Metrics.Chunks(ctx, ev.Table, telemetry.ChunkFailed, 1)
		c.audit(ctx, target.AuditEntry{Table: ev.Table, Operation: "chunk_failed", Status: "failed", Error: ev.Error,
			Metadata: map[string]any{"chunk": ev.Chunk, "attempt": ev.Attempt}})
	case proto.EventVerdict:
		var ev proto.Verdict
		if err := proto.Unmarshal(msg.Data(), &ev); err != nil {
			return nil
		}
		if ev.Level == LevelFK {
			c.fkVerdict = &ev
		} else if ts := c.tables[ev.Table]; ts != nil {
			ts.verdict = &ev
		}
	}
	return nil
}

// Verdict levels the coordinator waits for: one "table" verdict per table
// and, when foreign keys are validated, one "fk" verdict for the run.
const (
	LevelTable = "table"
	LevelFK    = "fk"
)

// advance marks complete chunks, starts finalizing complete tables and,
// once every table is done, creates the foreign keys.
func (c *Coordinator) advance(ctx context.Context) error {
	done, err := target.CompleteChunks(ctx, c.pool, c.cfg.Run)
	if err != nil {
		return err
	}
	if len(done) > 0 {
		c.wait.progress()
	}
	for _, ch := range done {
		c.cfg.Metrics.Chunks(ctx, ch.Table, telemetry.ChunkLoaded, 1)
		rows := ch.Rows
		c.audit(ctx, target.AuditEntry{Table: ch.Table, Operation: "chunk_loaded", Rows: &rows, Status: "ok",
			Metadata: map[string]any{"chunk": ch.Chunk, "bytes": ch.Bytes}})
	}
	// The counts change when chunks complete or fail; read after every
	// event they cost PostgreSQL more than the rest of the loop. A chunk
	// failed by anything the loop did not hear of is counted within a poll.
	if c.recount || len(done) > 0 || c.counts == nil || time.Since(c.countedAt) >= c.cfg.PollEvery {
		c.countedAt = time.Now()
		if c.counts, err = target.ChunkCounts(ctx, c.pool, c.cfg.Run); err != nil {
			return err
		}
		c.recount = false
	}
	for _, p := range c.counts {
		ts := c.tables[p.Table]
		if ts == nil || ts.finalized || ts.failed || c.finalizing[p.Table] || p.Loaded+p.Failed < p.Chunks || c.childrenPending(ts.t) {
			continue
		}
		if len(c.building) >= c.cfg.FinalizeParallel {
			break // the next table starts when one of these reports back
		}
		if p.Failed > 0 {
			settled, err := c.failedSettled(ctx, ts)
			if err != nil {
				return err
			}
			if !settled {
				continue
			}
		}
		c.startClosing(ctx, ts, p.Failed > 0)
	}
	if !c.fksDone && c.allTablesDone() {
		c.releaseSnapshot(ctx) // nothing more is read from the source
		if err := c.createObjects(ctx); err != nil {
			return err
		}
		if err := c.foreignKeys(ctx); err != nil {
			return err
		}
	}
	// Every table is in: what is left is judging them, and the run says so.
	if c.fksDone && c.validating() && !c.validatingSaid {
		if err := target.SetRunStatus(ctx, c.pool, c.cfg.Run, target.RunValidating, ""); err != nil {
			return err
		}
		c.validatingSaid = true
	}
	return nil
}

// childrenPending says whether a table still has partitions or
// inheritance children to finalize. A partitioned table's keys and
// indexes are built on every partition at once, and a parent's checks on
// its children: they wait until the children are loaded instead of
// slowing their load down. A serial's sequence, shared with the children,
// is restarted past their rows too.
func (c *Coordinator) childrenPending(t *schema.Table) bool {
	for _, p := range c.db.Children(t) {
		if ps := c.tables[p.ID()]; ps != nil && !ps.finalized && !ps.failed {
			return true
		}
	}
	return false
}

func (c *Coordinator) allTablesDone() bool {
	for _, ts := range c.tables {
		if !ts.finalized && !ts.failed {
			return false
		}
	}
	return true
}

// settleFor bounds how long a table with failed chunks waits for their
// other batches: a batch whose reject could not be recorded is never
// accounted for, and the run must not wait for it forever.
const settleFor = 2 * broker.DefaultBatchAckWait

// failedSettled says whether a table whose chunks are all in, some failed,
// may be closed: the failed chunks' other batches have landed (loaded or
// rejected), so the failed table holds every row but the rejected ones
// and no batch of this run is loaded after it is judged. It says what it
// waits for, and gives up waiting after settleFor.
func (c *Coordinator) failedSettled(ctx context.Context, ts *tableState) (bool, error) {
	n, err := target.UnsettledBatches(ctx, c.pool, c.cfg.Run, ts.t.ID())
	if err != nil || n == 0 {
		return err == nil, err
	}
	switch {
	case ts.unsettledSince.IsZero():
		ts.unsettledSince = time.Now()
		c.log.InfoContext(ctx, "a chunk of the table failed: waiting for its other batches before closing it", "table", ts.t.ID(), "batches_in_flight", n)
		return false, nil
	case time.Since(ts.unsettledSince) > settleFor:
		c.log.WarnContext(ctx, "closing a failed table with batches of its failed chunks unaccounted for", "table", ts.t.ID(), "batches", n,
			"waited", settleFor.String())
		return true, nil
	}
	return false, nil
}

// failTable closes a table whose chunks failed; the validator records the
// verdict that names the rejected rows. It runs apart from the loop
// (startClosing), which marks the table failed once it returns nil.
func (c *Coordinator) failTable(ctx context.Context, ts *tableState) error {
	chunks, err := target.Chunks(ctx, c.pool, c.cfg.Run, ts.t.ID())
	if err != nil {
		return err
	}
	var reasons []string
	for _, ch := range chunks {
		if ch.Status == target.StatusFailed {
			reasons = append(reasons, fmt.Sprintf("chunk %d: %s", ch.Chunk, ch.Error))
		}
	}
	msg := strings.Join(reasons, "; ")
	if err := c.countSource(ctx, ts.t); err != nil {
		return err
	}
	if err := target.SetTableStatus(ctx, c.pool, c.cfg.Run, ts.t.ID(), target.StatusFailed, msg); err != nil {
		return err
	}
	c.audit(ctx, target.AuditEntry{Table: ts.t.ID(), Operation: "load", Status: "failed", Error: msg})
	return broadcast(ctx, c.js, c.cfg.Run, proto.EventTableFinalized, &proto.TableFinalized{V: proto.Version, Run: c.cfg.Run, Table: ts.t.ID(), Error: msg})
}

func (c *Coordinator) validates(level string) bool {
	for _, l := range c.cfg.Options.Validation {
		if l == level {
			return true
		}
	}
	return false
}

// validating says whether the run waits for verdicts.
func (c *Coordinator) validating() bool {
	return !c.validates("none") && len(c.cfg.Options.Validation) > 0
}

// finished says whether the run is over, and records how it ended.
func (c *Coordinator) finished(ctx context.Context) (bool, error) {
	if !c.fksDone {
		return false, nil
	}
	validating := c.validating()
	var failed []string
	for id, ts := range c.tables {
		switch {
		case validating && ts.verdict == nil:
			return false, nil
		case ts.failed:
			failed = append(failed, id)
		case validating && !ts.verdict.OK:
			failed = append(failed, id)
		}
	}
	if validating && c.validates(LevelFK) {
		if c.fkVerdict == nil {
			return false, nil
		}
		if !c.fkVerdict.OK {
			failed = append(failed, "foreign keys ("+c.fkVerdict.Detail+")")
		}
	}
	if len(c.objectProblems) > 0 {
		failed = append(failed, fmt.Sprintf("objects (%s)", strings.Join(c.objectProblems, "; ")))
	}
	status, errText := target.RunSucceeded, ""
	if len(failed) > 0 {
		status, errText = target.RunFailed, "failed tables: "+strings.Join(sorted(failed), ", ")
	}
	if err := target.SetRunStatus(ctx, c.pool, c.cfg.Run, status, errText); err != nil {
		return true, err
	}
	c.audit(ctx, target.AuditEntry{Operation: "run", Status: status, Error: errText})
	if err := broker.PurgeRun(ctx, c.js, c.cfg.Run); err != nil {
		c.log.WarnContext(ctx, "clean up the run on the broker", "err", err)
	}
	_ = broadcast(ctx, c.js, c.cfg.Run, proto.EventRunFinished, &proto.RunFinished{V: proto.Version, Run: c.cfg.Run, Status: status})
	if len(failed) > 0 {
		return true, fmt.Errorf("%w: %s", errRunFailed, errText)
	}
	return true, nil
}

// readAt is when an extractor began a chunk, or now for an extractor too
// old to say.
func readAt(unixNanos int64) time.Time {
	if unixNanos == 0 {
		return time.Now()
	}
	return time.Unix(0, unixNanos)
}
