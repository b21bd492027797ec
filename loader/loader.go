// Package loader is the loader role: it takes RowBatches from the work
// queue and commits each exactly once into PostgreSQL (COPY plus a ledger
// row in one transaction), acknowledging only after the commit.
package loader

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/caravan-db/caravan/broker"
	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/target"
	"github.com/caravan-db/caravan/telemetry"
)

// Config configures a loader.
type Config struct {
	Concurrency int // batches committed at once
	MaxDeliver  int // deliveries of a failing batch before it is parked
	Tracer      trace.TracerProvider
	Log         *slog.Logger
	Metrics     *telemetry.Metrics // nil records nothing
}

func (c *Config) defaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = 2
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 5
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	c.Metrics = c.Metrics.Role("loader")
}

// Loader commits batches.
type Loader struct {
	cfg    Config
	js     jetstream.JetStream
	pool   *pgxpool.Pool
	blobs  jetstream.ObjectStore
	tracer trace.Tracer
	runs   *target.KnownRuns
	worker string
	// rows recycles the buffers batches' rows are decoded into: a fresh
	// 2 MiB buffer per batch was a large allocation each time, zeroed and,
	// under the memory limit, often faulted in again after the runtime had
	// handed it back to the OS (a fifth of the time a migrate spent in
	// large allocations; the broker's own copies are the rest).
	rows sync.Pool
}

// New returns a loader writing into pool.
func New(js jetstream.JetStream, pool *pgxpool.Pool, cfg Config) *Loader {
	cfg.defaults()
	return &Loader{cfg: cfg, js: js, pool: pool, tracer: telemetry.Tracer(cfg.Tracer), runs: target.NewKnownRuns(pool), worker: broker.WorkerID()}
}

// Run works until ctx ends.
func (l *Loader) Run(ctx context.Context) error {
	cons, err := broker.Bind(ctx, l.js, proto.StreamBatches, proto.ConsumerLoaders, l.cfg.Log)
	if err != nil {
		return fmt.Errorf("loader: %w", err)
	}
	l.cfg.Log.InfoContext(ctx, "loader bound to its consumer", "consumer", proto.ConsumerLoaders, "ack_wait", cons.CachedInfo().Config.AckWait.String())
	if l.blobs, err = l.js.ObjectStore(ctx, proto.BlobBucket); err != nil {
		return fmt.Errorf("loader: blob bucket: %w", err)
	}
	stopLag, err := l.cfg.Metrics.ObserveLag(proto.ConsumerLoaders, broker.LagFunc(cons))
	if err != nil {
		return fmt.Errorf("loader: %w", err)
	}
	defer stopLag()
	broker.Serve(ctx, cons, l.cfg.Concurrency, l.cfg.Log, l.handle)
	return nil
}

