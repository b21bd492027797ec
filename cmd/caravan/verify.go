package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/caravan-db/caravan/broker"
	"github.com/caravan-db/caravan/coordinator"
	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/report"
	"github.com/caravan-db/caravan/verify"
)

// maxPrinted caps the differences printed per table.
const maxPrinted = 1000

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "compare a source and a target row by row, whoever loaded the target; names the keys missing, extra or changed",
		Flags: join([]cli.Flag{sourceURL, targetURL, runIDFlag,
			num("workers", "chunks compared at once in this process (without --nats-url)", 2),
			str("nats-url", "NATS server URL: publish the chunk checks there for `caravan verifier` workers instead of checking in this process", ""),
			dur("check-ack-wait", "time a check may go without a heartbeat before another verifier gets it (sets the verifiers consumer)", time.Minute),
			float("sample", "check this random fraction of each keyed table's chunks, e.g. 0.01 (0: all)", 0),
			str("copy-format", "auto (tables of the same built-in types on both sides compared as binary COPY first, differences judged in text) or text (every table compared as COPY text only)", coordinator.CopyAuto)},
			tableFlags, mssqlFlags, textFlags, logFlags),
		Action: runVerify,
	}
}

func runVerify(c *cli.Context) error {
	if err := require(c, "source-url", "target-url"); err != nil {
		return err
	}
	if f := c.Float64("sample"); f < 0 || f > 1 {
		return fmt.Errorf("--sample %g: want a fraction between 0 and 1", f)
	}
	log, err := logger(c)
	if err != nil {
		return err
	}
	opts, err := options(c)
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

	// The run is recorded when the target takes caravan's schema; a
	// target we may only read is still verified, just not recorded.
	rec, err := verify.Start(c.Context, pool, runID(c), src.Kind(), pgutil.Redact(c.String("source-url")), c.Float64("sample"))
	if err != nil {
		log.Warn("verify: this verification is not recorded in the target (caravan status will not show it)", "err", err)
		rec = nil
	} else {
		log.Info("verify started", "run", rec.Run())
	}
	var b *brokerConn
	if c.String("nats-url") != "" {
		// The checks' outcomes are collected in the target's caravan.checks:
		// a target caravan may not write to cannot be verified by workers.
		if rec == nil {
			return errors.New("verify --nats-url: the verifiers record their checks in the target's caravan schema, which cannot be created (see the warning above); verify without --nats-url instead")
		}
		if b, err = connectBroker(c, "caravan-verify", log, brokerUse{}); err != nil {
			return err
		}
		defer b.Close()
		if err := broker.EnsureChecks(c.Context, b.js, broker.StreamConfig{}, c.Duration("check-ack-wait"), log); err != nil {
			return err
		}
	}
	started := time.Now()
	last := started
	cfg := verify.Config{Options: opts, Workers: workers, Sample: c.Float64("sample"), Log: log, Metrics: metrics(c),
		Progress: func(done, total int) {
			if time.Since(last) >= 5*time.Second || done == total {
				last = time.Now()
				log.Info("verify: progress", "checked", done, "of", total, "elapsed", time.Since(started).Round(time.Second).String())
			}
		}}
	v := verify.New(src, pool, cfg)
	var res *verify.Result
	var runErr error
	if b != nil {
		res, runErr = v.RunOn(c.Context, b.js, rec.Run())
	} else {
		res, runErr = v.Run(c.Context)
	}
	if rec != nil {
		if err := rec.Finish(c.Context, res, runErr); err != nil {
			log.Warn("verify: could not record the outcome", "run", rec.Run(), "err", err)
		}
	}
	if runErr != nil {
		if c.Context.Err() != nil {
			return &exitError{code: report.ExitInterrupted, err: fmt.Errorf("verify interrupted: %w", runErr)}
		}
		return &exitError{code: report.ExitError, err: runErr}
	}
	printVerify(os.Stdout, res, rec, time.Since(started))
	if !res.Identical() {
		return &exitError{code: report.ExitFailed, err: errors.New("the target differs from the source")}
	}
	return nil
}

func verifierCommand() *cli.Command {
	return &cli.Command{
		Name:  "verifier",
		Usage: "take the chunk checks of `caravan verify --nats-url` runs and record their outcomes in the target",
		Flags: join([]cli.Flag{sourceURL, targetURL, natsURL, num("verifiers", "checks run at once in this process", 2)}, mssqlFlags, logFlags),
		Action: func(c *cli.Context) error {
			if err := require(c, "source-url", "target-url", "nats-url"); err != nil {
				return err
			}
			log, err := logger(c)
			if err != nil {
				return err
			}
			n := max(c.Int("verifiers"), 1)
			src, err := openSource(c, n, log)
			if err != nil {
				return err
			}
			defer src.Close()
			pool, err := targetPool(c, n+2)
			if err != nil {
				return err
			}
			defer pool.Close()
			b, err := connectBroker(c, "caravan-verifier", log, brokerUse{})
			if err != nil {
				return err
			}
			defer b.Close()
			log.Info("verifier started", "concurrency", n)
			return verify.NewWorker(b.js, src, pool, verify.WorkerConfig{Concurrency: n, Log: log, Metrics: metrics(c)}).Run(c.Context)
		},
	}
}

// printVerify prints each table's summary and its differences.
func printVerify(w io.Writer, res *verify.Result, rec *verify.Recorder, took time.Duration) {
	differ := 0
	for _, t := range res.Tables {
		fmt.Fprintf(w, "%s: %s\n", t.Table, t.Summary())
		if !t.OK() {
			differ++
		}
		for i, d := range t.Diffs {
			if i == maxPrinted {
				fmt.Fprintf(w, "  ... and %d more\n", len(t.Diffs)-maxPrinted)
				break
			}
			fmt.Fprintf(w, "  %s\n", d)
		}
	}
	what := "all checked chunks"
	if !res.Sampled {
		what = "every row"
	}
	switch {
	case differ == 0:
		fmt.Fprintf(w, "\nidentical: %d tables, %s compared in %s\n", len(res.Tables), what, took.Round(100*time.Millisecond))
	default:
		fmt.Fprintf(w, "\nDIFFERENT: %d of %d tables differ (%s compared in %s)\n", differ, len(res.Tables), what, took.Round(100*time.Millisecond))
	}
	if rec != nil {
		fmt.Fprintf(w, "recorded as run %s (caravan status %s)\n", rec.Run(), rec.Run())
	}
}
