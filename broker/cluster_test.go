package broker_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/caravan-db/caravan/broker"
	"github.com/caravan-db/caravan/internal/testenv"
	"github.com/caravan-db/caravan/proto"
)

// TestClusterKeepsThreeReplicas forms a three-node cluster of caravan's own
// brokers and sets up caravan's streams and consumers on it right away:
// setup waits for the cluster to form, every stream and consumer gets three
// replicas, and an owner that does not ask for a count keeps them at three.
func TestClusterKeepsThreeReplicas(t *testing.T) {
	var clients, routes, listens []string
	for range 3 {
		clients = append(clients, testenv.FreeAddr(t))
		listens = append(listens, testenv.FreeAddr(t))
		routes = append(routes, "nats://"+listens[len(listens)-1])
	}
	for i := range 3 {
		srv, err := broker.StartServer(broker.ServerConfig{Dir: t.TempDir(), Listen: clients[i], ServerName: fmt.Sprintf("n%d", i+1),
			ClusterName: "test", ClusterListen: listens[i], Routes: routes})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Shutdown)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nc, js, err := broker.Connect("nats://"+strings.Join(clients, ",nats://"), "caravan-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	log := slog.Default()
	if err := broker.Ready(ctx, nc, js, log); err != nil {
		t.Fatal(err)
	}
	if err := broker.EnsureStreams(ctx, js, broker.StreamConfig{Replicas: 3}, log); err != nil {
		t.Fatal(err)
	}
	if err := broker.EnsureConsumers(ctx, js, broker.ConsumerConfig{}, log); err != nil {
		t.Fatal(err)
	}
	if err := broker.EnsureStreams(ctx, js, broker.StreamConfig{}, log); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{proto.StreamTasks, proto.StreamBatches, proto.StreamEvents, "OBJ_" + proto.BlobBucket} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if info := s.CachedInfo(); info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Errorf("stream %s: %d replicas (%+v), want 3", name, info.Config.Replicas, info.Cluster)
		}
	}
	for stream, name := range map[string]string{proto.StreamTasks: proto.ConsumerExtractors, proto.StreamBatches: proto.ConsumerLoaders,
		proto.StreamEvents: proto.ConsumerValidatorTables} {
		c, err := broker.Bind(ctx, js, stream, name, log)
		if err != nil {
			t.Fatal(err)
		}
		if info := c.CachedInfo(); info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Errorf("consumer %s is not kept on three nodes: %+v", name, info.Cluster)
		}
	}
}

// TestBrokerSaysWhenARouteFails: a node whose peer cannot be reached says so
// in caravan's log (the server's own messages used to be switched off, so a
// cluster that never formed was silent), and a password in a route URL never
// reaches the log.
func TestBrokerSaysWhenARouteFails(t *testing.T) {
	var out testenv.SyncBuffer
	log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	unreachable := testenv.FreeAddr(t) // nothing listens there
	srv, err := broker.StartServer(broker.ServerConfig{Dir: t.TempDir(), Listen: testenv.FreeAddr(t), ServerName: "lonely",
		ClusterName: "test", ClusterListen: testenv.FreeAddr(t), Routes: []string{"nats://ruser:s3cret-route@" + unreachable}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	testenv.Eventually(t, time.Minute, "an error about the unreachable route in the log", func() bool {
		text := out.String()
		return strings.Contains(text, "level=ERROR") && strings.Contains(text, unreachable)
	})
	if strings.Contains(out.String(), "s3cret-route") {
		t.Fatalf("the route's password reached the log:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "component=nats-server") {
		t.Fatalf("server messages not marked as the server's:\n%s", out.String())
	}
}
