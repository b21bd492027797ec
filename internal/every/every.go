// Package every runs a function at an interval in the background: the
// heartbeats that keep a run or a message alive and the notes that keep a
// long wait from being silent all have the same shape, and one
// implementation decides how they stop.
package every

import (
	"context"
	"time"
)

// Do calls fn every d (first after d, or at once when now is set) until ctx
// ends or the returned stop is called. stop waits for a call in progress to
// return, so nothing runs after it.
func Do(ctx context.Context, d time.Duration, now bool, fn func(context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(d)
		defer tick.Stop()
		if now {
			fn(ctx)
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				fn(ctx)
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
