package every

import (
	"context"
	"testing"
	"time"
)

// Calls keep coming at the interval, the first at once when asked.
func TestDoCalls(t *testing.T) {
	for _, now := range []bool{false, true} {
		calls := make(chan struct{})
		stop := Do(context.Background(), time.Millisecond, now, func(ctx context.Context) {
			select {
			case calls <- struct{}{}:
			case <-ctx.Done():
			}
		})
		for i := range 3 {
			select {
			case <-calls:
			case <-time.After(10 * time.Second):
				t.Fatalf("now=%v: call %d did not come", now, i+1)
			}
		}
		stop()
	}
	first := make(chan struct{}, 1)
	stop := Do(context.Background(), time.Hour, true, func(context.Context) { first <- struct{}{} })
	defer stop()
	select {
	case <-first:
	case <-time.After(10 * time.Second):
		t.Fatal("now=true: no call before the first hour")
	}
}

// stop returns only once a call in progress has returned: nothing runs
// after it (a heartbeat after a run's final status would make it live again).
func TestStopWaitsForTheCallInProgress(t *testing.T) {
	inCall, release := make(chan struct{}), make(chan struct{})
	stop := Do(context.Background(), time.Hour, true, func(context.Context) {
		close(inCall)
		<-release
	})
	<-inCall
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("stop returned while a call was in progress")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("stop did not return after the call ended")
	}
}

// A context that ends stops the calls; stop still returns.
func TestDoStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	stop := Do(ctx, time.Millisecond, false, func(context.Context) {})
	cancel()
	stop()
}
