// Package extractor is the extractor role: it takes ChunkTasks from the work
// queue, reads each chunk from the source in its deterministic order, and
// publishes the rows as RowBatches bounded by bytes and rows, then reports
// the chunk's batch count, row count and digest.
package extractor

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/caravan-db/caravan/broker"
	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/source"
	"github.com/caravan-db/caravan/telemetry"
)

// Config configures an extractor.
type Config struct {
	Concurrency int // chunks read at once
	// Heartbeat is how often a task in progress is extended; 0 means a
	// third of the extractors consumer's ack wait, which the side that
	// creates the consumers sets; negative disables heartbeats (tests use
	// it to force a redelivery while the first reader still works).
	Heartbeat  time.Duration
	MaxDeliver int
	Tracer     trace.TracerProvider
	Log        *slog.Logger
	Metrics    *telemetry.Metrics // nil records nothing
}

func (c *Config) defaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = 2
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 8
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	c.Metrics = c.Metrics.Role("extractor")
}

// Extractor reads chunks.
type Extractor struct {
	cfg    Config
	js     jetstream.JetStream
	src    source.Source
	blobs  jetstream.ObjectStore
	tasks  jetstream.Consumer
	tracer trace.Tracer
	// encoders recycles the buffers batches are encoded into.
	encoders sync.Pool
}

