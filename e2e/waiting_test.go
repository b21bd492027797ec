package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/caravan-db/caravan/broker"
	"github.com/caravan-db/caravan/coordinator"
	"github.com/caravan-db/caravan/internal/testenv"
	"github.com/caravan-db/caravan/loader"
	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/source/postgres"
	"github.com/caravan-db/caravan/target"
	"github.com/caravan-db/caravan/telemetry"
)

// TestCoordinatorSaysWhatItWaitsFor: with no extractor, and a loader whose
// target is another database, the coordinator says every so often what it
// waits for, naming the missing role and the loader that cannot serve; with
// a loader of the run held up by someone's lock on the target, whose lock.
func TestCoordinatorSaysWhatItWaitsFor(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	other := testenv.Database(t, "other")
	testenv.Exec(t, src, `CREATE TABLE t (id integer PRIMARY KEY)`, `INSERT INTO t SELECT generate_series(1, 100)`)
	natsURL, js := testenv.NATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	logs := &testenv.SyncBuffer{}
	log, err := telemetry.NewLogger(logs, telemetry.LogJSON, "info")
	if err != nil {
		t.Fatal(err)
	}
	s, err := postgres.Open(ctx, src, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pool, err := pgutil.Pool(ctx, dst, "caravan-test", 4)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	run := uuid.NewString()
	c := coordinator.New(s, pool, js, coordinator.Config{Run: run, SourceURL: src, PollEvery: 100 * time.Millisecond,
		QuietAfter: 500 * time.Millisecond, Log: log, Options: coordinator.Options{BatchRows: 10}})
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()

	testenv.Eventually(t, time.Minute, "the coordinator to say no extractor is there", func() bool {
		return strings.Contains(logs.String(), "chunks to be read") && strings.Contains(logs.String(), "extractor")
	})

	// A batch of the run reaches a loader whose target is another database:
	// it must leave the batch on the broker and tell the run.
	otherPool, err := pgutil.Pool(ctx, other, "caravan-test", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer otherPool.Close()
	loaderLogs := &testenv.SyncBuffer{}
	loaderLog, _ := telemetry.NewLogger(loaderLogs, telemetry.LogJSON, "info")
	_, ljs, err := broker.Connect(natsURL, "wrong-loader")
	if err != nil {
		t.Fatal(err)
	}
	lctx, stopLoader := context.WithCancel(ctx)
	defer stopLoader()
	go func() { _ = loader.New(ljs, otherPool, loader.Config{Log: loaderLog}).Run(lctx) }()
	batch := &proto.RowBatch{V: proto.Version, Run: run, Table: "public.t", Chunk: 0, Attempt: 1, Seq: 0, Last: true, Rows: 1,
		Encoding: proto.EncodingCopyText, Target: proto.TableRef{Schema: "public", Name: "t"}, Cols: []string{"id"}, Data: []byte("1\n")}
	if err := broker.Publish(ctx, js, proto.BatchesSubject(run), batch, nil); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, time.Minute, "the coordinator to name the loader that cannot serve the run", func() bool {
		return strings.Contains(logs.String(), "loader") && strings.Contains(logs.String(), "cannot serve this run")
	})
	if !strings.Contains(loaderLogs.String(), `"level":"WARN"`) || !strings.Contains(loaderLogs.String(), run) {
		t.Errorf("the wrong loader did not warn naming the run:\n%s", loaderLogs.String())
	}
	stopLoader()
	// The batch is still on the broker for a loader that can serve it.
	stream, err := js.Stream(ctx, proto.StreamBatches)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the batch to stay on the broker", func() bool {
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter(proto.BatchesSubject(run)))
		return err == nil && info.State.Msgs == 1
	})

	// A loader of the run's own target takes the batch, and its COPY waits
	// on a lock someone holds on the table: the coordinator says whose.
	lock := holdLock(t, dst, `LOCK TABLE t IN ACCESS EXCLUSIVE MODE`)
	loaderPool, err := pgutil.Pool(ctx, dst, target.App, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer loaderPool.Close()
	_, rjs, err := broker.Connect(natsURL, "loader")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = loader.New(rjs, loaderPool, loader.Config{Log: loaderLog}).Run(ctx) }()
	testenv.Eventually(t, time.Minute, "the coordinator to name the lock its loader waits for", func() bool {
		return strings.Contains(logs.String(), "waits for a lock held by pid")
	})
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
}
