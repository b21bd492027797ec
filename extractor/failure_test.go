package extractor

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/caravan-db/caravan/broker"
	"github.com/caravan-db/caravan/internal/testenv"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/source/postgres"
)

// A task whose snapshot is gone (its coordinator stopped) fails its chunk
// on the first delivery, saying how to finish the run, instead of being
// retried eight times with a warning each.
func TestSnapshotGoneFailsChunkAtOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src := testenv.Database(t, "src")
	testenv.Exec(t, src, `CREATE TABLE t (id integer PRIMARY KEY, v text)`, `INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 10) g`)

	// A snapshot whose exporting transaction has ended, as when the
	// coordinator that exported it is gone.
	conn, err := pgx.Connect(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	var ended string
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ"); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&ended); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	s, err := postgres.Open(ctx, src, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, js := testenv.NATS(t)
	var logs testenv.SyncBuffer
	e := New(js, s, Config{Concurrency: 2, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(runCtx) }()
	defer func() { stop(); <-done }()

	events, err := js.CreateOrUpdateConsumer(ctx, proto.StreamEvents, jetstream.ConsumerConfig{Durable: "test-failed",
		FilterSubject: proto.SubjectAllEvents, AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	for i, snap := range []string{ended, "00000003-0000001B-1"} {
		run := []string{"11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"}[i]
		task := &proto.ChunkTask{V: proto.Version, Run: run, Table: "public.t", Chunk: 0, Attempt: 1,
			Source: proto.TableRef{Schema: "public", Name: "t"}, Target: proto.TableRef{Schema: "public", Name: "t"},
			Cols: []string{"id", "v"}, Types: []string{"integer", "text"}, TargetCols: []string{"id", "v"}, TargetTypes: []string{"integer", "text"},
			Key: []string{"id"}, KeyTypes: []string{"integer"}, Range: proto.RangeAll, Snapshot: snap, BatchBytes: 1 << 16, BatchRows: 100}
		if err := broker.Publish(ctx, js, proto.TasksSubject(run), task, nil); err != nil {
			t.Fatal(err)
		}
		msg, err := broker.FetchOne(ctx, events, 30*time.Second)
		if err != nil || msg == nil {
			t.Fatalf("snapshot %s: no event: %v", snap, err)
		}
		_ = msg.Ack()
		if proto.EventKind(msg.Subject()) != proto.EventChunkFailed {
			t.Fatalf("snapshot %s: got %s, want %s", snap, msg.Subject(), proto.EventChunkFailed)
		}
		var failed proto.ChunkFailed
		if err := proto.Unmarshal(msg.Data(), &failed); err != nil {
			t.Fatal(err)
		}
		if want := "a migration: finish it with caravan resume " + run; !strings.Contains(failed.Error, want) || failed.Table != "public.t" {
			t.Errorf("snapshot %s: chunk failed with %q, want it to say %q", snap, failed.Error, want)
		}
	}
	// Each task was delivered once and terminated: nothing is retried.
	cons, err := js.Consumer(ctx, proto.StreamTasks, proto.ConsumerExtractors)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "both tasks settled", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.Delivered.Consumer == 2 && info.NumAckPending == 0
	})
	info, _ := cons.Info(ctx)
	if info.NumRedelivered != 0 {
		t.Errorf("%d redeliveries", info.NumRedelivered)
	}
	out := logs.String()
	if n := strings.Count(out, "level=ERROR"); n != 2 || strings.Contains(out, "will be retried") {
		t.Errorf("want one ERROR line per chunk and no retry, got:\n%s", out)
	}
	if !strings.Contains(out, "table=public.t chunk=0") {
		t.Errorf("the ERROR line does not name table and chunk:\n%s", out)
	}
}