func (l *Loader) handle(ctx context.Context, msg jetstream.Msg) {
	var b proto.RowBatch
	if buf, ok := l.rows.Get().(*[]byte); ok {
		b.Data = *buf // decoding fills it when it is large enough
	}
	defer func() {
		if b.Data != nil {
			buf := b.Data[:0]
			l.rows.Put(&buf)
		}
	}()
	if err := proto.Unmarshal(msg.Data(), &b); err != nil {
		l.cfg.Log.ErrorContext(ctx, "drop undecodable batch", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	delivered := uint64(1)
	if md, err := msg.Metadata(); err == nil {
		delivered = md.NumDelivered
	}
	if !l.serves(ctx, msg, &b, delivered) {
		return
	}
	ctx = telemetry.Extract(ctx, msg.Headers())
	ctx, span := l.tracer.Start(ctx, "load batch", trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
		attribute.String("caravan.run", b.Run), attribute.String("caravan.table", b.Table), attribute.Int("caravan.chunk", b.Chunk),
		attribute.Int("caravan.attempt", b.Attempt), attribute.Int("caravan.seq", b.Seq), attribute.Int("caravan.rows", b.Rows),
		attribute.Int64("caravan.delivery", int64(delivered))))
	defer span.End()

	started := time.Now()
	data, err := l.data(ctx, &b)
	var res target.LoadResult
	if err == nil {
		span.SetAttributes(attribute.Int("caravan.bytes", len(data)))
		res, err = target.LoadBatch(ctx, l.pool, &b, data)
	}
	if err == nil {
		span.SetAttributes(attribute.Bool("caravan.duplicate", res.Duplicate), attribute.Bool("caravan.stale", res.Stale))
		switch {
		case res.Duplicate:
			l.cfg.Metrics.Duplicate(ctx, b.Table)
		case !res.Stale:
			l.cfg.Metrics.Moved(ctx, b.Table, int64(b.Rows), int64(len(data)), 1)
			l.cfg.Metrics.BatchDuration(ctx, b.Table, time.Since(started))
		}
		l.loaded(ctx, msg, &b, len(data), res)
		return
	}
	l.cfg.Metrics.Error(ctx, b.Table)
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
	if ctx.Err() != nil {
		return // shutting down: JetStream redelivers the batch
	}
	// The database being away is not the batch's fault: wait for it as long
	// as it takes. A refused value is, at once; anything else after
	// MaxDeliver tries.
	transient := pgutil.IsTransient(err)
	if pgutil.IsDataError(err) || (!transient && delivered >= uint64(l.cfg.MaxDeliver)) {
		l.park(ctx, msg, &b, data, err, delivered)
		return
	}
	l.cfg.Log.WarnContext(ctx, "batch will be retried", "table", b.Table, "chunk", b.Chunk, "seq", b.Seq, "delivery", delivered, "transient", transient, "err", err)
	_ = msg.NakWithDelay(broker.Backoff(delivered))
}

// serves says whether this loader's target holds the batch's run. A loader
// pointed at another database must not take the run's batches: they would
// look stale there and be dropped, and the run would wait for ever.
func (l *Loader) serves(ctx context.Context, msg jetstream.Msg, b *proto.RowBatch, delivered uint64) bool {
	held, report, err := l.runs.Holds(ctx, b.Run)
	if err != nil {
		if ctx.Err() == nil {
			l.cfg.Log.WarnContext(ctx, "look up the batch's run in the target", "run", b.Run, "err", err)
			_ = msg.NakWithDelay(broker.Backoff(delivered))
		}
		return false
	}
	if held {
		return true
	}
	if report {
		broker.CannotServe(ctx, l.js, &proto.WorkerNotice{Run: b.Run, Role: "loader", Worker: l.worker,
			Problem: "its target database holds no run " + b.Run + " (is its --target-url the run's?)"}, l.cfg.Log)
	}
	// Hand the batch straight back and stop pulling for a moment, so the
	// loaders that can serve the run get to it first.
	_ = msg.Nak()
	broker.Pause(ctx, leavePause)
	return false
}

// leavePause is how long a loader stops pulling after handing back a batch
// of a run its target does not hold.
const leavePause = 2 * time.Second

// loaded acknowledges a committed (or already committed) batch and reports
// it. The report is a hint, published without waiting: the coordinator
// reads progress from the ledger and polls it, so a lost report delays it
// by a poll, never misleads it; waiting for the broker's confirmation would
// cost every batch a round trip.
func (l *Loader) loaded(ctx context.Context, msg jetstream.Msg, b *proto.RowBatch, size int, res target.LoadResult) {
	if err := msg.Ack(); err != nil {
		l.cfg.Log.WarnContext(ctx, "ack batch", "table", b.Table, "chunk", b.Chunk, "seq", b.Seq, "err", err)
	}
	if res.Stale {
		l.cfg.Log.InfoContext(ctx, "dropped a batch of a superseded chunk attempt", "table", b.Table, "chunk", b.Chunk, "attempt", b.Attempt)
		return
	}
	ev := &proto.BatchLoaded{V: proto.Version, Run: b.Run, Table: b.Table, Chunk: b.Chunk, Attempt: b.Attempt, Seq: b.Seq,
		Rows: b.Rows, Bytes: size, Duplicate: res.Duplicate}
	if err := broker.PublishAsync(l.js, proto.EventSubject(b.Run, proto.EventBatchLoaded), ev, telemetry.Header(ctx)); err != nil {
		l.cfg.Log.DebugContext(ctx, "report loaded batch", "err", err)
	}
	if b.Blob != "" {
		_ = l.blobs.Delete(ctx, b.Blob)
	}
}

// park gives up on a batch PostgreSQL refuses: the offending row goes to
// caravan.rejects and the dead-letter subject, the chunk fails, and every
// other batch goes on. A reject that cannot be recorded, for a reason no
// retry mends, still fails the chunk (with that reason): otherwise the run
// would wait for the chunk forever.
func (l *Loader) park(ctx context.Context, msg jetstream.Msg, b *proto.RowBatch, data []byte, cause error, delivered uint64) {
	rej := target.Explain(cause, b, data).Escaped()
	if !pgutil.IsDataError(cause) {
		rej.Error = fmt.Sprintf("gave up after %d deliveries: %s", delivered, rej.Error)
	}
	summary := rej.Summary(b.Table)
	l.cfg.Log.ErrorContext(ctx, "batch rejected", "table", b.Table, "chunk", b.Chunk, "seq", b.Seq, "column", rej.Column, "key", rej.Key, "err", rej.Error)
	if err := target.Reject(ctx, l.pool, b, rej); err != nil {
		if pgutil.IsTransient(err) || ctx.Err() != nil {
			l.cfg.Log.WarnContext(ctx, "record rejected batch: target unavailable, will retry", "table", b.Table, "chunk", b.Chunk, "seq", b.Seq, "err", err)
			_ = msg.NakWithDelay(5 * time.Second)
			return
		}
		summary = proto.EscapeInvalidUTF8([]byte(fmt.Sprintf("%s (the rejected row could not be recorded: %v)", summary, err)))
		l.cfg.Log.ErrorContext(ctx, "rejected row could not be recorded, failing its chunk", "table", b.Table, "chunk", b.Chunk, "seq", b.Seq, "err", err)
		if err := target.FailChunk(ctx, l.pool, b.Run, b.Table, b.Chunk, b.Attempt, summary); err != nil {
			l.cfg.Log.ErrorContext(ctx, "fail chunk of rejected batch, will retry", "table", b.Table, "chunk", b.Chunk, "err", err)
			_ = msg.NakWithDelay(5 * time.Second)
			return
		}
	}
	ev := &proto.BatchRejected{V: proto.Version, Run: b.Run, Table: b.Table, Chunk: b.Chunk, Attempt: b.Attempt, Seq: b.Seq,
		Column: rej.Column, Key: rej.Key, Error: summary}
	if err := broker.Publish(ctx, l.js, proto.EventSubject(b.Run, proto.EventBatchRejected), ev, telemetry.Header(ctx)); err != nil {
		_ = msg.NakWithDelay(5 * time.Second)
		return
	}
	_ = msg.Term()
}

// data returns a batch's rows, fetching an oversized row from the object store.
func (l *Loader) data(ctx context.Context, b *proto.RowBatch) ([]byte, error) {
	if b.Encoding != proto.EncodingCopyText && b.Encoding != proto.EncodingCopyBinary {
		return nil, fmt.Errorf("load %s chunk %d: unknown row encoding %q", b.Table, b.Chunk, b.Encoding)
	}
	if b.Blob == "" {
		return b.Data, nil
	}
	data, err := l.blobs.GetBytes(ctx, b.Blob)
	if err != nil {
		return nil, fmt.Errorf("load %s chunk %d: fetch oversized row %s: %w", b.Table, b.Chunk, b.Blob, err)
	}
	return data, nil
}
