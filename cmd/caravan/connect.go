package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/caravan-db/caravan/pgutil"
)

// connectTimeout bounds how long a command waits for a source, target or
// broker to answer when it starts: a host that accepts TCP and never
// answers must not hold a run in silence.
var connectTimeout = dur("connect-timeout", "give up on a source, target or broker that does not answer within this long when connecting", 15*time.Second)

// connecting gives a command that connects to something the
// --connect-timeout flag.
func connecting(cmd *cli.Command) *cli.Command {
	cmd.Flags = append(cmd.Flags, connectTimeout)
	return cmd
}

// within runs connect with --connect-timeout as its deadline and, when that
// deadline is what stopped it, says which endpoint (redacted) did not
// answer.
func within(c *cli.Context, endpoint, url string, connect func(context.Context) error) error {
	limit := c.Duration("connect-timeout")
	if limit <= 0 {
		return connect(c.Context)
	}
	ctx, cancel := context.WithTimeout(c.Context, limit)
	defer cancel()
	err := connect(ctx)
	if err != nil && c.Context.Err() == nil && (errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)) {
		return fmt.Errorf("%s %s did not answer within %s (--connect-timeout)", endpoint, pgutil.Redact(url), limit)
	}
	return err
}
