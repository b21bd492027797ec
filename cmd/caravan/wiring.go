package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/urfave/cli/v2"

	"github.com/caravan-db/caravan/broker"
	"github.com/caravan-db/caravan/coordinator"
	"github.com/caravan-db/caravan/extractor"
	"github.com/caravan-db/caravan/loader"
	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/source"
	"github.com/caravan-db/caravan/source/postgres"
	"github.com/caravan-db/caravan/target"
	"github.com/caravan-db/caravan/telemetry"
)

func logger(c *cli.Context) (*slog.Logger, error) {
	return telemetry.NewLogger(os.Stderr, c.String("log-format"), c.String("log-level"))
}

// openSource picks the source implementation by URL scheme; log gets the
// warnings of its value policies.
func openSource(c *cli.Context, readers int, log *slog.Logger) (source.Source, error) {
	raw := c.String("source-url")
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("source URL %s: not a URL", pgutil.Redact(raw))
	}
	var src source.Source
	err = within(c, "source", raw, func(ctx context.Context) error {
		switch strings.ToLower(u.Scheme) {
		case "postgres", "postgresql":
			src, err = postgres.Open(ctx, raw, int32(readers+2), log)
		case "sqlserver", "mssql":
			src, err = openMSSQL(ctx, c, raw, readers, log)
		default:
			err = fmt.Errorf("source URL %s: unknown scheme %q (want postgres:// or sqlserver://)", pgutil.Redact(raw), u.Scheme)
		}
		return err
	})
	return src, err
}

// targetPool connects to --target-url with room for conns connections.
func targetPool(c *cli.Context, conns int) (*pgxpool.Pool, error) {
	raw := c.String("target-url")
	var pool *pgxpool.Pool
	err := within(c, "target", raw, func(ctx context.Context) (err error) {
		pool, err = pgutil.Pool(ctx, raw, target.App, int32(conns))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	return pool, nil
}

// brokerConn is a connection to --nats-url, or to an embedded server
// started when it is empty and embedding is allowed.
type brokerConn struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	embedded *broker.Embedded
	tmp      string
}

// brokerUse says what a command does with the broker beyond connecting.
type brokerUse struct {
	// embed starts a server in the process when --nats-url is empty.
	embed bool
	// own creates or updates the streams and the shared consumers from
	// this command's flags (--replicas, --task-ack-wait, --batch-ack-wait):
	// the side that starts runs owns them, workers only bind.
	own bool
}

func connectBroker(c *cli.Context, name string, log *slog.Logger, use brokerUse) (*brokerConn, error) {
	if use.own {
		if err := batchesHoldABatch(c); err != nil {
			return nil, err
		}
	}
	b := &brokerConn{}
	addr := c.String("nats-url")
	streams := broker.StreamConfig{Replicas: c.Int("replicas"), BatchesMaxBytes: int64(batchesMiB(c)) << 20}
	if addr == "" {
		if !use.embed {
			return nil, fmt.Errorf("--nats-url is required (or CARAVAN_NATS_URL)")
		}
		dir := c.String("data-dir")
		if dir == "" {
			tmp, err := os.MkdirTemp("", "caravan-nats-")
			if err != nil {
				return nil, fmt.Errorf("embedded nats: %w", err)
			}
			dir, b.tmp = tmp, tmp
			// A throwaway broker keeps its streams in memory (bounded by
			// --broker-batches-mib); with --data-dir they are files.
			streams.Memory = true
		}
		srv, err := broker.StartEmbedded(dir, 0, log)
		if err != nil {
			return nil, err
		}
		b.embedded, addr = srv, srv.URL()
	}
	connect := func() (*nats.Conn, jetstream.JetStream, error) { return broker.Connect(addr, name) }
	if b.embedded != nil {
		connect = func() (*nats.Conn, jetstream.JetStream, error) { return b.embedded.Connect(name) }
	}
	// A broker that cannot be reached leaves the client reconnecting in the
	// background: Ready is what waits for it, within --connect-timeout
	// (0: for as long as it takes, saying so).
	err := within(c, "broker", addr, func(ctx context.Context) error {
		nc, js, err := connect()
		if err != nil {
			return err
		}
		b.nc, b.js = nc, js
		return broker.Ready(ctx, nc, js, log)
	})
	if err != nil {
		b.Close()
		return nil, err
	}
	if !use.own {
		return b, nil
	}
	ctx, js := c.Context, b.js
	consumers := broker.ConsumerConfig{TaskAckWait: c.Duration("task-ack-wait"), BatchAckWait: c.Duration("batch-ack-wait")}
	if err := broker.EnsureStreams(ctx, js, streams, log); err != nil {
		b.Close()
		return nil, err
	}
	if err := broker.EnsureConsumers(ctx, js, consumers, log); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func (b *brokerConn) Close() {
	if b.nc != nil {
		b.nc.Close()
	}
	if b.embedded != nil {
		b.embedded.Shutdown()
	}
	if b.tmp != "" {
		os.RemoveAll(b.tmp)
	}
}

func extractorConfig(c *cli.Context, log *slog.Logger) extractor.Config {
	return extractor.Config{Concurrency: c.Int("extractors"), Heartbeat: c.Duration("task-heartbeat"), Log: log, Metrics: metrics(c)}
}

func loaderConfig(c *cli.Context, log *slog.Logger) loader.Config {
	return loader.Config{Concurrency: c.Int("loaders"), MaxDeliver: c.Int("batch-max-deliver"), Log: log, Metrics: metrics(c)}
}

// batchesHoldABatch refuses a batches stream too small for one batch: the
// broker refuses such a batch every time it is offered, and the run would
// wait for ever. A batch is at most --batch-bytes of rows plus its
// envelope (the room DefaultBatchBytes leaves below 2 MiB). resume has no
// --batch-bytes (the run's own is in the target) and is not checked.
func batchesHoldABatch(c *cli.Context) error {
	if !hasFlag(c, "batch-bytes") {
		return nil
	}
	rows := int64(c.Int("batch-bytes"))
	if rows <= 0 {
		rows = coordinator.DefaultBatchBytes
	}
	const envelope = 64 << 10
	if bound := int64(batchesMiB(c)) << 20; rows+envelope > bound {
		return fmt.Errorf("--broker-batches-mib %d holds less than one batch (--batch-bytes %d and its envelope): give the broker at least %d MiB or make batches smaller",
			batchesMiB(c), rows, (rows+envelope+1<<20-1)>>20)
	}
	return nil
}
