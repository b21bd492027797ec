package extractor

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/caravan-db/caravan/internal/testenv"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/source"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// replaySource serves one chunk of prepared lines; extract calls nothing else.
type replaySource struct {
	source.Source
	lines [][]byte
}

func (s replaySource) Read(_ context.Context, _ *proto.ChunkTask, emit func([]byte) error) error {
	for _, l := range s.lines {
		if err := emit(l); err != nil {
			return err
		}
	}
	return nil
}

// drain reads every batch of the stream, in order, and acks it.
func drain(t *testing.T, js jetstream.JetStream, want int) []*proto.RowBatch {
	t.Helper()
	ctx := context.Background()
	// The loaders' consumer, as testenv made it: a work queue takes no second one.
	cons, err := js.Consumer(ctx, proto.StreamBatches, proto.ConsumerLoaders)
	if err != nil {
		t.Fatal(err)
	}
	var out []*proto.RowBatch
	for len(out) < want {
		msgs, err := cons.Fetch(want-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range msgs.Messages() {
			var b proto.RowBatch
			if err := proto.Unmarshal(m.Data(), &b); err != nil {
				t.Fatal(err)
			}
			out = append(out, &b)
			_ = m.Ack()
			n++
		}
		if n == 0 {
			t.Fatalf("got %d batches, want %d", len(out), want)
		}
	}
	return out
}

// Batches are cut by the task's limits alone, every batch but the last is
// full, the last says so, digests add up, and a row too large for a message
// travels through the object store.
func TestExtractCutsDeterministicBatches(t *testing.T) {
	ctx := context.Background()
	_, js := testenv.NATS(t)
	var lines [][]byte
	for i := 0; i < 1000; i++ {
		lines = append(lines, []byte(fmt.Sprintf("%d\tvalue %d\n", i, i)))
	}
	huge := []byte("1000\t" + strings.Repeat("x", int(js.Conn().MaxPayload())+10) + "\n")
	lines = append(lines, huge, []byte("1001\tafter\n"))
	e := New(js, replaySource{lines: lines}, Config{})
	if e.blobs, _ = js.ObjectStore(ctx, proto.BlobBucket); e.blobs == nil {
		t.Fatal("no blob bucket")
	}
	task := &proto.ChunkTask{V: proto.Version, Run: "run1", Table: "public.t", Chunk: 3, Attempt: 1, Cols: []string{"id", "v"},
		TargetCols: []string{"id", "v"}, Key: []string{"id"}, BatchBytes: 4096, BatchRows: 100}

	res, err := e.extract(ctx, task)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 1002 {
		t.Fatalf("%d rows extracted", res.Rows)
	}
	batches := drain(t, js, res.Batches)
	var total proto.Digest
	rows := 0
	var data bytes.Buffer
	for i, b := range batches {
		if b.Seq != i || b.Last != (i == len(batches)-1) {
			t.Errorf("batch %d: seq %d last %v", i, b.Seq, b.Last)
		}
		if b.Rows == 0 || len(b.Data) > task.BatchBytes || b.Rows > task.BatchRows {
			if b.Blob == "" {
				t.Errorf("batch %d breaks its limits: %d rows, %d bytes", i, b.Rows, len(b.Data))
			}
		}
		d := b.Data
		if b.Blob != "" {
			if d, err = e.blobs.GetBytes(ctx, b.Blob); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(d, huge) || b.Rows != 1 {
				t.Errorf("oversized batch %d holds %d rows, %d bytes", i, b.Rows, len(d))
			}
		}
		data.Write(d)
		sum, _ := proto.ParseDigest(b.Digest)
		total.Merge(proto.Digest{Sum: sum, Rows: int64(b.Rows)})
		rows += b.Rows
	}
	if !bytes.Equal(data.Bytes(), bytes.Join(lines, nil)) {
		t.Error("batches do not hold the chunk's rows in order")
	}
	if total.String() != res.Digest || rows != 1002 {
		t.Errorf("batch digests add up to %s over %d rows; the chunk says %s", total, rows, res.Digest)
	}

	// A second read of the chunk (under another run id, so the broker's
	// duplicate window lets it through) cuts identical batches.
	again := *task
	again.Run = "run2"
	res2, err := e.extract(ctx, &again)
	if err != nil {
		t.Fatal(err)
	}
	second := drain(t, js, res2.Batches)
	if len(second) != len(batches) || res2.Digest != res.Digest {
		t.Fatalf("second read: %d batches, digest %s; first: %d, %s", len(second), res2.Digest, len(batches), res.Digest)
	}
	for i := range batches {
		if !bytes.Equal(batches[i].Data, second[i].Data) || batches[i].Rows != second[i].Rows || batches[i].Digest != second[i].Digest {
			t.Errorf("seq %d differs between reads", i)
		}
	}
}
