package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"

	"github.com/caravan-db/caravan/broker"
	"github.com/caravan-db/caravan/coordinator"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/source/postgres"
)

// Every flag can also come from a CARAVAN_* environment variable and from
// the YAML file named by --config (same names as the flags).

func env(name string) []string {
	return []string{"CARAVAN_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))}
}

func str(name, usage, value string) cli.Flag {
	return altsrc.NewStringFlag(&cli.StringFlag{Name: name, Usage: usage, Value: value, EnvVars: env(name)})
}

func strs(name, usage string) cli.Flag {
	return altsrc.NewStringSliceFlag(&cli.StringSliceFlag{Name: name, Usage: usage, EnvVars: env(name)})
}

func num(name, usage string, value int) cli.Flag {
	return altsrc.NewIntFlag(&cli.IntFlag{Name: name, Usage: usage, Value: value, EnvVars: env(name)})
}

func num64(name, usage string, value int64) cli.Flag {
	return altsrc.NewInt64Flag(&cli.Int64Flag{Name: name, Usage: usage, Value: value, EnvVars: env(name)})
}

func float(name, usage string, value float64) cli.Flag {
	return altsrc.NewFloat64Flag(&cli.Float64Flag{Name: name, Usage: usage, Value: value, EnvVars: env(name)})
}

func boolean(name, usage string) cli.Flag {
	return altsrc.NewBoolFlag(&cli.BoolFlag{Name: name, Usage: usage, EnvVars: env(name)})
}

func dur(name, usage string, value time.Duration) cli.Flag {
	return altsrc.NewDurationFlag(&cli.DurationFlag{Name: name, Usage: usage, Value: value, EnvVars: env(name)})
}

var (
	configFlag = &cli.StringFlag{Name: "config", Usage: "YAML file with flag values (flag names as keys)", EnvVars: env("config")}
	sourceURL  = str("source-url", "source database URL: postgres://... or sqlserver://...", "")
	targetURL  = str("target-url", "target PostgreSQL URL", "")
	natsURL    = str("nats-url", "NATS server URL; migrate and resume start an embedded server when empty", "")
	logFlags   = []cli.Flag{
		str("log-format", "auto (text on a terminal, JSON otherwise), text or json", "auto"),
		str("log-level", "debug, info, warn or error", "info"),
	}
	// tableFlags choose the tables, their names on the target and the
	// chunks: what migrate and verify share.
	tableFlags = []cli.Flag{
		strs("include", "tables to copy, as globs over schema.table or table (repeatable)"),
		strs("exclude", "tables to skip, as globs (repeatable)"),
		strs("schema-map", "source=target schema renames (repeatable), e.g. dbo=public"),
		str("name-case", "target identifiers: preserve or lower (default: the source's usual: postgres preserve, mssql lower)", ""),
		num64("chunk-rows", "rows per chunk", 100_000),
	}
	planFlags = join(tableFlags, []cli.Flag{
		num("batch-bytes", "bytes per batch message (capped below the broker's max_payload)", coordinator.DefaultBatchBytes),
		num("batch-rows", "rows per batch message", 50_000),
		str("copy-format", "how rows travel: auto (binary COPY for PostgreSQL tables whose columns keep their built-in types, text for the others) or text (every table as COPY text)", coordinator.CopyAuto),
	})
	// textFlags choose what becomes of the text of a SQL_ASCII PostgreSQL
	// source; the run carries the choice to every extractor.
	textFlags = []cli.Flag{
		str("source-encoding", "encoding of the text of a SQL_ASCII PostgreSQL source, converted to UTF-8 as it is read: WIN1252, LATIN1, LATIN9, ... (empty: it must be UTF-8)", ""),
		str("invalid-text", "text of a SQL_ASCII PostgreSQL source that is not valid UTF-8 (or not valid in --source-encoding): fail (the chunk, naming table, column, key and bytes) or replace (each bad byte by U+FFFD, with a warning)", "fail"),
	}
	runIDFlag = str("run-id", "run id (a UUID; generated when empty)", "")
	modeFlag  = str("mode", "target tables: create (refuse non-empty), truncate or drop-recreate", coordinator.ModeCreate)
	runFlags  = []cli.Flag{
		modeFlag,
		boolean("unlogged", "load into UNLOGGED tables and SET LOGGED when each is done"),
		strs("validate", "validation levels: count, keys, digest, fk (default all), or none"),
		boolean("owners-and-grants", "give the target's objects their source owners and grants (the roles must exist on the target; missing ones are reported)"),
		strs("accept-unmigrated", "objects the run may leave behind, as globs over KIND:NAME from plan's \"not migrated\" list (repeatable); a run refuses to start while others remain"),
		runIDFlag,
	}
	// brokerFlags belong to the commands that own the streams and the
	// shared consumers (migrate, resume, coordinator): workers bind to the
	// consumers as configured here, so one place decides for all.
	brokerFlags = []cli.Flag{
		num("replicas", "copies of every stream and consumer in a NATS cluster, 3 on a three-node cluster; 0: as many as the streams have (1 for new ones)", 0),
		dur("task-ack-wait", "time a chunk task may go without a heartbeat before another extractor gets it (sets the extractors consumer)", broker.DefaultTaskAckWait),
		dur("batch-ack-wait", "time a batch may stay unacknowledged before another loader gets it (sets the loaders consumer)", broker.DefaultBatchAckWait),
		num("broker-batches-mib", fmt.Sprintf("MiB of batches the broker holds at once, the backpressure bound (0: %d for migrate's in-memory embedded broker, %d otherwise)", embeddedBatchesMiB, serverBatchesMiB), 0),
	}
	// coordinatorFlags schedule the coordinator's own work on the target.
	coordinatorFlags = []cli.Flag{
		num("finalize-parallel", "tables whose keys and indexes are built at once after their load", coordinator.DefaultFinalizeParallel),
	}
	extractorFlags = []cli.Flag{
		num("extractors", "chunks read at once in this process", 2),
		dur("task-heartbeat", "how often a chunk in progress is extended (0: a third of the extractors consumer's ack wait; negative: never)", 0),
	}
	loaderFlags = []cli.Flag{
		num("loaders", "batches committed at once in this process", 2),
		num("batch-max-deliver", "deliveries of a failing batch before it is parked as rejected", 5),
	}
	validatorFlags = []cli.Flag{
		num("validators", "tables validated at once in this process", 2),
	}
	// observeFlags are added to every long-running command by observed
	// (observe.go); traces are configured by the OTEL_* environment instead.
	observeFlags = []cli.Flag{
		str("metrics-addr", "serve Prometheus /metrics and /healthz on this address, e.g. :9464 (empty: off)", ""),
		num("memory-limit-mib", fmt.Sprintf("soft limit of the Go heap in MiB (0: GOMEMLIMIT if set, else %d plus, for migrate's in-memory embedded broker, --broker-batches-mib; negative: none)", heapBaseMiB), 0),
		str("cpu-profile", "write a CPU profile of this process to this file (go tool pprof)", ""),
	}
)

func join(groups ...[]cli.Flag) []cli.Flag {
	var out []cli.Flag
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

func options(c *cli.Context) (coordinator.Options, error) {
	o := coordinator.Options{
		Filter:       schema.Filter{Include: c.StringSlice("include"), Exclude: c.StringSlice("exclude")},
		NameCase:     c.String("name-case"),
		Mode:         c.String("mode"),
		RowsPerChunk: c.Int64("chunk-rows"),
		BatchBytes:   c.Int("batch-bytes"),
		BatchRows:    c.Int("batch-rows"),
		Unlogged:     c.Bool("unlogged"),
		Validation:   splitList(c.StringSlice("validate")),

		AcceptUnmigrated: c.StringSlice("accept-unmigrated"),
		OwnersAndGrants:  c.Bool("owners-and-grants"),
		CopyFormat:       c.String("copy-format"),
	}
	if o.NameCase != "" && o.NameCase != schema.CasePreserve && o.NameCase != schema.CaseLower {
		return o, fmt.Errorf("--name-case %q: want preserve or lower", o.NameCase)
	}
	o.SchemaMap = map[string]string{}
	for _, m := range c.StringSlice("schema-map") {
		from, to, ok := strings.Cut(m, "=")
		if !ok || from == "" || to == "" {
			return o, fmt.Errorf("--schema-map %q: want source=target", m)
		}
		o.SchemaMap[from] = to
	}
	var err error
	if o.SourceOptions, err = sourceOptions(c, false); err != nil {
		return o, err
	}
	o.Defaults()
	return o, o.Validate()
}

// sourceOptions are the read options every extractor of a run applies
// (they travel in ChunkTask.Options). For a resume (onlyGiven) just those
// given explicitly: the run's recorded choices stand for the rest.
func sourceOptions(c *cli.Context, onlyGiven bool) (map[string]string, error) {
	enc, invalid := c.String("source-encoding"), c.String("invalid-text")
	if onlyGiven && !c.IsSet("source-encoding") {
		enc = ""
	}
	if onlyGiven && !c.IsSet("invalid-text") {
		invalid = ""
	}
	opts, err := postgres.TextOptions(enc, invalid)
	if err != nil {
		return nil, fmt.Errorf("--source-encoding/--invalid-text: %w", err)
	}
	return opts, nil
}

func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func require(c *cli.Context, names ...string) error {
	for _, n := range names {
		if c.String(n) == "" {
			return fmt.Errorf("--%s is required (or CARAVAN_%s)", n, strings.ToUpper(strings.ReplaceAll(n, "-", "_")))
		}
	}
	return nil
}
