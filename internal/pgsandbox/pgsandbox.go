// Package pgsandbox starts a throwaway PostgreSQL cluster from the
// machine's own PostgreSQL binaries: initdb into a temporary directory, a
// free loopback port, trust authentication, no durability (it is thrown
// away). Tests and `make demo` use it so nothing has to be running already.
package pgsandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
)

// Cluster is a running throwaway cluster.
type Cluster struct {
	dir  string
	bin  string
	port int
	opts string // server options, kept for Restart
	cred *syscall.Credential
}

// URL returns a connection URL for a database of the cluster.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// Start initialises and starts a cluster under a new temporary directory.
func Start(ctx context.Context) (*Cluster, error) {
	bin, err := binDir(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "caravan-pg-")
	if err != nil {
		return nil, fmt.Errorf("pgsandbox: %w", err)
	}
	c := &Cluster{dir: dir, bin: bin}
	// initdb refuses to run as root: run the server as the postgres user.
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("pgsandbox: running as root needs a postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, fmt.Errorf("pgsandbox: %w", err)
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := c.run(ctx, "initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"); err != nil {
		c.Stop()
		return nil, fmt.Errorf("pgsandbox: initdb: %w\n%s", err, out)
	}
	for attempt := 0; attempt < 5; attempt++ {
		if c.port, err = freePort(); err != nil {
			return nil, err
		}
		c.opts = fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=256MB -c max_wal_size=4GB",
			c.port, dir)
		var out []byte
		out, err = c.run(ctx, "pg_ctl", "start", "-D", data, "-w", "-t", "60", "-l", filepath.Join(dir, "log"), "-o", c.opts)
		if err == nil {
			return c, nil
		}
		err = fmt.Errorf("pgsandbox: pg_ctl start: %w\n%s", err, out)
	}
	c.Stop()
	return nil, err
}

// Crash stops the server the way a crash would (immediate shutdown: no
// checkpoint, every connection cut) and starts it again, on the same port,
// through crash recovery. Fault tests use it to kill a database mid-run.
func (c *Cluster) Crash(ctx context.Context) error {
	data := filepath.Join(c.dir, "data")
	if out, err := c.run(ctx, "pg_ctl", "stop", "-D", data, "-m", "immediate", "-w"); err != nil {
		return fmt.Errorf("pgsandbox: stop: %w\n%s", err, out)
	}
	if out, err := c.run(ctx, "pg_ctl", "start", "-D", data, "-w", "-t", "60", "-l", filepath.Join(c.dir, "log"), "-o", c.opts); err != nil {
		return fmt.Errorf("pgsandbox: start: %w\n%s", err, out)
	}
	return nil
}

// Stop stops the cluster and removes its directory.
func (c *Cluster) Stop() {
	if c.port != 0 {
		_, _ = c.run(context.Background(), "pg_ctl", "stop", "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "-w")
	}
	os.RemoveAll(c.dir)
}

func (c *Cluster) run(ctx context.Context, prog string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, prog), args...)
	cmd.Dir = c.dir
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd.CombinedOutput()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgsandbox: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// binDir finds the PostgreSQL server binaries, installing PostgreSQL from
// the distribution's packages when none is found and we are root.
func binDir(ctx context.Context) (string, error) {
	if dir := find(); dir != "" {
		return dir, nil
	}
	if os.Geteuid() != 0 {
		return "", errors.New("pgsandbox: no PostgreSQL server binaries (initdb) found: install postgresql, or set CARAVAN_TEST_PG_URL")
	}
	for _, args := range [][]string{{"update"}, {"install", "-y", "--no-install-recommends", "postgresql"}} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("pgsandbox: apt-get %v: %w\n%s", args, err, out)
		}
	}
	if dir := find(); dir != "" {
		return dir, nil
	}
	return "", errors.New("pgsandbox: postgresql installed but initdb still not found")
}

func find() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "pg_ctl")); err == nil {
			return filepath.Dir(p)
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(dirs))) // newest major first (lexical is fine for 1x majors)
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	return ""
}
