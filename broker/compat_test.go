package broker_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/caravan-db/caravan/broker"
	"github.com/caravan-db/caravan/internal/testenv"
	"github.com/caravan-db/caravan/proto"
)

// TestOnNATSServerBinary runs every JetStream operation caravan uses
// against the installed nats-server (Debian 12 ships 2.9.10): streams,
// the blob bucket, the shared consumers made by their owner and bound by
// workers, a run's event consumer, and the ways messages are published and
// acknowledged.
func TestOnNATSServerBinary(t *testing.T) {
	srv := testenv.StartNATSServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	nc, js, err := broker.Connect(srv.URL, "caravan-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := broker.Ready(ctx, nc, js, log); err != nil {
		t.Fatal(err)
	}
	t.Logf("nats-server %s", nc.ConnectedServerVersion())

	// A worker started first waits for its consumer, and binds once the
	// owner made it.
	bound := make(chan error, 1)
	go func() {
		c, err := broker.Bind(ctx, js, proto.StreamTasks, proto.ConsumerExtractors, log)
		if err == nil && c.CachedInfo().Config.AckWait != 7*time.Second {
			t.Errorf("bound consumer's ack wait %s, want the owner's 7s", c.CachedInfo().Config.AckWait)
		}
		bound <- err
	}()
	for range 2 { // creating is updating: a second owner changes nothing
		if err := broker.EnsureStreams(ctx, js, broker.StreamConfig{}, log); err != nil {
			t.Fatal(err)
		}
		if err := broker.EnsureConsumers(ctx, js, broker.ConsumerConfig{TaskAckWait: 7 * time.Second}, log); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-bound; err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "changing") {
		t.Errorf("an owner setting the same ack waits again says it changes them:\n%s", logs.String())
	}
	// A broker upgraded from an earlier caravan still holds its retired
	// validator consumer: the owner removes it.
	if _, err := js.CreateOrUpdateConsumer(ctx, proto.StreamEvents, jetstream.ConsumerConfig{Durable: "validator",
		FilterSubject: proto.SubjectAllEvents, AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	// Another owner with other ack waits changes them for everyone, and says so.
	if err := broker.EnsureConsumers(ctx, js, broker.ConsumerConfig{TaskAckWait: 9 * time.Second}, log); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Consumer(ctx, proto.StreamEvents, "validator"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("the retired validator consumer is still there (%v)", err)
	}
	if !strings.Contains(logs.String(), "removed a consumer of an earlier caravan version") {
		t.Errorf("removing the retired consumer went unsaid:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "changing a shared consumer's ack wait") || !strings.Contains(logs.String(), "from=7s to=9s") {
		t.Errorf("changing the extractors' ack wait went unsaid:\n%s", logs.String())
	}
	for _, name := range []string{proto.ConsumerLoaders, proto.ConsumerValidatorTables, proto.ConsumerValidatorFKs} {
		stream := proto.StreamEvents
		if name == proto.ConsumerLoaders {
			stream = proto.StreamBatches
		}
		if _, err := broker.Bind(ctx, js, stream, name, log); err != nil {
			t.Fatalf("bind %s: %v", name, err)
		}
	}
	events, err := broker.EventConsumer(ctx, js, "coordinator", "r1")
	if err != nil {
		t.Fatal(err)
	}

	// Work queue: publish, fetch, extend, nak, double ack.
	tasks, err := js.Consumer(ctx, proto.StreamTasks, proto.ConsumerExtractors)
	if err != nil {
		t.Fatal(err)
	}
	if err := broker.Publish(ctx, js, proto.TasksSubject("r1"), &proto.ChunkTask{V: proto.Version, Run: "r1"}, nil); err != nil {
		t.Fatal(err)
	}
	msg, err := broker.FetchOne(ctx, tasks, 5*time.Second)
	if err != nil || msg == nil {
		t.Fatalf("fetch a task: %v %v", msg, err)
	}
	if err := msg.InProgress(); err != nil {
		t.Fatal(err)
	}
	if err := msg.NakWithDelay(10 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if msg, err = broker.FetchOne(ctx, tasks, 5*time.Second); err != nil || msg == nil {
		t.Fatalf("fetch a redelivered task: %v %v", msg, err)
	}
	if err := msg.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}

	// Events: a hint published without waiting, read by the run's consumer;
	// the validator's consumers see only their own kind.
	if err := broker.PublishAsync(js, proto.EventSubject("r1", proto.EventBatchLoaded), &proto.BatchLoaded{V: proto.Version, Run: "r1"}, nil); err != nil {
		t.Fatal(err)
	}
	<-js.PublishAsyncComplete()
	iter, err := events.Messages()
	if err != nil {
		t.Fatal(err)
	}
	ev, err := iter.Next()
	iter.Stop()
	if err != nil || ev.Subject() != proto.EventSubject("r1", proto.EventBatchLoaded) {
		t.Fatalf("event: %v", err)
	}
	tables, _ := js.Consumer(ctx, proto.StreamEvents, proto.ConsumerValidatorTables)
	if info, err := tables.Info(ctx); err != nil || info.NumPending != 0 {
		t.Fatalf("validator-tables consumer sees a batch_loaded event: %+v %v", info, err)
	}

	// Blobs: a row larger than a message.
	blobs, err := js.ObjectStore(ctx, proto.BlobBucket)
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 3<<20)
	if _, err := blobs.PutBytes(ctx, "r1.big", big); err != nil {
		t.Fatal(err)
	}
	if got, err := blobs.GetBytes(ctx, "r1.big"); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("blob: %v", err)
	}
	if err := blobs.Delete(ctx, "r1.big"); err != nil {
		t.Fatal(err)
	}

	// One server cannot keep three copies: a clear refusal, not a wait.
	err = broker.EnsureStreams(ctx, js, broker.StreamConfig{Replicas: 3}, log)
	if err == nil || !strings.Contains(err.Error(), "replicas") {
		t.Errorf("3 replicas on one server: %v", err)
	}
}
