package loader

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/caravan-db/caravan/broker"
	"github.com/caravan-db/caravan/internal/testenv"
	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/target"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const run = "00000000-0000-0000-0000-0000000000aa"

// loaderFor starts a loader on a fresh target holding one run whose table
// public.t has the given chunks.
func loaderFor(t *testing.T, chunks int) (*pgxpool.Pool, jetstream.JetStream) {
	t.Helper()
	ctx := context.Background()
	pool, err := pgutil.Pool(ctx, testenv.Database(t, "dst"), "test", 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := target.EnsureState(ctx, pool); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE t (id integer PRIMARY KEY, v text)`,
		`INSERT INTO caravan.runs (run_id, status, source_kind, source) VALUES ('` + run + `', 'loading', 'test', 'x')`,
		`INSERT INTO caravan.tables (run_id, table_id, source_name, status) VALUES ('` + run + `', 'public.t', 't', 'pending')`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	var states []target.ChunkState
	for i := 0; i < chunks; i++ {
		states = append(states, target.ChunkState{Table: "public.t", Chunk: i, Attempt: 1, Range: proto.RangeAll})
	}
	if err := target.AddChunks(ctx, pool, run, states); err != nil {
		t.Fatal(err)
	}
	_, js := testenv.NATS(t)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = New(js, pool, Config{}).Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	return pool, js
}

func publishBatch(t *testing.T, js jetstream.JetStream, chunk int, data string) {
	t.Helper()
	publishRows(t, js, chunk, proto.EncodingCopyText, strings.Count(data, "\n"), []byte(data))
}

func publishRows(t *testing.T, js jetstream.JetStream, chunk int, encoding string, rows int, data []byte) {
	t.Helper()
	b := &proto.RowBatch{V: proto.Version, Run: run, Table: "public.t", Chunk: chunk, Attempt: 1, Seq: 0, Last: true, Rows: rows,
		Encoding: encoding, Target: proto.TableRef{Schema: "public", Name: "t"}, Cols: []string{"id", "v"}, Key: []int{0}, Data: data}
	enc, err := proto.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(proto.BatchesSubject(run))
	msg.Data = enc
	if _, err := js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
}

// chunkError waits for a chunk to fail and returns why.
func chunkError(t *testing.T, pool *pgxpool.Pool, chunk int) string {
	t.Helper()
	var reason string
	testenv.Eventually(t, 30*time.Second, "the chunk to fail", func() bool {
		err := pool.QueryRow(context.Background(), `SELECT error FROM caravan.chunks WHERE run_id = $1 AND table_id = 'public.t' AND chunk = $2 AND status = 'failed'`,
			run, chunk).Scan(&reason)
		return err == nil
	})
	return reason
}

// rejected reads the dead-letter event of a chunk.
func rejected(t *testing.T, js jetstream.JetStream) *proto.BatchRejected {
	t.Helper()
	ctx := context.Background()
	cons, err := js.CreateOrUpdateConsumer(ctx, proto.StreamEvents, jetstream.ConsumerConfig{Durable: "test",
		FilterSubject: proto.EventSubject(run, proto.EventBatchRejected), AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := broker.FetchOne(ctx, cons, 30*time.Second)
	if err != nil || msg == nil {
		t.Fatalf("no batch_rejected event: %v", err)
	}
	_ = msg.Ack()
	var ev proto.BatchRejected
	if err := proto.Unmarshal(msg.Data(), &ev); err != nil {
		t.Fatal(err)
	}
	return &ev
}

// A batch holding bytes that are not UTF-8 is rejected, and the reject is
// recorded although its row holds the same bytes: stored with \xNN
// escapes, which decode back to the row.
func TestRejectOfInvalidUTF8IsRecorded(t *testing.T) {
	pool, js := loaderFor(t, 1)
	publishBatch(t, js, 0, "1\tok\n2\tcaf\xe9\n")

	reason := chunkError(t, pool, 0)
	if !strings.Contains(reason, "invalid byte sequence") || !strings.Contains(reason, `id="2"`) {
		t.Errorf("chunk failed with %q", reason)
	}
	var row, key, errText string
	if err := pool.QueryRow(context.Background(), `SELECT row_text, key, error FROM caravan.rejects WHERE run_id = $1`, run).Scan(&row, &key, &errText); err != nil {
		t.Fatalf("no reject recorded: %v", err)
	}
	if row != "2\tcaf\\xe9" {
		t.Errorf("row_text %q", row)
	}
	fields, err := proto.SplitRow(nil, []byte(row))
	if err != nil || len(fields) != 2 || string(fields[1].Value) != "caf\xe9" {
		t.Errorf("row_text %q does not decode to the rejected row (%v)", row, err)
	}
	if ev := rejected(t, js); ev.Chunk != 0 || ev.Key != `id="2"` {
		t.Errorf("batch_rejected %+v", ev)
	}
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d rows of the rejected batch loaded (%v)", n, err)
	}
}

// A binary batch is loaded between the header and trailer the loader adds,
// and a refused one is recorded too: its row as the COPY text of its
// fields' send-format bytes, which decodes back to them.
func TestBinaryBatchLoadsAndRejects(t *testing.T) {
	pool, js := loaderFor(t, 2)
	tuple := func(id byte, v string) []byte {
		return append([]byte{0, 2, 0, 0, 0, 4, 0, 0, 0, id, 0, 0, 0, byte(len(v))}, v...)
	}
	publishRows(t, js, 0, proto.EncodingCopyBinary, 2, append(tuple(1, "ok"), tuple(3, "fine")...))
	publishRows(t, js, 1, proto.EncodingCopyBinary, 2, append(tuple(5, "ok"), tuple(2, "caf\xe9")...))

	reason := chunkError(t, pool, 1)
	if !strings.Contains(reason, "invalid byte sequence") || !strings.Contains(reason, `id="\x00\x00\x00\x02"`) {
		t.Errorf("chunk failed with %q", reason)
	}
	var row string
	if err := pool.QueryRow(context.Background(), `SELECT row_text FROM caravan.rejects WHERE run_id = $1`, run).Scan(&row); err != nil {
		t.Fatalf("no reject recorded: %v", err)
	}
	fields, err := proto.SplitRow(nil, []byte(row))
	if err != nil || len(fields) != 2 || string(fields[0].Value) != "\x00\x00\x00\x02" || string(fields[1].Value) != "caf\xe9" {
		t.Errorf("row_text %q does not decode to the rejected row's fields (%v)", row, err)
	}
	var got string
	testenv.Eventually(t, 30*time.Second, "the good binary batch to load", func() bool {
		err := pool.QueryRow(context.Background(), `SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM t`).Scan(&got)
		return err == nil && got != ""
	})
	if got != "1=ok,3=fine" {
		t.Errorf("table holds %q", got)
	}
}

// A reject that cannot be recorded at all still fails its chunk, with the
// reason, so the run goes on instead of waiting for the chunk forever.
func TestRejectThatCannotBeRecordedFailsTheChunk(t *testing.T) {
	pool, js := loaderFor(t, 1)
	if _, err := pool.Exec(context.Background(), `ALTER TABLE caravan.rejects ADD CONSTRAINT refuse_all CHECK (false) NOT VALID`); err != nil {
		t.Fatal(err)
	}
	publishBatch(t, js, 0, "1\tok\n1\tduplicate\n")

	reason := chunkError(t, pool, 0)
	for _, want := range []string{"duplicate key", "could not be recorded", "refuse_all"} {
		if !strings.Contains(reason, want) {
			t.Errorf("chunk failed with %q, which lacks %q", reason, want)
		}
	}
	if ev := rejected(t, js); ev.Error != reason {
		t.Errorf("batch_rejected says %q, the chunk %q", ev.Error, reason)
	}
}
