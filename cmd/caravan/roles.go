package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/urfave/cli/v2"

	"github.com/caravan-db/caravan/coordinator"
	"github.com/caravan-db/caravan/extractor"
	"github.com/caravan-db/caravan/loader"
	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/report"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/source"
	"github.com/caravan-db/caravan/telemetry"
	"github.com/caravan-db/caravan/validator"
)

func coordinatorCommand() *cli.Command {
	return &cli.Command{
		Name:  "coordinator",
		Usage: "plan a run, publish its chunks, track and finalize it (workers join through --nats-url)",
		Flags: join([]cli.Flag{sourceURL, targetURL, natsURL, reportJSON, str("resume", "resume this run instead of starting one", "")},
			mssqlFlags, textFlags, planFlags, runFlags, brokerFlags, coordinatorFlags, logFlags),
		Action: func(c *cli.Context) error {
			if err := require(c, "source-url", "target-url", "nats-url"); err != nil {
				return err
			}
			console, log, err := liveView(c)
			if err != nil {
				return err
			}
			src, err := openSource(c, 1, log)
			if err != nil {
				return err
			}
			defer src.Close()
			pool, err := targetPool(c, c.Int("finalize-parallel")+5)
			if err != nil {
				return err
			}
			defer pool.Close()
			b, err := connectBroker(c, "caravan-coordinator", log, brokerUse{own: true})
			if err != nil {
				return err
			}
			defer b.Close()
			cfg := coordinator.Config{SourceURL: c.String("source-url"), FinalizeParallel: c.Int("finalize-parallel"), Log: log, Metrics: metrics(c)}
			resume := c.String("resume")
			if resume != "" {
				if cfg.Options.SourceOptions, err = sourceOptions(c, true); err != nil {
					return err
				}
			} else {
				if cfg.Options, err = options(c); err != nil {
					return err
				}
			}
			cfg.Run = runID(c)
			if resume != "" {
				cfg.Run = resume
			}
			log.Info("run started", "run", cfg.Run, "resume", resume != "")
			// The same live view as migrate's: bars on a terminal, progress
			// records in the log otherwise.
			view, stopView := context.WithCancel(c.Context)
			viewed := make(chan struct{})
			go func() {
				defer close(viewed)
				_ = report.Follow(view, pool, cfg.Run, console, log)
			}()
			var runErr error
			if resume != "" {
				runErr = coordinator.Resume(c.Context, src, pool, b.js, cfg)
			} else {
				runErr = coordinator.New(src, pool, b.js, cfg).Run(c.Context)
			}
			stopView()
			<-viewed
			return finish(c, pool, cfg.Run, runErr)
		},
	}
}

func extractorCommand() *cli.Command {
	return &cli.Command{
		Name:  "extractor",
		Usage: "read chunks from the source and publish row batches",
		Flags: join([]cli.Flag{sourceURL, natsURL}, mssqlFlags, extractorFlags, logFlags),
		Action: func(c *cli.Context) error {
			if err := require(c, "source-url", "nats-url"); err != nil {
				return err
			}
			log, err := logger(c)
			if err != nil {
				return err
			}
			src, err := openSource(c, c.Int("extractors"), log)
			if err != nil {
				return err
			}
			defer src.Close()
			b, err := connectBroker(c, "caravan-extractor", log, brokerUse{})
			if err != nil {
				return err
			}
			defer b.Close()
			log.Info("extractor started", "concurrency", c.Int("extractors"))
			return extractor.New(b.js, src, extractorConfig(c, log)).Run(c.Context)
		},
	}
}

func loaderCommand() *cli.Command {
	return &cli.Command{
		Name:  "loader",
		Usage: "commit row batches into the target, exactly once",
		Flags: join([]cli.Flag{targetURL, natsURL}, loaderFlags, logFlags),
		Action: func(c *cli.Context) error {
			return targetWorker(c, "loader", c.Int("loaders"), func(js jetstream.JetStream, pool *pgxpool.Pool, log *slog.Logger) error {
				return loader.New(js, pool, loaderConfig(c, log)).Run(c.Context)
			})
		},
	}
}

