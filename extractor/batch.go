package extractor

import (
	"bytes"
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/caravan-db/caravan/broker"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/telemetry"
)

// extract reads one chunk and publishes its batches. Batches are cut by the
// limits in the task, never by the extractor's own settings, so whichever
// extractor reads the chunk (again) produces the same seq -> rows mapping.
func (e *Extractor) extract(ctx context.Context, task *proto.ChunkTask) (*proto.ChunkExtracted, error) {
	b := &batcher{e: e, task: task, enc: task.RowEncoding(), maxBytes: task.BatchBytes, maxRows: task.BatchRows}
	b.partAt, b.partKind = task.PartKey()
	if b.maxBytes <= 0 {
		b.maxBytes = 1 << 20
	}
	if b.maxRows <= 0 {
		b.maxRows = 1 << 30
	}
	if err := e.src.Read(ctx, task, func(line []byte) error { return b.add(ctx, line) }); err != nil {
		return nil, fmt.Errorf("extract %s chunk %d: %w", task.Table, task.Chunk, err)
	}
	if err := b.finish(ctx); err != nil {
		return nil, fmt.Errorf("extract %s chunk %d: %w", task.Table, task.Chunk, err)
	}
	return &proto.ChunkExtracted{V: proto.Version, Run: task.Run, Table: task.Table, Chunk: task.Chunk, Attempt: task.Attempt,
		Batches: b.seq, Rows: b.chunk.Rows, Bytes: b.bytes, Digest: b.chunk.String(), Parts: b.parts.Parts()}, nil
}

// batcher cuts a chunk's rows into batches. It holds one full batch back
// until it knows whether more rows follow, so the final batch carries Last
// and no batch is ever empty.
type batcher struct {
	e        *Extractor
	task     *proto.ChunkTask
	enc      string // the task's row encoding: how rows are split and batches labelled
	maxBytes int
	maxRows  int

	// buf gathers the current batch's lines; spare is the buffer of the
	// last published batch, reused so a chunk costs two buffers, not one
	// per batch (growing and clearing them showed up in profiles).
	buf     []byte
	spare   []byte
	rows    int
	digest  proto.Digest
	pending *proto.RowBatch

	seq   int
	bytes int64
	chunk proto.Digest
	// parts cut the chunk's digest by the value of the key column at
	// partAt (see proto.Parts), for sync; partAt < 0 when it has none.
	partAt   int
	partKind string
	parts    proto.PartsBuilder
	fields   []proto.Field
	scratch  []byte
}

func (b *batcher) add(ctx context.Context, line []byte) error {
	var err error
	b.fields, err = proto.SplitRowAs(b.enc, b.fields[:0], line)
	if err != nil {
		return fmt.Errorf("row %d: %w", b.chunk.Rows+1, err)
	}
	if len(b.fields) != len(b.task.Cols) {
		return fmt.Errorf("row %d: %d values for %d columns", b.chunk.Rows+1, len(b.fields), len(b.task.Cols))
	}
	var h uint64
	h, b.scratch = proto.RowHash(b.fields, b.scratch)
	b.chunk.Add(h)
	b.bytes += int64(len(line))
	if b.partAt >= 0 {
		if v, ok := proto.PartValue(b.enc, b.partKind, b.fields[b.partAt]); ok {
			b.parts.Add(v, h)
		} else {
			// Parts only spare a later sync reading: without them it
			// reads the chunk's whole range on the target.
			b.partAt, b.parts = -1, proto.PartsBuilder{}
		}
	}

	if len(line) > b.maxBytes {
		// One value too large for a message: it travels through the object
		// store, alone in its batch.
		if err := b.cut(ctx); err != nil {
			return err
		}
		var d proto.Digest
		d.Add(h)
		return b.stage(ctx, b.newBatch(1, d, bytes.Clone(line)))
	}
	if b.rows > 0 && (len(b.buf)+len(line) > b.maxBytes || b.rows >= b.maxRows) {
		if err := b.cut(ctx); err != nil {
			return err
		}
	}
	if b.buf == nil {
		b.buf = make([]byte, 0, b.maxBytes)
	}
	b.buf = append(b.buf, line...)
	b.rows++
	b.digest.Add(h)
	return nil
}

