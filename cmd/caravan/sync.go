package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/caravan-db/caravan/report"
	"github.com/caravan-db/caravan/resync"
	"github.com/caravan-db/caravan/source"
)

func syncCommand() *cli.Command {
	return &cli.Command{
		Name:      "sync",
		Usage:     "after a finished run, bring the target up to the source's current state: copy again only the chunks that changed",
		ArgsUsage: "RUN",
		Flags: join([]cli.Flag{sourceURL, targetURL,
			num("workers", "chunks compared (and copied again) at once in this process", 2)},
			mssqlFlags, textFlags, logFlags),
		Action: runSync,
	}
}

func runSync(c *cli.Context) error {
	if c.Args().Len() != 1 {
		return fmt.Errorf("sync needs exactly one run id, after the flags: caravan sync [flags] RUN")
	}
	if err := require(c, "source-url", "target-url"); err != nil {
		return err
	}
	log, err := logger(c)
	if err != nil {
		return err
	}
	given, err := sourceOptions(c, true)
	if err != nil {
		return err
	}
	workers := max(c.Int("workers"), 1)
	src, err := openSource(c, workers, log)
	if err != nil {
		return err
	}
	defer src.Close()
	pool, err := targetPool(c, workers+2)
	if err != nil {
		return err
	}
	defer pool.Close()

	started := time.Now()
	res, err := resync.Run(c.Context, src, pool, resync.Config{Run: c.Args().First(), Workers: workers, SourceOptions: given, Log: log})
	if err != nil {
		switch {
		case c.Context.Err() != nil:
			return &exitError{code: report.ExitInterrupted, err: fmt.Errorf("sync interrupted (run it again to finish): %w", err)}
		case source.IsPermanent(err):
			return &exitError{code: report.ExitError, err: err}
		}
		return &exitError{code: report.ExitError, err: fmt.Errorf("%w (run sync again: what was copied stays, the rest is compared again)", err)}
	}
	printSync(os.Stdout, res, time.Since(started))
	if !res.OK() {
		return &exitError{code: report.ExitFailed, err: errors.New("a table failed validation after sync")}
	}
	return nil
}

func printSync(w io.Writer, res *resync.Result, took time.Duration) {
	for _, t := range res.Tables {
		how := fmt.Sprintf("%d of %d chunks changed, copied again", t.Changed, t.Chunks)
		if t.Changed == 0 {
			how = fmt.Sprintf("unchanged (%d chunks compared)", t.Chunks)
		}
		if t.Whole {
			how = "compared whole: unchanged"
			if t.Changed > 0 {
				how = "compared whole: changed, copied again"
			}
		}
		verdict := ""
		switch {
		case t.Judged && t.OK:
			verdict = "; validated"
		case t.Judged:
			verdict = "; FAILED validation: " + t.Detail
		}
		fmt.Fprintf(w, "%s: %s, %d rows on the source%s\n", t.Table, how, t.Rows, verdict)
	}
	fmt.Fprintf(w, "\nsynced: %d chunks copied again in %s (%s)\n", res.Copied(), took.Round(100*time.Millisecond), res.Consistency)
}
