package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// measurement is one complete copy of the dataset by one tool, timed from
// an empty target database to a usable one (data in, primary keys built).
type measurement struct {
	Elapsed time.Duration
	Rows    int64
	Bytes   int64  // COPY text bytes of the source: the same yardstick for every tool
	Note    string // the tool's own summary, if any
	// PeakTree is the largest sum of resident memory over the tool's whole
	// process tree, sampled every rssEvery; PeakProc is the largest single
	// process's (the kernel's ru_maxrss, exact). 0 for the raw pipe, which
	// runs inside the benchmark.
	PeakTree, PeakProc int64
}

func (m *measurement) add(o measurement) {
	m.Elapsed += o.Elapsed
	m.Rows += o.Rows
	m.Bytes += o.Bytes
	m.Note = o.Note
	m.PeakTree = max(m.PeakTree, o.PeakTree)
	m.PeakProc = max(m.PeakProc, o.PeakProc)
}

func (m measurement) rowsPerSec() float64 { return float64(m.Rows) / m.Elapsed.Seconds() }
func (m measurement) mbPerSec() float64   { return mb(m.Bytes) / m.Elapsed.Seconds() }

func (m measurement) String() string {
	s := fmt.Sprintf("%d rows, %.1f MB in %s: %.0f rows/s, %.1f MB/s",
		m.Rows, mb(m.Bytes), m.Elapsed.Round(time.Millisecond), m.rowsPerSec(), m.mbPerSec())
	if m.PeakProc > 0 {
		s += fmt.Sprintf(", peak RSS %.0f MB (largest process %.0f MB)", mb(m.PeakTree), mb(m.PeakProc))
	}
	return s
}

// migrateCaravan runs `caravan migrate` the way a user would and returns its
// measurement and report (stdout). The time includes everything a user
// waits for: process start, embedded NATS, planning, load, key and index
// builds and caravan's default validation.
func migrateCaravan(ctx context.Context, binary string, ds *dataset, dstURL string, extra ...string) (measurement, string, error) {
	args := []string{"migrate", "--source-url", ds.URL, "--target-url", dstURL, "--extractors", "2", "--loaders", "2"}
	args = append(args, strings.Fields(os.Getenv("CARAVAN_BENCH_ARGS"))...)
	args = append(args, extra...)
	m := measurement{Rows: ds.Rows, Bytes: ds.Bytes}
	stdout, err := runMeasured(ctx, &m, binary, []string{"CARAVAN_LOG_FORMAT=json"}, args...)
	if err != nil {
		return m, stdout, fmt.Errorf("caravan migrate: %w", err)
	}
	return m, stdout, nil
}

// runMeasured runs a command to completion, timing it into m and taking
// its peak memory: ru_maxrss of the process (for a process that forks, the
// largest of the processes it waited for) and the sampled sum over its
// process tree.
func runMeasured(ctx context.Context, m *measurement, name string, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return "", err
	}
	stop := sampleTree(cmd.Process.Pid)
	err := cmd.Wait()
	m.Elapsed = time.Since(start)
	m.PeakTree = stop()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.PeakProc = ru.Maxrss * 1024 // kilobytes on Linux
	}
	m.PeakTree = max(m.PeakTree, m.PeakProc)
	if err != nil {
		return stdout.String(), fmt.Errorf("%s: %w\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), err,
			tail(stdout.String(), 3000), tail(stderr.String(), 4000))
	}
	return stdout.String(), nil
}

// rssEvery is how often sampleTree looks at the process tree.
const rssEvery = 100 * time.Millisecond

// sampleTree samples the resident memory of root and all its descendants
// until stop, which returns the largest sum seen. Sampling can miss a
// short peak; ru_maxrss cannot, but only knows single processes.
func sampleTree(root int) (stop func() int64) {
	done := make(chan struct{})
	result := make(chan int64, 1)
	go func() {
		var peak int64
		t := time.NewTicker(rssEvery)
		defer t.Stop()
		for {
			peak = max(peak, treeRSS(root))
			select {
			case <-done:
				result <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 { close(done); return <-result }
}

// treeRSS sums the resident memory of pid and its descendants from /proc.
func treeRSS(root int) int64 {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			children[ppid] = append(children[ppid], pid)
		}
	}
	var sum int64
	page := int64(os.Getpagesize())
	for todo := []int{root}; len(todo) > 0; {
		pid := todo[len(todo)-1]
		todo = append(todo[:len(todo)-1], children[pid]...)
		statm, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(statm)); len(f) > 1 {
			if n, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				sum += n * page
			}
		}
	}
	return sum
}