// cut turns the rows gathered so far into a batch.
func (b *batcher) cut(ctx context.Context) error {
	if b.rows == 0 {
		return nil
	}
	batch := b.newBatch(b.rows, b.digest, b.buf)
	b.buf, b.spare = b.spare, nil
	b.rows = 0
	b.digest = proto.Digest{}
	return b.stage(ctx, batch)
}

func (b *batcher) newBatch(rows int, d proto.Digest, data []byte) *proto.RowBatch {
	t := b.task
	batch := &proto.RowBatch{V: proto.Version, Run: t.Run, Table: t.Table, Chunk: t.Chunk, Attempt: t.Attempt, Seq: b.seq,
		Rows: rows, Encoding: b.enc, Target: t.Target, Cols: t.TargetCols, Key: keyPositions(t), Data: data, Digest: d.String()}
	b.seq++
	return batch
}

// stage publishes the batch held back and holds this one.
func (b *batcher) stage(ctx context.Context, batch *proto.RowBatch) error {
	if b.pending != nil {
		if err := b.e.publish(ctx, b.pending); err != nil {
			return err
		}
		// Published means encoded and sent: its buffer is free again.
		if d := b.pending.Data; b.spare == nil && cap(d) == b.maxBytes {
			b.spare = d[:0]
		}
	}
	b.pending = batch
	return nil
}

func (b *batcher) finish(ctx context.Context) error {
	if err := b.cut(ctx); err != nil {
		return err
	}
	if b.pending == nil {
		return nil // an empty chunk has no batches
	}
	b.pending.Last = true
	err := b.e.publish(ctx, b.pending)
	b.pending = nil
	return err
}

func keyPositions(t *proto.ChunkTask) []int {
	var out []int
	for _, k := range t.Key {
		for i, c := range t.Cols {
			if c == k {
				out = append(out, i)
			}
		}
	}
	return out
}

// publish sends one batch, waiting while the batches stream is full: that
// is the backpressure that keeps extractors from outrunning loaders.
func (e *Extractor) publish(ctx context.Context, b *proto.RowBatch) error {
	ctx, span := e.tracer.Start(ctx, "publish batch", trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
		attribute.String("caravan.table", b.Table), attribute.Int("caravan.chunk", b.Chunk), attribute.Int("caravan.attempt", b.Attempt),
		attribute.Int("caravan.seq", b.Seq), attribute.Int("caravan.rows", b.Rows), attribute.Int("caravan.bytes", len(b.Data))))
	defer span.End()
	if len(b.Data) > e.maxData() {
		if err := e.putBlob(ctx, b); err != nil {
			return err
		}
	}
	enc := e.encoders.Get().(*bytes.Buffer)
	defer e.encoders.Put(enc)
	enc.Reset()
	if err := proto.MarshalTo(enc, b); err != nil {
		return fmt.Errorf("encode batch %d: %w", b.Seq, err)
	}
	msg := nats.NewMsg(proto.BatchesSubject(b.Run))
	msg.Data = enc.Bytes() // the client has copied it out by the time PublishMsg returns
	telemetry.Inject(ctx, msg.Header)
	msg.Header.Set(proto.HeaderMsgID, proto.BatchMsgID(b))
	if err := broker.PublishPatiently(ctx, e.js, msg, 0); err != nil {
		return fmt.Errorf("batch %d: %w", b.Seq, err)
	}
	return nil
}

// maxData is the largest Data a message carries: the server's limit less
// room for headers and the envelope.
func (e *Extractor) maxData() int {
	return int(e.js.Conn().MaxPayload()) - 64<<10
}

func (e *Extractor) putBlob(ctx context.Context, b *proto.RowBatch) error {
	name := proto.BlobName(b)
	if _, err := e.blobs.PutBytes(ctx, name, b.Data); err != nil {
		return fmt.Errorf("store oversized row of batch %d: %w", b.Seq, err)
	}
	b.Blob, b.Data = name, nil
	return nil
}
