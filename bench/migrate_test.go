package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The machine the numbers are quoted from has 2 cores: caravan runs 2
// extractors and 2 loaders, the baseline 2 tables at once.
const rawParallel = 2

// runTimeout bounds one copy of the dataset; make bench allows 60 minutes
// for everything.
const runTimeout = 20 * time.Minute

func BenchmarkCaravanMigrate(b *testing.B) {
	ds := sourceDataset(b)
	binary := caravanBinary(b)
	var total measurement
	for b.Loop() {
		total.add(caravanOnce(b, binary, ds, true))
	}
	report(b, total)
}

func BenchmarkRawCopyPipe(b *testing.B) {
	ds := sourceDataset(b)
	var total measurement
	for b.Loop() {
		total.add(rawOnce(b, ds))
	}
	report(b, total)
}

func BenchmarkPgcopydb(b *testing.B) {
	binary := pgcopydbBinary(b)
	ds := sourceDataset(b)
	var total measurement
	for b.Loop() {
		total.add(pgcopydbOnce(b, binary, ds))
	}
	report(b, total)
}

// BenchmarkCompare measures the baseline and caravan back to back on the
// same data in one run (and pgcopydb when installed), so the ratio it
// prints is not skewed by anything that changed between separate runs.
// Caravan runs twice: as a user runs it (every validation level), and with
// --validate count, which leaves the load itself and separates the cost of
// the content proofs (digest, keys, fk) that no other tool here performs.
func BenchmarkCompare(b *testing.B) {
	ds := sourceDataset(b)
	binary := caravanBinary(b)
	pgcopydb, _ := exec.LookPath("pgcopydb")
	// CARAVAN_BENCH_ARGS may choose validation itself; then one run is enough.
	withCountRun := !strings.Contains(os.Getenv("CARAVAN_BENCH_ARGS"), "--validate")
	var raw, car, carCount, pcd measurement
	for b.Loop() {
		raw.add(rawOnce(b, ds))
		car.add(caravanOnce(b, binary, ds, false))
		if withCountRun {
			carCount.add(caravanOnce(b, binary, ds, false, "--validate", "count"))
		}
		if pgcopydb != "" {
			pcd.add(pgcopydbOnce(b, pgcopydb, ds))
		}
	}
	ratio := car.Elapsed.Seconds() / raw.Elapsed.Seconds()
	fmt.Printf("dataset: %s; %d rows, %.1f MB of COPY text\n", ds.How, ds.Rows, mb(ds.Bytes))
	fmt.Printf("raw COPY pipe (%d tables at once): %s\n", rawParallel, raw)
	fmt.Printf("caravan migrate (2 extractors, 2 loaders): %s (its report: %s)\n", car, car.Note)
	if withCountRun {
		fmt.Printf("caravan migrate --validate count: %s (its report: %s)\n", carCount, carCount.Note)
		fmt.Printf("caravan --validate count/raw-copy time ratio: %.2f\n", carCount.Elapsed.Seconds()/raw.Elapsed.Seconds())
	}
	if pgcopydb != "" {
		fmt.Printf("pgcopydb clone (2 table jobs, 2 index jobs): %s\n", pcd)
		fmt.Printf("pgcopydb/raw-copy time ratio: %.2f\n", pcd.Elapsed.Seconds()/raw.Elapsed.Seconds())
	}
	fmt.Printf("caravan/raw-copy time ratio: %.2f (caravan %.0f rows/s, raw %.0f rows/s)\n", ratio, car.rowsPerSec(), raw.rowsPerSec())
	b.ReportMetric(ratio, "caravan/raw")
	b.ReportMetric(car.rowsPerSec(), "caravan-rows/s")
	b.ReportMetric(raw.rowsPerSec(), "raw-rows/s")
	if withCountRun {
		b.ReportMetric(carCount.Elapsed.Seconds()/raw.Elapsed.Seconds(), "caravan-count/raw")
	}
	if pgcopydb != "" {
		b.ReportMetric(pcd.Elapsed.Seconds()/raw.Elapsed.Seconds(), "pgcopydb/raw")
	}
}

func report(b *testing.B, m measurement) {
	b.Helper()
	b.ReportMetric(m.rowsPerSec(), "rows/s")
	b.ReportMetric(m.mbPerSec(), "MB/s")
	b.Logf("%s", m)
}

// caravanOnce migrates into a fresh target, proves the row counts, and
// drops the target.
func caravanOnce(b *testing.B, binary string, ds *dataset, logReport bool, extra ...string) measurement {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	var m measurement
	withDatabase(ctx, b, "caravan_bench_dst", func(dstURL string) {
		var out string
		var err error
		m, out, err = migrateCaravan(ctx, binary, ds, dstURL, extra...)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if err := ds.checkCounts(ctx, dstURL); err != nil {
			b.Fatalf("caravan migrate: %v\nreport:\n%s", err, out)
		}
		// Printed, not logged: the testing package cuts benchmark logs
		// after a few lines.
		if logReport {
			fmt.Printf("caravan report:\n%s\n", strings.TrimRight(out, "\n"))
		}
		m.Note = runLine(out)
	})
	return m
}

func rawOnce(b *testing.B, ds *dataset) measurement {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	var m measurement
	withDatabase(ctx, b, "raw_bench_dst", func(dstURL string) {
		var err error
		m, err = rawCopy(ctx, ds, dstURL, rawParallel)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		// rawCopy already compared each COPY's row count; counting again is
		// cheap and makes the check identical for every tool.
		if err := ds.checkCounts(ctx, dstURL); err != nil {
			b.Fatalf("raw copy: %v", err)
		}
	})
	return m
}

func pgcopydbOnce(b *testing.B, binary string, ds *dataset) measurement {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	var m measurement
	withDatabase(ctx, b, "pgcopydb_bench_dst", func(dstURL string) {
		b.StopTimer()
		dir, err := os.MkdirTemp("", "caravan-bench-pgcopydb-")
		if err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(dir)
		b.StartTimer()
		m, err = migratePgcopydb(ctx, binary, ds, dstURL, dir)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if err := ds.checkCounts(ctx, dstURL); err != nil {
			b.Fatalf("pgcopydb: %v", err)
		}
	})
	return m
}

// runLine is the report's last line ("run ... succeeded in 1.5s"): caravan's
// own account of the run, against which the process's wall time shows the
// cost of starting and stopping.
func runLine(report string) string {
	lines := strings.Split(strings.TrimSpace(report), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func pgcopydbBinary(b *testing.B) string {
	b.Helper()
	p, err := exec.LookPath("pgcopydb")
	if err != nil {
		b.Skip("pgcopydb not installed (Debian/Ubuntu: apt-get install pgcopydb): no pgcopydb reference point")
	}
	return p
}