// New returns an extractor reading from src.
func New(js jetstream.JetStream, src source.Source, cfg Config) *Extractor {
	cfg.defaults()
	return &Extractor{cfg: cfg, js: js, src: src, tracer: telemetry.Tracer(cfg.Tracer),
		encoders: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
}

// Run works until ctx ends.
func (e *Extractor) Run(ctx context.Context) error {
	cons, err := broker.Bind(ctx, e.js, proto.StreamTasks, proto.ConsumerExtractors, e.cfg.Log)
	if err != nil {
		return fmt.Errorf("extractor: %w", err)
	}
	e.tasks = cons
	ackWait := cons.CachedInfo().Config.AckWait
	if hb := e.cfg.Heartbeat; hb >= ackWait {
		e.cfg.Log.WarnContext(ctx, "--task-heartbeat is not shorter than the extractors consumer's ack wait: chunks will be handed to a second extractor while the first still reads them",
			"task_heartbeat", hb.String(), "ack_wait", ackWait.String())
	}
	e.cfg.Log.InfoContext(ctx, "extractor bound to its consumer", "consumer", proto.ConsumerExtractors, "ack_wait", ackWait.String(), "heartbeat", e.every(ctx).String())
	if e.blobs, err = e.js.ObjectStore(ctx, proto.BlobBucket); err != nil {
		return fmt.Errorf("extractor: blob bucket: %w", err)
	}
	stopLag, err := e.cfg.Metrics.ObserveLag(proto.ConsumerExtractors, broker.LagFunc(cons))
	if err != nil {
		return fmt.Errorf("extractor: %w", err)
	}
	defer stopLag()
	broker.Serve(ctx, cons, e.cfg.Concurrency, e.cfg.Log, e.handle)
	return nil
}

func (e *Extractor) handle(ctx context.Context, msg jetstream.Msg) {
	var task proto.ChunkTask
	if err := proto.Unmarshal(msg.Data(), &task); err != nil {
		e.cfg.Log.ErrorContext(ctx, "drop undecodable task", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	delivered := uint64(1)
	if md, err := msg.Metadata(); err == nil {
		delivered = md.NumDelivered
	}
	ctx = telemetry.Extract(ctx, msg.Headers())
	ctx, span := e.tracer.Start(ctx, "extract chunk", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(chunkAttrs(&task)...), trace.WithAttributes(attribute.Int64("caravan.delivery", int64(delivered))))
	defer span.End()

	started := time.Now()
	stop := broker.Heartbeat(ctx, msg, e.every(ctx))
	res, err := e.extract(ctx, &task)
	stop()
	if err == nil {
		res.Started, res.Finished, res.Worker = started.UnixNano(), time.Now().UnixNano(), broker.WorkerID()
		span.SetAttributes(attribute.Int64("caravan.rows", res.Rows), attribute.Int64("caravan.bytes", res.Bytes), attribute.Int("caravan.batches", res.Batches))
		if err = broker.Publish(ctx, e.js, proto.EventSubject(task.Run, proto.EventChunkExtracted), res, telemetry.Header(ctx)); err == nil {
			err = msg.DoubleAck(ctx)
		}
	}
	if err == nil {
		e.cfg.Metrics.Moved(ctx, task.Table, res.Rows, res.Bytes, int64(res.Batches))
		e.cfg.Metrics.ChunkDuration(ctx, task.Table, time.Since(started))
		e.cfg.Metrics.Chunks(ctx, task.Table, telemetry.ChunkExtracted, 1)
		return
	}
	e.cfg.Metrics.Error(ctx, task.Table)
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
	if ctx.Err() != nil {
		return // shutting down: the task is redelivered to another extractor
	}
	e.retryOrFail(ctx, msg, &task, delivered, err)
}

// retryOrFail decides what a failed read costs. A source that is merely
// away (restarting, failing over) is waited for, however long; an error
// the source marks permanent (a syntax or permission error, a value that
// cannot be read, a snapshot that is gone) fails the chunk at once, since
// no retry can mend it; anything else fails it after MaxDeliver tries.
func (e *Extractor) retryOrFail(ctx context.Context, msg jetstream.Msg, task *proto.ChunkTask, delivered uint64, err error) {
	permanent := source.IsPermanent(err)
	transient := !permanent && pgutil.IsTransient(err)
	if !permanent && (transient || delivered < uint64(e.cfg.MaxDeliver)) {
		e.cfg.Log.WarnContext(ctx, "chunk will be retried", "table", task.Table, "chunk", task.Chunk, "delivery", delivered, "transient", transient, "err", err)
		_ = msg.NakWithDelay(broker.Backoff(delivered))
		return
	}
	reason := err.Error()
	if !permanent {
		reason = fmt.Sprintf("extract failed after %d deliveries: %v", delivered, err)
	}
	e.cfg.Log.ErrorContext(ctx, "chunk failed", "table", task.Table, "chunk", task.Chunk, "attempt", task.Attempt, "deliveries", delivered, "err", reason)
	failed := &proto.ChunkFailed{V: proto.Version, Run: task.Run, Table: task.Table, Chunk: task.Chunk, Attempt: task.Attempt, Error: reason}
	if perr := broker.Publish(ctx, e.js, proto.EventSubject(task.Run, proto.EventChunkFailed), failed, telemetry.Header(ctx)); perr != nil {
		// Unreported, the chunk would be waited for forever: try again.
		e.cfg.Log.WarnContext(ctx, "report failed chunk, will retry", "table", task.Table, "chunk", task.Chunk, "err", perr)
		_ = msg.NakWithDelay(broker.Backoff(delivered))
		return
	}
	_ = msg.Term()
}

// every is how often a task in progress is extended: the configured
// heartbeat, else a third of the consumer's ack wait as the broker has it
// now (the side that owns the consumers may have changed it since this
// extractor started), negative for never.
func (e *Extractor) every(ctx context.Context) time.Duration {
	if e.cfg.Heartbeat != 0 {
		return e.cfg.Heartbeat
	}
	info := e.tasks.CachedInfo()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if fresh, err := e.tasks.Info(ctx); err == nil {
		info = fresh
	}
	return max(info.Config.AckWait/3, time.Millisecond)
}

func chunkAttrs(t *proto.ChunkTask) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("caravan.run", t.Run),
		attribute.String("caravan.table", t.Table),
		attribute.Int("caravan.chunk", t.Chunk),
		attribute.Int("caravan.attempt", t.Attempt),
		attribute.StringSlice("caravan.range.lo", t.Lo),
		attribute.StringSlice("caravan.range.hi", t.Hi),
	}
}
