package e2e

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/caravan-db/caravan/internal/testenv"
)

// silentHost accepts TCP connections and never answers: the host the
// connect timeout is for.
func silentHost(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, conn)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range held {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// A source, target or broker that accepts TCP and never answers fails the
// command within --connect-timeout, naming the endpoint, password redacted.
func TestConnectTimeoutNamesTheEndpoint(t *testing.T) {
	dst := testenv.Database(t, "dst")
	host := silentHost(t)
	silentPG := "postgres://app:s3cr3t-pw@" + host + "/db"
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"source", []string{"plan", "--source-url", silentPG}, "source postgres://app:xxxxx@" + host + "/db did not answer within 1s"},
		{"target", []string{"status", "--target-url", silentPG}, "target postgres://app:xxxxx@" + host + "/db did not answer within 1s"},
		{"broker", []string{"loader", "--target-url", dst, "--nats-url", "nats://" + host}, "broker nats://" + host + " did not answer within 1s"},
	} {
		started := time.Now()
		res := caravan(t, time.Minute, append(c.args, "--connect-timeout", "1s")...)
		if took := time.Since(started); took > 20*time.Second {
			t.Errorf("%s: gave up after %s", c.name, took)
		}
		if res.code != 1 {
			t.Errorf("%s: exit %d, want 1", c.name, res.code)
		}
		mustContain(t, res.stderr, c.want, "--connect-timeout")
		if strings.Contains(res.stderr+res.stdout, "s3cr3t-pw") {
			t.Errorf("%s: the password is printed:\n%s", c.name, res.stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	res := caravan(t, time.Minute, "--version")
	if res.code != 0 {
		t.Fatalf("--version exited %d: %s", res.code, res.stderr)
	}
	mustContain(t, res.stdout, "caravan ", "commit ", "go1.")
}
