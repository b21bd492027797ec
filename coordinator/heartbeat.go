package coordinator

import (
	"context"

	"github.com/caravan-db/caravan/target"
)

// keepAlive stamps the run's heartbeat until the returned stop is called
// (target.KeepAlive).
func (c *Coordinator) keepAlive(ctx context.Context) (stop func()) {
	return target.KeepAlive(ctx, c.pool, c.cfg.Run, c.log)
}
