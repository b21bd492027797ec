package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/caravan-db/caravan/internal/testenv"
)

// outage is how long the loader is cut off: longer than its batches' ack
// wait, so JetStream hands them to the other loader meanwhile, and long
// enough for TCP to be retransmitting, not just delayed.
const outage = 20 * time.Second

// TestLoaderCutOffByNetwork cuts a loader off from the broker and the
// target for 20 s by taking its network link down (not by killing it),
// then brings the link back. The loader runs in its own network namespace,
// reaching the broker and PostgreSQL through a veth pair; a second loader
// on the host goes on meanwhile. The run ends with exit 0 and every row
// exactly once, and the cut-off loader is still alive.
func TestLoaderCutOffByNetwork(t *testing.T) {
	ns := newNetns(t)
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, bigTable("big", 200_000)...)

	// Everything listens on the host end of the veth: the broker itself,
	// and PostgreSQL through a forwarder (the test server may listen on
	// loopback only).
	natsURL := startBroker(t, ns.hostIP)
	pg := forwardTCP(t, ns.hostIP, hostOf(t, dst))
	dstViaVeth := withHost(t, dst, pg.addr)
	run := uuid.NewString()

	cutOff := startArgv(t, "loader-netns", "ip", "netns", "exec", ns.name,
		binary, "loader", "--target-url", dstViaVeth, "--nats-url", natsURL)
	startLogged(t, "loader", "loader", "--target-url", dst, "--nats-url", natsURL, "--loaders", "1")
	startLogged(t, "extractor", "extractor", "--source-url", src, "--nats-url", natsURL)
	startLogged(t, "validator", "validator", "--target-url", dst, "--nats-url", natsURL)
	coord := start(t, "coordinator", "coordinator", "--source-url", src, "--target-url", dst, "--nats-url", natsURL,
		"--run-id", run, "--chunk-rows", "20000", "--batch-rows", "4000", "--batch-ack-wait", "5s")

	// A batch is about 500 kB of COPY data: a few MB through the forwarder
	// means the namespaced loader is committing batches. Cut it off in the
	// middle of one.
	inTx := func() int64 {
		return countOr0(dst, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND xact_start IS NOT NULL
			AND client_addr = '127.0.0.1' AND client_port = ANY($1)`, pg.serverPorts())
	}
	testenv.Eventually(t, 2*time.Minute, "the loader in the namespace to be committing batches", func() bool {
		return pg.fromClients.Load() > 2<<20 && ledgerRows(dst, run) >= 8 && inTx() > 0
	})
	ns.link(t, "down")
	atCut := ledgerRows(dst, run)
	stuck := inTx()
	sentAtCut := pg.fromClients.Load()
	<-time.After(outage) // the fault itself lasts this long; nothing is synchronised on it
	if sent := pg.fromClients.Load(); sent != sentAtCut {
		t.Fatalf("%d bytes reached PostgreSQL from the namespace while its link was down: the cut did not cut", sent-sentAtCut)
	}
	ns.link(t, "up")

	if code := runExit(t, coord, 90*time.Second, dst, run); code != 0 {
		t.Fatalf("coordinator exited %d after a loader was cut off", code)
	}
	if total := ledgerRows(dst, run); total <= atCut {
		t.Fatalf("the run was over when the loader was cut off (%d of %d batches): the test proves nothing", atCut, total)
	}
	if !cutOff.alive() {
		t.Error("the loader cut off by the network died instead of waiting for its link")
	}
	t.Logf("cut off with %d batches committed and %d transactions of the namespaced loader open; %d batches in all", atCut, stuck, ledgerRows(dst, run))
	assertSameContent(t, src, dst, "big")
	assertExactlyOnce(t, src, dst, run, "public.big")
}

// netns is a network namespace joined to the host by a veth pair whose two
// ends hold the only addresses of a private /30.
type netns struct {
	name         string
	hostIF, nsIF string
	hostIP, nsIP string
}

// newNetns creates the namespace and its veth pair, removed at cleanup
// even when the test fails. It skips the test unless run as root with
// iproute2's ip command.
func newNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command (iproute2) to create a network namespace")
	}
	id := make([]byte, 3)
	_, _ = rand.Read(id)
	tag := hex.EncodeToString(id)
	ns := &netns{name: "caravan-" + tag, hostIF: "cvh" + tag, nsIF: "cvn" + tag}
	// 10.200-249.x.y/30, skipping any subnet an interface of this machine
	// already uses.
	for {
		_, _ = rand.Read(id)
		base := fmt.Sprintf("10.%d.%d.%d", 200+int(id[0])%50, id[1], int(id[2])&^3)
		host := net.ParseIP(base).To4()
		host[3]++
		peer := net.ParseIP(base).To4()
		peer[3] += 2
		if !addressInUse(t, base) {
			ns.hostIP, ns.nsIP = host.String(), peer.String()
			break
		}
	}
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", ns.name).Run()
		_ = exec.Command("ip", "link", "del", ns.hostIF).Run() // gone with the namespace, unless moving it failed
	})
	for _, args := range [][]string{
		{"netns", "add", ns.name},
		{"link", "add", ns.hostIF, "type", "veth", "peer", "name", ns.nsIF},
		{"link", "set", ns.nsIF, "netns", ns.name},
		{"addr", "add", ns.hostIP + "/30", "dev", ns.hostIF},
		{"link", "set", ns.hostIF, "up"},
		{"netns", "exec", ns.name, "ip", "addr", "add", ns.nsIP + "/30", "dev", ns.nsIF},
		{"netns", "exec", ns.name, "ip", "link", "set", ns.nsIF, "up"},
		{"netns", "exec", ns.name, "ip", "link", "set", "lo", "up"},
	} {
		ip(t, args...)
	}
	return ns
}

// link takes the namespace's end of the veth down or up. The host end
// stays up, so processes on the host still reach the broker on its
// address.
func (ns *netns) link(t *testing.T, state string) {
	t.Helper()
	ip(t, "netns", "exec", ns.name, "ip", "link", "set", ns.nsIF, state)
}

func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// addressInUse says whether an interface holds an address in base's /30.
func addressInUse(t *testing.T, base string) bool {
	t.Helper()
	_, subnet, err := net.ParseCIDR(base + "/30")
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && (subnet.Contains(ipn.IP) || ipn.Contains(subnet.IP)) {
			return true
		}
	}
	return false
}

// forwarder relays TCP connections from its address to another; a plain
// byte pipe, so the client talks to the real server behind it.
type forwarder struct {
	addr        string
	fromClients atomic.Int64 // bytes the clients sent

	mu    sync.Mutex
	ports []int // local ports of the connections to the server
}

// serverPorts returns the local ports of the forwarder's connections to
// the server: PostgreSQL's client_port of the sessions it relays.
func (f *forwarder) serverPorts() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.ports...)
}

// forwardTCP listens on host (any free port) and relays every connection
// to target until the test ends.
func forwardTCP(t *testing.T, host, target string) *forwarder {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{addr: l.Addr().String()}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	track := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if conns == nil {
			return false // closed
		}
		conns = append(conns, c)
		return true
	}
	conns = []net.Conn{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			client, err := l.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil || !track(client) || !track(server) {
				client.Close()
				if server != nil {
					server.Close()
				}
				continue
			}
			f.mu.Lock()
			f.ports = append(f.ports, server.LocalAddr().(*net.TCPAddr).Port)
			f.mu.Unlock()
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(server, countingReader{client, &f.fromClients})
				server.Close()
			}()
			go func() {
				defer wg.Done()
				_, _ = io.Copy(client, server)
				client.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		conns = nil
		mu.Unlock()
		wg.Wait()
	})
	return f
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// hostOf returns a URL's host:port.
func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "5432")
	}
	return u.Host
}

// withHost returns a URL with its host:port replaced.
func withHost(t *testing.T, raw, hostport string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = hostport
	return u.String()
}
