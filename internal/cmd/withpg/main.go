// Command withpg runs a command with CARAVAN_TEST_PG_URL pointing at a
// PostgreSQL server: the one already in that variable, or a throwaway
// cluster it starts first and removes afterwards. `make test`, `make demo`
// and `make bench` run through it so a fresh machine needs nothing running.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/caravan-db/caravan/internal/pgsandbox"
)

func main() {
	os.Exit(run())
}

func run() int {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: withpg [--] command [args...]")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if os.Getenv("CARAVAN_TEST_PG_URL") == "" {
		cluster, err := pgsandbox.Start(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer cluster.Stop()
		os.Setenv("CARAVAN_TEST_PG_URL", cluster.URL("postgres"))
		fmt.Fprintln(os.Stderr, "withpg: throwaway PostgreSQL at", cluster.URL("postgres"))
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "withpg:", err)
		return 1
	}
	return 0
}