func validatorCommand() *cli.Command {
	return &cli.Command{
		Name:  "validator",
		Usage: "judge finalized tables: counts, keys, digests, foreign keys",
		Flags: join([]cli.Flag{targetURL, natsURL}, validatorFlags, logFlags),
		Action: func(c *cli.Context) error {
			return targetWorker(c, "validator", c.Int("validators"), func(js jetstream.JetStream, pool *pgxpool.Pool, log *slog.Logger) error {
				return validator.New(js, pool, validator.Config{Concurrency: c.Int("validators"), Log: log, Metrics: metrics(c)}).Run(c.Context)
			})
		},
	}
}

// targetWorker wires a role that works on the target alone: its logger,
// a pool sized for its concurrency, and the broker.
func targetWorker(c *cli.Context, role string, concurrency int, run func(jetstream.JetStream, *pgxpool.Pool, *slog.Logger) error) error {
	if err := require(c, "target-url", "nats-url"); err != nil {
		return err
	}
	log, err := logger(c)
	if err != nil {
		return err
	}
	pool, err := targetPool(c, concurrency+1)
	if err != nil {
		return err
	}
	defer pool.Close()
	b, err := connectBroker(c, "caravan-"+role, log, brokerUse{})
	if err != nil {
		return err
	}
	defer b.Close()
	log.Info(role+" started", "concurrency", concurrency)
	return run(b.js, pool, log)
}

func planCommand() *cli.Command {
	return &cli.Command{
		Name:  "plan",
		Usage: "print the schema mapping, the DDL and the chunk plan; touches nothing",
		Flags: join([]cli.Flag{sourceURL, str("target-url", "check the plan against this target PostgreSQL (read only): tables in the way, missing types", ""),
			modeFlag, boolean("unlogged", "show UNLOGGED tables"),
			str("objects-dir", "write the source definition of each object caravan does not migrate to DIR/<schema>.<name>.sql (bytes outside [A-Za-z0-9_.-] written %XX)", "")}, mssqlFlags, textFlags, planFlags, logFlags),
		Action: func(c *cli.Context) error {
			if err := require(c, "source-url"); err != nil {
				return err
			}
			log, err := logger(c)
			if err != nil {
				return err
			}
			src, err := openSource(c, 1, log)
			if err != nil {
				return err
			}
			defer src.Close()
			opts, err := options(c)
			if err != nil {
				return err
			}
			plan, err := coordinator.MakePlan(c.Context, src, "", opts)
			if err != nil {
				return err
			}
			consistency := ""
			if cs, ok := src.(source.Consistency); ok {
				consistency = cs.Consistency()
			}
			if err := printPlan(plan, consistency, opts.SourceOptions, c.Bool("unlogged")); err != nil {
				return err
			}
			if dir := c.String("objects-dir"); dir != "" {
				files, err := writeDefinitions(dir, plan.DB.Unmigrated)
				if err != nil {
					return err
				}
				fmt.Printf("\n-- objects-dir: %d definitions written to %s\n", len(files), dir)
			}
			if c.String("target-url") == "" {
				return nil
			}
			pool, err := targetPool(c, 1)
			if err != nil {
				return err
			}
			defer pool.Close()
			findings, err := coordinator.CheckTarget(c.Context, pool, plan, opts.Mode)
			if err != nil {
				return err
			}
			fmt.Printf("\n-- target %s (--mode %s)\n", pgutil.Redact(c.String("target-url")), opts.Mode)
			if len(findings) == 0 {
				fmt.Println("--   no table of the plan exists there, and it has every type the plan uses")
			}
			for _, f := range findings {
				fmt.Printf("--   %s\n", f)
			}
			return nil
		},
	}
}

