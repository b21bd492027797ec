// Command caravan moves whole databases into PostgreSQL through NATS
// JetStream. One binary, one subcommand per role, plus migrate (every role
// in one process with an embedded broker).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
)

// exitError carries a process exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := app().RunContext(ctx, os.Args)
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "caravan:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	os.Exit(1)
}

func app() *cli.App {
	return &cli.App{
		Name:    "caravan",
		Usage:   "move whole databases into PostgreSQL, exactly once, proven",
		Version: func() string { v, _, _ := buildInfo(); return v }(),
		Commands: []*cli.Command{
			withExample(withConfig(observed("caravan-migrate", connecting(migrateCommand())))),
			withExample(withConfig(connecting(planCommand()))),
			withExample(withConfig(observed("caravan-coordinator", connecting(coordinatorCommand())))),
			withExample(withConfig(observed("caravan-extractor", connecting(extractorCommand())))),
			withExample(withConfig(observed("caravan-loader", connecting(loaderCommand())))),
			withExample(withConfig(observed("caravan-validator", connecting(validatorCommand())))),
			withExample(withConfig(connecting(statusCommand()))),
			withExample(withConfig(connecting(reportCommand()))),
			withExample(withConfig(observed("caravan-migrate", connecting(resumeCommand())))),
			withExample(withConfig(observed("caravan-verify", connecting(verifyCommand())))),
			withExample(withConfig(observed("caravan-verifier", connecting(verifierCommand())))),
			withExample(withConfig(observed("caravan-sync", connecting(syncCommand())))),
			withExample(withConfig(brokerCommand())),
			withExample(healthcheckCommand()),
		},
	}
}

// withConfig lets every flag of a command come from --config's YAML file.
func withConfig(cmd *cli.Command) *cli.Command {
	cmd.Flags = append(cmd.Flags, configFlag)
	next := cmd.Action
	load := altsrc.InitInputSourceWithContext(cmd.Flags, altsrc.NewYamlSourceFromFlagFunc("config"))
	// A Before the command already has (observed's) runs after the file is
	// read, so it sees every flag's final value.
	then := cmd.Before
	cmd.Before = func(c *cli.Context) error {
		if c.String("config") != "" {
			if err := load(c); err != nil {
				return fmt.Errorf("config %s: %w", c.String("config"), err)
			}
		}
		if then != nil {
			return then(c)
		}
		return nil
	}
	cmd.Action = next
	return cmd
}
