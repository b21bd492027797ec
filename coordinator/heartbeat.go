package coordinator

import (
	"context"
	"time"

	"github.com/caravan-db/caravan/target"
)

// keepAlive stamps the run's heartbeat every target.HeartbeatEvery until
// the returned stop is called, so `caravan status` can tell a run being
// worked on from one whose coordinator died (abandoned). A beat that fails
// (the target away) is only logged: the next one tries again, and a target
// away for long enough makes the run look abandoned, which it then is.
func (c *Coordinator) keepAlive(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(target.HeartbeatEvery)
		defer tick.Stop()
		for {
			if err := target.Heartbeat(ctx, c.pool, c.cfg.Run); err != nil && ctx.Err() == nil {
				c.log.DebugContext(ctx, "heartbeat", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
