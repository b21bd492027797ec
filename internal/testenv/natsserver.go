package testenv

import (
	"bytes"
	"net"
	"os"
	"os/exec"
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

// FreeAddr returns a loopback host:port nothing listens on right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

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
