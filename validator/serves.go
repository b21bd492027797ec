package validator

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/caravan-db/caravan/broker"
	"github.com/caravan-db/caravan/proto"
)

// serves says whether this validator's target holds the event's run. A
// validator pointed at another database leaves the run's events to the
// validators that can judge them, says so, and tells the run.
func (v *Validator) serves(ctx context.Context, msg jetstream.Msg) bool {
	run := proto.SubjectRun(msg.Subject())
	held, report, err := v.known.Holds(ctx, run)
	if err != nil {
		if ctx.Err() == nil {
			v.cfg.Log.WarnContext(ctx, "look up the event's run in the target", "run", run, "err", err)
			_ = msg.NakWithDelay(broker.Backoff(1))
		}
		return false
	}
	if held {
		return true
	}
	if report {
		broker.CannotServe(ctx, v.js, &proto.WorkerNotice{Run: run, Role: "validator", Worker: v.worker,
			Problem: "its target database holds no run " + run + " (is its --target-url the run's?)"}, v.cfg.Log)
	}
	// The event comes back later, for this validator or one whose target
	// holds the run. Runs that end purge their events, so a validator does
	// not go round the events of other targets' finished runs.
	_ = msg.NakWithDelay(elsewhereDelay)
	return false
}

// elsewhereDelay is how long an event of a run this validator's target
// does not hold stays away before it is offered again.
const elsewhereDelay = 10 * time.Second
