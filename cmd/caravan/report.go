package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/caravan-db/caravan/report"
)

// reportCommand prints a run's report, and writes it as one
// self-contained HTML page with --html.
func reportCommand() *cli.Command {
	return &cli.Command{
		Name:      "report",
		Usage:     "print a run's report (the newest run when RUN is omitted); --html writes it as a page with a timeline of every chunk",
		ArgsUsage: "[RUN]",
		Flags:     join([]cli.Flag{targetURL, str("html", "write the report as one self-contained HTML page to this file", "")}, logFlags),
		Action: func(c *cli.Context) error {
			if err := require(c, "target-url"); err != nil {
				return err
			}
			pool, err := targetPool(c, 2)
			if err != nil {
				return err
			}
			defer pool.Close()
			rep, err := report.Build(c.Context, pool, c.Args().First())
			if err != nil {
				return err
			}
			if path := c.String("html"); path != "" {
				tl, err := report.LoadTimeline(c.Context, pool, rep.Run)
				if err != nil {
					return err
				}
				f, err := os.Create(path)
				if err != nil {
					return fmt.Errorf("report: %w", err)
				}
				if err := rep.WriteHTML(f, tl); err != nil {
					f.Close()
					return fmt.Errorf("report %s: %w", path, err)
				}
				if err := f.Close(); err != nil {
					return fmt.Errorf("report: %w", err)
				}
			}
			return rep.WriteText(os.Stdout)
		},
	}
}
