package coordinator

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/target"
)

// waiting is what the coordinator needs to say, while nothing moves, what
// it waits for: a run must never wait in silence.
type waiting struct {
	moved   time.Time         // last progress: an event, a chunk loaded, a table done
	said    time.Time         // last time it said what it waits for
	notices map[string]string // "role worker" -> why that worker cannot serve the run
}

// defaultQuietAfter is how long nothing may move before the coordinator
// says what it waits for, and how often it says it again.
const defaultQuietAfter = 30 * time.Second

func (w *waiting) progress() { w.moved = time.Now() }

// notice records a worker that cannot serve the run; it is said at once,
// and again in every waiting report.
func (c *Coordinator) notice(ctx context.Context, n *proto.WorkerNotice) {
	key := n.Role + " " + n.Worker
	if c.wait.notices == nil {
		c.wait.notices = map[string]string{}
	}
	if _, seen := c.wait.notices[key]; !seen {
		c.log.WarnContext(ctx, "a worker cannot serve this run", "role", n.Role, "worker", n.Worker, "problem", n.Problem)
		c.audit(ctx, target.AuditEntry{Operation: "worker_cannot_serve", Status: "failed", Error: n.Problem,
			Metadata: map[string]any{"role": n.Role, "worker": n.Worker}})
	}
	c.wait.notices[key] = n.Problem
}

// sayWaiting says what the run waits for once nothing has moved for
// QuietAfter, and again every QuietAfter while that lasts.
func (c *Coordinator) sayWaiting(ctx context.Context) {
	quiet := c.cfg.QuietAfter
	if time.Since(c.wait.moved) < quiet || time.Since(c.wait.said) < quiet {
		return
	}
	c.wait.said = time.Now()
	reasons, err := c.waitingFor(ctx)
	if err != nil {
		c.log.WarnContext(ctx, "nothing has moved", "waited", time.Since(c.wait.moved).Round(time.Second).String(), "err", err)
		return
	}
	c.log.WarnContext(ctx, "nothing has moved: waiting", "waited", time.Since(c.wait.moved).Round(time.Second).String(),
		"for", strings.Join(reasons, "; "))
}

// waitingFor lists what is outstanding and, for each kind of work, whether
// any worker is taking it.
func (c *Coordinator) waitingFor(ctx context.Context) ([]string, error) {
	counts, err := target.ChunkCounts(ctx, c.pool, c.cfg.Run)
	if err != nil {
		return nil, err
	}
	var pending, extracted, failed int
	for _, n := range counts {
		pending += n.Chunks - n.Loaded - n.Failed - n.Extracted
		extracted += n.Extracted
		failed += n.Failed
	}
	var out []string
	if pending > 0 {
		out = append(out, fmt.Sprintf("%d chunks to be read (%s)", pending, c.consumerState(ctx, proto.StreamTasks, proto.ConsumerExtractors, "extractor")))
	}
	if extracted > 0 {
		out = append(out, fmt.Sprintf("%d chunks to be loaded (%s)", extracted, c.consumerState(ctx, proto.StreamBatches, proto.ConsumerLoaders, "loader")))
	}
	if failed > 0 {
		out = append(out, fmt.Sprintf("%d chunks failed: their tables close once their other chunks are done", failed))
	}
	if now := c.finalizingNow(); len(now) > 0 {
		out = append(out, "keys, indexes and checks of "+strings.Join(now, ", ")+" (being built on the target)")
	}
	if judged := c.unjudged(); len(judged) > 0 {
		out = append(out, fmt.Sprintf("verdicts on %s (%s)", strings.Join(judged, ", "), c.consumerState(ctx, proto.StreamEvents, proto.ConsumerValidatorTables, "validator")))
	}
	if waits, err := target.LockWaits(ctx, c.pool); err != nil {
		out = append(out, "the target's lock waits could not be read: "+err.Error())
	} else {
		for _, w := range waits {
			out = append(out, "the target: "+w)
		}
	}
	keys := make([]string, 0, len(c.wait.notices))
	for k := range c.wait.notices {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+" cannot serve this run: "+c.wait.notices[k])
	}
	if len(out) == 0 {
		out = append(out, "the target (finalizing or checking tables)")
	}
	return out, nil
}

// unjudged lists the tables (and the foreign keys) finalized but still
// without a verdict.
func (c *Coordinator) unjudged() []string {
	if !c.validating() {
		return nil
	}
	var out []string
	for id, ts := range c.tables {
		if (ts.finalized || ts.failed) && ts.verdict == nil {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	if c.fksDone && c.validates(LevelFK) && c.fkVerdict == nil {
		out = append(out, "foreign keys")
	}
	return out
}

// consumerState says how a shared consumer stands: queued messages, those
// being worked on, and idle workers asking for more. Work queued with
// neither is work no worker is taking.
func (c *Coordinator) consumerState(ctx context.Context, stream, name, role string) string {
	cons, err := c.js.Consumer(ctx, stream, name)
	if err == jetstream.ErrConsumerNotFound {
		return "no " + role + " has ever connected to the broker"
	}
	if err != nil {
		return "broker: " + err.Error()
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return "broker: " + err.Error()
	}
	state := fmt.Sprintf("%d queued, %d in progress, %d idle %s pulls", info.NumPending, info.NumAckPending, info.NumWaiting, role)
	if info.NumAckPending == 0 && info.NumWaiting == 0 {
		state += ": no " + role + " is consuming"
	}
	return state
}
