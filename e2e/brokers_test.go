package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/caravan-db/caravan/broker"
	"github.com/caravan-db/caravan/internal/testenv"
	"github.com/caravan-db/caravan/proto"
)

// startWorkers starts an extractor, a loader and a validator, each its own
// process, against natsURL (one server or a comma-separated list).
func startWorkers(t *testing.T, src, dst, natsURL string) map[string]*proc {
	t.Helper()
	return map[string]*proc{
		"extractor": startLogged(t, "extractor", "extractor", "--source-url", src, "--nats-url", natsURL),
		"loader":    startLogged(t, "loader", "loader", "--target-url", dst, "--nats-url", natsURL),
		"validator": startLogged(t, "validator", "validator", "--target-url", dst, "--nats-url", natsURL),
	}
}

// TestDistributedOnStockNATSServer runs every role as its own process
// against the nats-server binary users install from their distribution
// (Debian 12: 2.9.10, with its 1 MiB message limit), JetStream on disk.
// Foreign keys exercise the validator's second consumer, and a row larger
// than a message the object store.
func TestDistributedOnStockNATSServer(t *testing.T) {
	srv := testenv.StartNATSServer(t)
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, traceSource...)
	testenv.Exec(t, src, `CREATE TABLE wide (id integer PRIMARY KEY, body text)`,
		`INSERT INTO wide SELECT g, repeat(md5(g::text), CASE WHEN g = 7 THEN 50000 ELSE 3 END) FROM generate_series(1, 20) g`)
	run := uuid.NewString()

	// Workers started before any coordinator wait for their consumers, and
	// say so.
	for _, p := range startWorkers(t, src, dst, srv.URL) {
		p.waitForLog(t, regexp.MustCompile(`waiting for a coordinator.*"consumer":"(extractors|loaders|validator-loaded|validator-tables)"`))
	}
	res := caravan(t, 3*time.Minute, "coordinator", "--source-url", src, "--target-url", dst, "--nats-url", srv.URL,
		"--run-id", run, "--chunk-rows", "300", "--batch-rows", "100")
	if res.code != 0 {
		t.Fatalf("coordinator exited %d against nats-server\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, tail(res.stderr, 6000))
	}
	mustContain(t, res.stdout, "succeeded", "public.items", "public.notes", "public.wide")
	assertSameContent(t, src, dst, "items", "notes", "wide")
	assertExactlyOnce(t, src, dst, run, "public.items", "public.notes", "public.wide")
	if n := query[int64](t, dst, `SELECT count(*) FROM caravan.verdicts WHERE run_id = $1 AND level = 'fk' AND ok`, run); n != 1 {
		t.Errorf("%d ok foreign-key verdicts, want 1", n)
	}
}

// clusterNode is one `caravan broker` process of a cluster.
type clusterNode struct {
	name, client, route string
	cmd                 *exec.Cmd
}

// startBrokerCluster starts n `caravan broker` processes on loopback ports,
// each with its own data directory, routed to one another, and returns
// them with the client URL list that names them all.
func startBrokerCluster(t *testing.T, n int) ([]*clusterNode, string) {
	t.Helper()
	nodes := make([]*clusterNode, n)
	var routes, clients []string
	for i := range nodes {
		nodes[i] = &clusterNode{name: fmt.Sprintf("node-%d", i+1), client: testenv.FreeAddr(t), route: testenv.FreeAddr(t)}
		routes = append(routes, "nats://"+nodes[i].route)
		clients = append(clients, "nats://"+nodes[i].client)
	}
	for _, nd := range nodes {
		nd.cmd = start(t, "broker-"+nd.name, "broker", "--server-name", nd.name, "--listen", nd.client, "--data-dir", t.TempDir(),
			"--cluster-name", "caravan-test", "--cluster-listen", nd.route, "--routes", strings.Join(routes, ","))
	}
	return nodes, strings.Join(clients, ",")
}

// TestBrokerClusterLosesStreamLeader runs every role as its own process
// against a three-node cluster of `caravan broker` processes, streams and
// consumers kept in three replicas, and SIGKILLs the node that leads the
// batches stream mid-run without starting it again. The two nodes left
// elect new leaders, clients move to them, and the run ends with every row
// there exactly once.
func TestBrokerClusterLosesStreamLeader(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, bigTable("big", 150_000)...)
	nodes, natsURL := startBrokerCluster(t, 3)
	run := uuid.NewString()

	startWorkers(t, src, dst, natsURL)
	coord := start(t, "coordinator", "coordinator", "--source-url", src, "--target-url", dst, "--nats-url", natsURL,
		"--run-id", run, "--chunk-rows", "10000", "--batch-rows", "1000", "--replicas", "3", "--batch-ack-wait", "5s", "--task-ack-wait", "10s")

	testenv.Eventually(t, 2*time.Minute, "batches to be committed", func() bool {
		return countOr0(dst, `SELECT count(*) FROM caravan.ledger WHERE run_id = $1`, run) >= 20
	})
	leader := streamLeader(t, natsURL, proto.StreamBatches)
	var victim *clusterNode
	for _, nd := range nodes {
		if nd.name == leader {
			victim = nd
		}
	}
	if victim == nil {
		t.Fatalf("the batches stream's leader %q is none of the nodes", leader)
	}
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = victim.cmd.Wait()
	atKill := countOr0(dst, `SELECT count(*) FROM caravan.ledger WHERE run_id = $1`, run)
	t.Logf("killed %s, the batches stream's leader, with %d batches committed", leader, atKill)

	if code := waitExit(t, coord, 3*time.Minute); code != 0 {
		t.Fatalf("coordinator exited %d after the stream leader was killed", code)
	}
	if total := query[int64](t, dst, `SELECT count(*) FROM caravan.ledger WHERE run_id = $1`, run); total <= atKill {
		t.Fatalf("the run was over when the leader died (%d of %d batches): the test proves nothing", atKill, total)
	}
	assertSameContent(t, src, dst, "big")
	assertExactlyOnce(t, src, dst, run, "big")
}

// streamLeader asks the cluster which node leads a stream, and checks the
// stream is kept in three replicas.
func streamLeader(t *testing.T, natsURL, stream string) string {
	t.Helper()
	nc, js, err := broker.Connect(natsURL, "caravan-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info := s.CachedInfo()
	if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream %s is not kept in 3 replicas: %+v %+v", stream, info.Config, info.Cluster)
	}
	return info.Cluster.Leader
}
