package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
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
}

func (m *measurement) add(o measurement) {
	m.Elapsed += o.Elapsed
	m.Rows += o.Rows
	m.Bytes += o.Bytes
	m.Note = o.Note
}

func (m measurement) rowsPerSec() float64 { return float64(m.Rows) / m.Elapsed.Seconds() }
func (m measurement) mbPerSec() float64   { return mb(m.Bytes) / m.Elapsed.Seconds() }

func (m measurement) String() string {
	return fmt.Sprintf("%d rows, %.1f MB in %s: %.0f rows/s, %.1f MB/s",
		m.Rows, mb(m.Bytes), m.Elapsed.Round(time.Millisecond), m.rowsPerSec(), m.mbPerSec())
}

// migrateCaravan runs `caravan migrate` the way a user would and returns its
// measurement and report (stdout). The time includes everything a user
// waits for: process start, embedded NATS, planning, load, key and index
// builds and caravan's default validation.
func migrateCaravan(ctx context.Context, binary string, ds *dataset, dstURL string, extra ...string) (measurement, string, error) {
	args := []string{"migrate", "--source-url", ds.URL, "--target-url", dstURL, "--extractors", "2", "--loaders", "2"}
	args = append(args, strings.Fields(os.Getenv("CARAVAN_BENCH_ARGS"))...)
	args = append(args, extra...)
	start := time.Now()
	stdout, _, err := runCommand(ctx, binary, []string{"CARAVAN_LOG_FORMAT=json"}, args...)
	m := measurement{Elapsed: time.Since(start), Rows: ds.Rows, Bytes: ds.Bytes}
	if err != nil {
		return m, stdout, fmt.Errorf("caravan migrate: %w", err)
	}
	return m, stdout, nil
}

// rawCopy is the baseline: per table, COPY TO STDOUT on the source piped
// straight into COPY FROM STDIN on the target, up to parallel tables at
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

// copyTable pipes one table and builds its key; it returns the rows loaded
// and the COPY text bytes that went through the pipe.
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
		_, err := src.PgConn().CopyTo(ctx, buf, "COPY "+t.qualified()+" TO STDOUT")
		if err == nil {
			err = buf.Flush()
		}
		pw.CloseWithError(err) // nil: the reader sees EOF and COPY FROM ends
		readErr <- err
	}()
	tag, err := dst.PgConn().CopyFrom(ctx, pr, "COPY "+t.qualified()+" FROM STDIN")
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
// PostgreSQL-to-PostgreSQL copier, as a second reference point.
func migratePgcopydb(ctx context.Context, binary string, ds *dataset, dstURL, workDir string) (measurement, error) {
	start := time.Now()
	_, _, err := runCommand(ctx, binary, nil, "clone", "--source", ds.URL, "--target", dstURL, "--dir", workDir,
		"--table-jobs", "2", "--index-jobs", "2", "--no-owner", "--no-acl")
	m := measurement{Elapsed: time.Since(start), Rows: ds.Rows, Bytes: ds.Bytes}
	if err != nil {
		return m, fmt.Errorf("pgcopydb clone: %w", err)
	}
	return m, nil
}
