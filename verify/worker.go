package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/caravan-db/caravan/broker"
	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/source"
	"github.com/caravan-db/caravan/telemetry"
)

// WorkerConfig configures a verifier worker.
type WorkerConfig struct {
	Concurrency int // checks run at once
	// MaxDeliver is how many times a check that keeps failing (other than
	// on a source or target that is merely away) is tried before its
	// failure is recorded, failing the verification.
	MaxDeliver int
	Log        *slog.Logger
	Metrics    *telemetry.Metrics // counts the checks run; nil: none
}

// Worker is the `caravan verifier` role: it takes checks of any
// distributed verification from the shared consumer, runs each in its
// verification's snapshot and records the outcome, once, in the target's
// caravan.checks, where the verify command collects it.
type Worker struct {
	js     jetstream.JetStream
	src    source.Source
	pool   *pgxpool.Pool
	cfg    WorkerConfig
	checks jetstream.Consumer
}

// NewWorker makes a verifier worker.
func NewWorker(js jetstream.JetStream, src source.Source, pool *pgxpool.Pool, cfg WorkerConfig) *Worker {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 2
	}
	if cfg.MaxDeliver <= 0 {
		cfg.MaxDeliver = 8
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Worker{js: js, src: src, pool: pool, cfg: cfg}
}

// Run works until ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	cons, err := broker.Bind(ctx, w.js, proto.StreamChecks, proto.ConsumerVerifiers, w.cfg.Log)
	if err != nil {
		return fmt.Errorf("verifier: %w", err)
	}
	w.checks = cons
	w.cfg.Log.InfoContext(ctx, "verifier bound to its consumer", "consumer", proto.ConsumerVerifiers,
		"ack_wait", cons.CachedInfo().Config.AckWait.String())
	broker.Serve(ctx, cons, w.cfg.Concurrency, w.cfg.Log, w.handle)
	return nil
}

func (w *Worker) handle(ctx context.Context, msg jetstream.Msg) {
	var task CheckTask
	if err := json.Unmarshal(msg.Data(), &task); err != nil || task.Table == nil {
		w.cfg.Log.ErrorContext(ctx, "drop undecodable check", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	delivered := uint64(1)
	if md, err := msg.Metadata(); err == nil {
		delivered = md.NumDelivered
	}
	name := checkOf(&task).name()
	// A check whose outcome is recorded was done by a verifier that died
	// before its ack (or by this one): doing it again would change nothing.
	var done bool
	err := w.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM caravan.checks WHERE run_id = $1 AND table_id = $2 AND chunk = $3)`,
		task.Run, task.Table.ID(), task.Chunk).Scan(&done)
	if err != nil {
		w.retry(ctx, msg, name, delivered, fmt.Errorf("look for its outcome: %w", err))
		return
	}
	if done {
		_ = msg.DoubleAck(ctx)
		return
	}
	stop := broker.Heartbeat(ctx, msg, max(w.checks.CachedInfo().Config.AckWait/3, time.Millisecond))
	out, err := runCheck(ctx, w.src, w.pool, &task, Config{Log: w.cfg.Log, Metrics: w.cfg.Metrics})
	stop()
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down: the check goes to another verifier
		}
		permanent := source.IsPermanent(err)
		if permanent || !pgutil.IsTransient(err) && delivered >= uint64(w.cfg.MaxDeliver) {
			w.cfg.Log.ErrorContext(ctx, "check failed", "run", task.Run, "check", name, "deliveries", delivered, "err", err)
			w.record(ctx, msg, &task, name, delivered, nil, err.Error())
			return
		}
		w.retry(ctx, msg, name, delivered, err)
		return
	}
	data, err := json.Marshal(out)
	if err != nil {
		w.retry(ctx, msg, name, delivered, fmt.Errorf("encode its outcome: %w", err))
		return
	}
	w.record(ctx, msg, &task, name, delivered, data, "")
}

// record writes a check's outcome (or its failure) once and acknowledges
// the check only after the write is committed.
func (w *Worker) record(ctx context.Context, msg jetstream.Msg, task *CheckTask, name string, delivered uint64, out []byte, failed string) {
	var errText *string
	if failed != "" {
		errText = &failed
	}
	_, err := w.pool.Exec(ctx, `INSERT INTO caravan.checks (run_id, table_id, chunk, outcome, error, worker)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
		task.Run, task.Table.ID(), task.Chunk, out, errText, broker.WorkerID())
	if err != nil {
		w.retry(ctx, msg, name, delivered, fmt.Errorf("record its outcome: %w", err))
		return
	}
	_ = msg.DoubleAck(ctx)
}

// retry hands a check back for a later delivery.
func (w *Worker) retry(ctx context.Context, msg jetstream.Msg, name string, delivered uint64, err error) {
	w.cfg.Log.WarnContext(ctx, "check will be retried", "check", name, "delivery", delivered, "err", err)
	_ = msg.NakWithDelay(broker.Backoff(delivered))
}