// rawCopy is the baseline: per table, COPY TO STDOUT (FORMAT binary) on the
// source piped straight into COPY FROM STDIN (FORMAT binary) on the target, up to parallel tables at
// once, each table's primary key built right after its load (caravan also
// builds keys after loading, so neither side pays for index maintenance
// during COPY).
func rawCopy(ctx context.Context, ds *dataset, dstURL string, parallel int) (measurement, error) {
	start := time.Now()
	var ddl []string
	for _, t := range ds.Tables {
		ddl = append(ddl, t.Create)
	}
	if err := execAll(ctx, dstURL, ddl...); err != nil {
		return measurement{}, fmt.Errorf("raw copy: schema: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		total    measurement
		firstErr error
		wg       sync.WaitGroup
	)
	work := make(chan *table, len(ds.Tables))
	for _, t := range ds.Tables {
		work <- t
	}
	close(work)
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range work {
				if ctx.Err() != nil {
					return
				}
				rows, n, err := copyTable(ctx, ds.URL, dstURL, t)
				mu.Lock()
				total.Rows += rows
				total.Bytes += n
				if err != nil && firstErr == nil {
					firstErr = err
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	total.Elapsed = time.Since(start)
	if firstErr != nil {
		return total, fmt.Errorf("raw copy: %w", firstErr)
	}
	return total, nil
}

// copyTable pipes one table in PostgreSQL's binary COPY format (no value is
// printed or parsed as text) and builds its key; it returns the rows loaded
// and the bytes that went through the pipe.
func copyTable(ctx context.Context, srcURL, dstURL string, t *table) (int64, int64, error) {
	src, err := pgx.Connect(ctx, srcURL)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: source: %w", t.Name, err)
	}
	defer src.Close(ctx)
	dst, err := pgx.Connect(ctx, dstURL)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: target: %w", t.Name, err)
	}
	defer dst.Close(ctx)

	pr, pw := io.Pipe()
	var counted countingWriter
	readErr := make(chan error, 1)
	go func() {
		// pgconn writes each row (one CopyData message) separately, and an
		// io.Pipe hands every write over on its own, so COPY FROM would
		// send one tiny message per row. The buffer makes the pipe carry
		// large blocks, as an OS pipe between two psql processes would.
		buf := bufio.NewWriterSize(io.MultiWriter(pw, &counted), 256<<10)
		_, err := src.PgConn().CopyTo(ctx, buf, "COPY "+t.qualified()+" TO STDOUT (FORMAT binary)")
		if err == nil {
			err = buf.Flush()
		}
		pw.CloseWithError(err) // nil: the reader sees EOF and COPY FROM ends
		readErr <- err
	}()
	tag, err := dst.PgConn().CopyFrom(ctx, pr, "COPY "+t.qualified()+" FROM STDIN (FORMAT binary)")
	// Unblocks the writer if COPY FROM stopped before the end of the data.
	pr.CloseWithError(err)
	if rerr := <-readErr; rerr != nil {
		return 0, counted.n, fmt.Errorf("%s: COPY TO: %w", t.Name, rerr)
	}
	if err != nil {
		return 0, counted.n, fmt.Errorf("%s: COPY FROM: %w", t.Name, err)
	}
	if tag.RowsAffected() != t.Rows {
		return tag.RowsAffected(), counted.n, fmt.Errorf("%s: loaded %d rows, source has %d", t.Name, tag.RowsAffected(), t.Rows)
	}
	if t.Key != "" {
		if _, err := dst.Exec(ctx, t.addKey()); err != nil {
			return tag.RowsAffected(), counted.n, fmt.Errorf("%s: primary key: %w", t.Name, err)
		}
	}
	return tag.RowsAffected(), counted.n, nil
}

// migratePgcopydb clones the source with pgcopydb, a purpose-built
// PostgreSQL-to-PostgreSQL copier (schema, split tables, index builds,
// vacuum analyze; it validates nothing), as a reference point.
func migratePgcopydb(ctx context.Context, binary string, ds *dataset, dstURL, workDir string) (measurement, error) {
	m := measurement{Rows: ds.Rows, Bytes: ds.Bytes}
	_, err := runMeasured(ctx, &m, binary, nil, "clone", "--source", ds.URL, "--target", dstURL, "--dir", workDir,
		"--table-jobs", "2", "--index-jobs", "2", "--no-owner", "--no-acl")
	if err != nil {
		return m, fmt.Errorf("pgcopydb clone: %w", err)
	}
	return m, nil
}

// dumpRestore is what a user does with the stock tools: the tables created
// without keys (as for the raw pipe), `pg_dump --data-only | psql`, then
// each primary key. It validates nothing.
func dumpRestore(ctx context.Context, ds *dataset, dstURL string) (measurement, error) {
	m := measurement{Rows: ds.Rows, Bytes: ds.Bytes}
	start := time.Now()
	var ddl, keys []string
	for _, t := range ds.Tables {
		ddl = append(ddl, t.Create)
		if t.Key != "" {
			keys = append(keys, t.addKey())
		}
	}
	if err := execAll(ctx, dstURL, ddl...); err != nil {
		return m, fmt.Errorf("pg_dump | psql: schema: %w", err)
	}
	_, err := runMeasured(ctx, &m, "bash", []string{"SRC=" + ds.URL, "DST=" + dstURL}, "-o", "pipefail", "-c",
		`pg_dump --data-only --no-owner --no-privileges --dbname "$SRC" | psql -X -q -v ON_ERROR_STOP=1 --dbname "$DST"`)
	if err != nil {
		return m, fmt.Errorf("pg_dump | psql: %w", err)
	}
	if err := execAll(ctx, dstURL, keys...); err != nil {
		return m, fmt.Errorf("pg_dump | psql: keys: %w", err)
	}
	m.Elapsed = time.Since(start)
	return m, nil
}
