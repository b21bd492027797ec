package broker

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Lag returns how many messages a consumer has yet to finish: those not yet
// delivered plus those delivered and not acknowledged. It asks the server
// each time, so it suits a metrics scrape, not a hot loop.
func Lag(ctx context.Context, cons jetstream.Consumer) (int64, error) {
	info, err := cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("consumer lag: %w", err)
	}
	return int64(info.NumPending) + int64(info.NumAckPending), nil
}

// LagFunc adapts Lag to a poll function bound to one consumer.
func LagFunc(cons jetstream.Consumer) func(context.Context) (int64, error) {
	return func(ctx context.Context) (int64, error) { return Lag(ctx, cons) }
}
