package extractor

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/caravan-db/caravan/internal/testenv"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/source"
)

// lineSource replays prepared COPY text lines as one chunk; the other
// Source methods are never called by extract.
type lineSource struct {
	source.Source
	lines [][]byte
}

func (s lineSource) Read(_ context.Context, _ *proto.ChunkTask, emit func([]byte) error) error {
	for _, l := range s.lines {
		if err := emit(l); err != nil {
			return err
		}
	}
	return nil
}

// discardPublish keeps the real connection (its max_payload decides when a
// batch goes to the object store) but drops every publish, so the
// benchmark measures the extractor's own work: split, hash, batch, encode.
type discardPublish struct{ jetstream.JetStream }

func (discardPublish) PublishMsg(context.Context, *nats.Msg, ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	return &jetstream.PubAck{}, nil
}

// BenchmarkExtractChunk cuts a 20k-row chunk of bench_wide-like rows into
// default-sized batches.
func BenchmarkExtractChunk(b *testing.B) {
	_, js := testenv.NATS(b)
	var (
		rb    proto.RowBuilder
		lines [][]byte
		size  int64
	)
	for i := range 20_000 {
		rb.Reset()
		rb.String(strconv.Itoa(i + 1))
		if i%17 == 0 {
			rb.Null()
		} else {
			rb.String(strconv.Itoa(i * 7919 % 1000000))
		}
		rb.String("-4999895.2710")
		rb.String("841470.9848078965")
		if i%2 == 0 {
			rb.String("Zürich ☃ 東京 🚀 " + strconv.Itoa(i))
		} else {
			rb.String("tab\there\nnewline \\ back " + strconv.Itoa(i))
		}
		rb.String("2020-01-01 00:00:01.234567+00")
		rb.String(`{"id": 1, "tags": [1, 1], "name": "item 1", "nested": {"v": 0.33333333333333333333, "ok": false}}`)
		rb.String(`\xc4ca4238a0b923820dcc509a6f75849bc4ca4238a0b923820dcc509a6f75849b`)
		line := append([]byte(nil), rb.Line()...)
		lines = append(lines, line)
		size += int64(len(line))
	}
	cols := []string{"id", "n", "amount", "ratio", "note", "at", "doc", "blob"}
	task := &proto.ChunkTask{V: proto.Version, Run: "00000000-0000-0000-0000-000000000001", Table: "public.bench_wide", Attempt: 1,
		Source: proto.TableRef{Schema: "public", Name: "bench_wide"}, Target: proto.TableRef{Schema: "public", Name: "bench_wide"},
		Cols: cols, TargetCols: cols, Key: []string{"id"}, Range: proto.RangeAll, BatchBytes: 1<<20 - 64<<10, BatchRows: 50_000}
	e := New(discardPublish{js}, lineSource{lines: lines}, Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx := context.Background()
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		res, err := e.extract(ctx, task)
		if err != nil {
			b.Fatal(err)
		}
		if res.Rows != int64(len(lines)) {
			b.Fatalf("extracted %d rows, want %d", res.Rows, len(lines))
		}
	}
	b.ReportMetric(float64(len(lines))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
