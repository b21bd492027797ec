package coordinator

import (
	"context"
	"sort"
)

// closeResult is what a table's finalization (or its closing as failed)
// reports back to the loop that tracks the run.
type closeResult struct {
	ts     *tableState
	failed bool  // closed as failed: chunks failed, or finalization refused
	err    error // nothing recorded as done: taken again, or the run stops
}

// startClosing finalizes a table whose chunks are all in (closes it as
// failed when some failed) apart from the loop, which goes on reading
// events and the ledger meanwhile: a key build of a large table takes
// minutes, and the small tables loaded beside it need not wait for it.
// advance starts one while fewer than FinalizeParallel are building
// indexes; the table's state changes only in the loop (tableClosed).
func (c *Coordinator) startClosing(ctx context.Context, ts *tableState, chunksFailed bool) {
	id := ts.t.ID()
	c.finalizing[id], c.building[id] = true, true
	c.closers.Add(1)
	go func() {
		defer c.closers.Done()
		r := closeResult{ts: ts, failed: chunksFailed}
		built := func() {
			select {
			case c.built <- id:
			case <-ctx.Done():
			}
		}
		if chunksFailed {
			r.err = c.failTable(ctx, ts)
		} else {
			r.failed, r.err = c.finalizeTable(ctx, ts, built)
		}
		select {
		case c.closed <- r:
		case <-ctx.Done(): // the loop is gone
		}
	}()
}

// tableClosed records a finished finalization in the loop, whose next
// advance starts the next table (or the foreign keys). A table whose
// finalization erred is finalized again from the start by a later
// advance (every step of it can be taken twice).
func (c *Coordinator) tableClosed(r closeResult) error {
	delete(c.finalizing, r.ts.t.ID())
	delete(c.building, r.ts.t.ID())
	if r.err != nil {
		return r.err
	}
	c.wait.progress()
	if r.failed {
		r.ts.failed = true
	} else {
		r.ts.finalized = true
	}
	return nil
}

// finalizingNow lists the tables being finalized, for the waiting report.
func (c *Coordinator) finalizingNow() []string {
	out := make([]string, 0, len(c.finalizing))
	for id := range c.finalizing {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}