func printPlan(plan *coordinator.Plan, consistency string, readOpts map[string]string, unlogged bool) error {
	w := os.Stdout
	if consistency != "" {
		fmt.Fprintf(w, "-- consistency: %s\n\n", consistency)
	}
	if len(readOpts) > 0 {
		keys := make([]string, 0, len(readOpts))
		for k := range readOpts {
			keys = append(keys, k+"="+readOpts[k])
		}
		sort.Strings(keys)
		fmt.Fprintf(w, "-- read options (every extractor applies them): %s\n\n", strings.Join(keys, " "))
	}
	fmt.Fprintln(w, "-- mapping")
	for _, tp := range plan.Tables {
		t := tp.Table
		fmt.Fprintf(w, "-- %s -> %s (rows as %s)\n", schema.QuoteName(t.Source), schema.QuoteName(t.Target), proto.EncodingOrText(t.Encoding))
		for _, col := range t.Columns {
			fmt.Fprintf(w, "--   %-30s %-28s -> %s %s\n", col.Name, col.SourceType, col.TargetName, col.Type)
		}
	}
	if len(plan.DB.Warnings) > 0 {
		fmt.Fprintln(w, "\n-- warnings")
		for _, warn := range plan.DB.Warnings {
			fmt.Fprintf(w, "--   %s\n", warn)
		}
	}
	fmt.Fprintln(w, "\n-- DDL")
	for _, stmt := range plan.DDL(unlogged) {
		fmt.Fprintf(w, "%s;\n", stmt)
	}
	if fates := plan.ViewFates(); len(fates) > 0 {
		fmt.Fprintln(w, "\n-- views")
		for _, f := range fates {
			fmt.Fprintf(w, "--   %s\n", f)
		}
	}
	if len(plan.DB.Unmigrated) > 0 {
		fmt.Fprintln(w, "\n-- not migrated (a run refuses to start until each is accepted with --accept-unmigrated KIND:NAME)")
		for _, u := range plan.DB.Unmigrated {
			fmt.Fprintf(w, "--   %s: %s\n", u.Key(), u.Reason)
		}
	}
	fmt.Fprintln(w, "\n-- chunks")
	for _, tp := range plan.Tables {
		how := ""
		if len(tp.Chunks) > 0 && tp.Chunks[0].Note != "" {
			how = " (" + tp.Chunks[0].Note + ")"
		}
		fmt.Fprintf(w, "-- %s: %d chunks%s\n", tp.Table.ID(), len(tp.Chunks), how)
		for i, ch := range tp.Chunks {
			fmt.Fprintf(w, "--   %4d %-4s [%s, %s) ~%d rows\n", i, ch.Range, bound(ch.Lo, "-inf"), bound(ch.Hi, "+inf"), ch.EstRows)
		}
	}
	return nil
}

func bound(b []string, open string) string {
	if b == nil {
		return open
	}
	return "(" + strings.Join(b, ", ") + ")"
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show a run's progress and verdicts (the newest run when RUN is omitted)",
		ArgsUsage: "[RUN]",
		Flags: join([]cli.Flag{targetURL, boolean("json", "print JSON for scripts"), boolean("watch", "redraw until the run ends")},
			logFlags),
		Action: func(c *cli.Context) error {
			if err := require(c, "target-url"); err != nil {
				return err
			}
			pool, err := targetPool(c, 2)
			if err != nil {
				return err
			}
			defer pool.Close()
			opts := report.StatusOptions{JSON: c.Bool("json"), Watch: c.Bool("watch"), Terminal: telemetry.IsTerminal(os.Stdout)}
			rep, err := report.Status(c.Context, pool, c.Args().First(), os.Stdout, opts)
			if err != nil {
				return err
			}
			switch {
			case rep.ExitCode == report.ExitInterrupted && rep.Kind == report.KindVerify:
				// A verification has nothing to resume: it is run again.
				fmt.Fprintf(os.Stderr, "verification %s is %s; run it again with:\n  caravan verify --source-url %s --target-url %s\n",
					rep.Run, rep.Status, shellQuote(rep.Source), shellQuote(pgutil.Redact(c.String("target-url"))))
			case rep.ExitCode == report.ExitInterrupted:
				fmt.Fprintf(os.Stderr, "run %s is %s; go on with:\n  caravan resume --source-url %s --target-url %s %[1]s\n",
					rep.Run, rep.Status, shellQuote(rep.Source), shellQuote(pgutil.Redact(c.String("target-url"))))
			}
			if rep.ExitCode != report.ExitOK {
				return &exitError{code: rep.ExitCode, err: fmt.Errorf("run %s %s", rep.Run, rep.Status)}
			}
			return nil
		},
	}
}
