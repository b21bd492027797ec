package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"

	"github.com/caravan-db/caravan/coordinator"
	"github.com/caravan-db/caravan/extractor"
	"github.com/caravan-db/caravan/loader"
	"github.com/caravan-db/caravan/report"
	"github.com/caravan-db/caravan/validator"
)

var (
	dataDir    = str("data-dir", "embedded NATS storage directory (a temporary one when empty)", "")
	reportJSON = str("report-json", "also write the final report as JSON to this file", "")
)

func migrateCommand() *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "copy a database end to end: every role in this process, with an embedded NATS unless --nats-url is given",
		Flags: join([]cli.Flag{sourceURL, targetURL, natsURL, dataDir, reportJSON}, mssqlFlags, textFlags, planFlags, runFlags, brokerFlags, coordinatorFlags, extractorFlags, loaderFlags, validatorFlags, logFlags),
		Action: func(c *cli.Context) error {
			return runAll(c, "")
		},
	}
}

func resumeCommand() *cli.Command {
	return &cli.Command{
		Name:      "resume",
		Usage:     "finish an interrupted run from the state in the target: every role in this process",
		ArgsUsage: "RUN",
		Flags:     join([]cli.Flag{sourceURL, targetURL, natsURL, dataDir, reportJSON}, mssqlFlags, textFlags, brokerFlags, coordinatorFlags, extractorFlags, loaderFlags, validatorFlags, logFlags),
		Action: func(c *cli.Context) error {
			if c.Args().Len() != 1 {
				return fmt.Errorf("resume needs exactly one run id, after the flags: caravan resume [flags] RUN")
			}
			return runAll(c, c.Args().First())
		},
	}
}

// runAll runs every role in this process until the run is over.
func runAll(c *cli.Context, resume string) error {
	if err := require(c, "source-url", "target-url"); err != nil {
		return err
	}
	console, log, err := liveView(c)
	if err != nil {
		return err
	}
	ctx := c.Context
	src, err := openSource(c, c.Int("extractors"), log)
	if err != nil {
		return err
	}
	defer src.Close()
	pool, err := targetPool(c, c.Int("loaders")+c.Int("validators")+c.Int("finalize-parallel")+4)
	if err != nil {
		return err
	}
	defer pool.Close()
	b, err := connectBroker(c, "caravan-migrate", log, brokerUse{embed: true, own: true})
	if err != nil {
		return err
	}
	defer b.Close()

	workers, stopWorkers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	start := func(name string, run func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(workers); err != nil && workers.Err() == nil {
				log.Error("role stopped", "role", name, "err", err)
			}
		}()
	}
	start("extractor", extractor.New(b.js, src, extractorConfig(c, log)).Run)
	start("loader", loader.New(b.js, pool, loaderConfig(c, log)).Run)
	start("validator", validator.New(b.js, pool, validator.Config{Concurrency: c.Int("validators"), Log: log, Metrics: metrics(c)}).Run)

	cfg := coordinator.Config{SourceURL: c.String("source-url"), FinalizeParallel: c.Int("finalize-parallel"), Log: log, Metrics: metrics(c)}
	var runErr error
	if resume == "" {
		opts, err := options(c)
		if err != nil {
			stopWorkers()
			wg.Wait()
			return err
		}
		cfg.Run, cfg.Options = runID(c), opts
		start("progress", progress(pool, cfg.Run, console, log))
		runErr = coordinator.New(src, pool, b.js, cfg).Run(ctx)
	} else {
		cfg.Run = resume
		if cfg.Options.SourceOptions, err = sourceOptions(c, true); err != nil {
			stopWorkers()
			wg.Wait()
			return err
		}
		start("progress", progress(pool, cfg.Run, console, log))
		runErr = coordinator.Resume(ctx, src, pool, b.js, cfg)
	}
	stopWorkers()
	wg.Wait()
	return finish(c, pool, cfg.Run, runErr)
}

func runID(c *cli.Context) string {
	if id := c.String("run-id"); id != "" {
		return id
	}
	return uuid.NewString()
}

func progress(pool *pgxpool.Pool, run string, console *report.Console, log *slog.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		return report.Follow(ctx, pool, run, console, log)
	}
}
