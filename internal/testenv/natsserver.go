package testenv

import (
	"bytes"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// NATSServerBinary is the nats-server a test runs: CARAVAN_TEST_NATS_SERVER,
// else Debian's package path (`apt-get install nats-server`), else the one
// on PATH; "" when there is none.
func NATSServerBinary() string {
	if p := os.Getenv("CARAVAN_TEST_NATS_SERVER"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nats-server"); err == nil {
		return "/usr/sbin/nats-server"
	}
	p, _ := exec.LookPath("nats-server")
	return p
}

// NATSServer is a nats-server process started for one test.
type NATSServer struct {
	URL  string // nats://127.0.0.1:port
	Dir  string // JetStream storage
	cmd  *exec.Cmd
	done chan struct{}
	out  *SyncBuffer
}

// StartNATSServer runs the nats-server binary with JetStream storing on
// disk in a directory of its own, on a free loopback port, with extra
// arguments appended. It skips the test, saying why, when there is no
// binary. The server is killed at cleanup and its output shown when the
// test failed.
func StartNATSServer(t testing.TB, extra ...string) *NATSServer {
	t.Helper()
	bin := NATSServerBinary()
	if bin == "" {
		t.Skip("no nats-server binary: install it (apt-get install nats-server) or set CARAVAN_TEST_NATS_SERVER")
	}
	s := &NATSServer{Dir: t.TempDir(), done: make(chan struct{}), out: &SyncBuffer{}}
	addr := FreeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	s.URL = "nats://" + addr
	args := append([]string{"-js", "-sd", s.Dir, "-a", host, "-p", port}, extra...)
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			t.Logf("nats-server %s output:\n%s", s.URL, s.out.String())
		}
	})
	Eventually(t, 30*time.Second, "nats-server "+s.URL+" to listen", func() bool {
		select {
		case <-s.done:
			t.Fatalf("nats-server exited: %s", s.out.String())
		default:
		}
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return s
}

// Kill stops the server at once (SIGKILL) and waits for it.
func (s *NATSServer) Kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// Output is what the server printed so far.
func (s *NATSServer) Output() string { return s.out.String() }

// FreeAddr returns a loopback host:port nothing listens on right now, for a
// process started next to listen on. It is picked at random below the
// kernel's ephemeral range: a port the kernel handed out for ":0" is soon
// handed out again (to another test process asking the same, or as the
// local port of one of the many outgoing connections), and a cluster
// node's route port taken that way left a test's cluster without a
// JetStream leader (a server of another test routed to it).
func FreeAddr(t testing.TB) string {
	t.Helper()
	for range 200 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePortLow+rand.IntN(freePortHigh-freePortLow)))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		_ = l.Close()
		return addr
	}
	t.Fatalf("free port: none free in %d-%d after 200 tries", freePortLow, freePortHigh)
	return ""
}

// The ports FreeAddr picks from: below Linux's default ephemeral range
// (32768-60999).
const freePortLow, freePortHigh = 20000, 32000

// SyncBuffer is a log sink several goroutines write to while a test reads
// it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
