package bench

import (
	"context"
	"fmt"
	"io"
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
		total.add(rawOnce(b, ds, false))
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

// BenchmarkCompare copies the dataset with every tool side by side, round
// after round (-benchtime Nx: N rounds), each tool into a fresh target:
//
//   - raw: COPY TO STDOUT (FORMAT binary) | COPY FROM STDIN (FORMAT binary),
//     two tables at a time, keys built after each load: the floor;
//   - caravan: caravan migrate with every validation level (count, keys,
//     per-chunk digests, foreign keys);
//   - caravan-count: caravan migrate --validate count;
//   - pgcopydb: pgcopydb clone (installed with apt-get when missing and the
//     benchmark runs as root);
//   - pg_dump: pg_dump --data-only | psql, keys built after.
//
// Each round prints a table of wall time, ratio to the raw pipe of the same
// round, peak RSS and what the tool validates, with the machine's load
// average before and after the round: on a shared machine ratios within a
// round are what to compare. CARAVAN_BENCH_TOOLS (comma-separated names from
// the list) runs fewer tools; raw always runs.
func BenchmarkCompare(b *testing.B) {
	ds := sourceDataset(b)
	tools := compareTools(b, ds)
	results := map[string][]measurement{}
	var loads [][2]string
	for b.Loop() {
		before := loadAverage()
		for _, t := range tools {
			results[t.name] = append(results[t.name], t.run())
		}
		loads = append(loads, [2]string{before, loadAverage()})
		round := len(loads)
		fmt.Printf("\nround %d: load average %s at the start, %s at the end\n", round, loads[round-1][0], loads[round-1][1])
		printRound(os.Stdout, tools, results, round-1)
	}
	fmt.Printf("\ndataset: %s; %d rows, %.1f MB of COPY text\n", ds.How, ds.Rows, mb(ds.Bytes))
	fmt.Printf("ratios to the raw binary pipe, round by round:\n")
	raw := results["raw"]
	for _, t := range tools[1:] {
		var ratios []string
		var sum, rawSum time.Duration
		for i, m := range results[t.name] {
			ratios = append(ratios, fmt.Sprintf("%.2f", m.Elapsed.Seconds()/raw[i].Elapsed.Seconds()))
			sum += m.Elapsed
			rawSum += raw[i].Elapsed
		}
		fmt.Printf("  %-14s %s\n", t.name, strings.Join(ratios, " / "))
		b.ReportMetric(sum.Seconds()/rawSum.Seconds(), t.name+"/raw")
	}
}

// compareTool is one contender of BenchmarkCompare.
type compareTool struct {
	name      string
	validates string
	run       func() measurement
}

func compareTools(b *testing.B, ds *dataset) []compareTool {
	want := map[string]bool{}
	for _, n := range strings.Split(os.Getenv("CARAVAN_BENCH_TOOLS"), ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	picked := func(name string) bool { return len(want) == 0 || want[name] }
	tools := []compareTool{{name: "raw", validates: "no (row counts checked by the bench)", run: func() measurement { return rawOnce(b, ds, false) }}}
	if picked("raw-readback") {
		tools = append(tools, compareTool{name: "raw-readback", validates: "no: the pipe, then every row read back from the target (a proof's floor)",
			run: func() measurement { return rawOnce(b, ds, true) }})
	}
	// CARAVAN_BENCH_ARGS may choose validation itself; then one caravan run is enough.
	ownValidation := strings.Contains(os.Getenv("CARAVAN_BENCH_ARGS"), "--validate")
	if picked("caravan") || picked("caravan-count") {
		binary := caravanBinary(b)
		if picked("caravan") {
			v := "count, keys, per-chunk digests, foreign keys"
			if ownValidation {
				v = "as CARAVAN_BENCH_ARGS says"
			}
			tools = append(tools, compareTool{name: "caravan", validates: v, run: func() measurement { return caravanOnce(b, binary, ds, false) }})
		}
		if picked("caravan-count") && !ownValidation {
			tools = append(tools, compareTool{name: "caravan-count", validates: "row counts (source's own count)",
				run: func() measurement { return caravanOnce(b, binary, ds, false, "--validate", "count") }})
		}
	}
	if picked("pgcopydb") {
		if binary := findPgcopydb(b); binary != "" {
			tools = append(tools, compareTool{name: "pgcopydb", validates: "no", run: func() measurement { return pgcopydbOnce(b, binary, ds) }})
		}
	}
	if picked("pg_dump") {
		if _, err := exec.LookPath("pg_dump"); err != nil {
			fmt.Println("pg_dump not installed: no pg_dump | psql reference point")
		} else {
			tools = append(tools, compareTool{name: "pg_dump", validates: "no", run: func() measurement { return dumpOnce(b, ds) }})
		}
	}
	return tools
}

// printRound prints one round's results as a markdown table.
func printRound(w io.Writer, tools []compareTool, results map[string][]measurement, round int) {
	raw := results["raw"][round].Elapsed
	fmt.Fprintln(w, "| tool | wall | x raw pipe | peak RSS (process tree) | largest process | validates |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, t := range tools {
		m := results[t.name][round]
		tree, proc := "n/a (in the bench)", "n/a"
		if m.PeakProc > 0 {
			tree, proc = fmt.Sprintf("%.0f MB", mb(m.PeakTree)), fmt.Sprintf("%.0f MB", mb(m.PeakProc))
		}
		fmt.Fprintf(w, "| %s | %.1f s | %.2f | %s | %s | %s |\n", t.name, m.Elapsed.Seconds(), m.Elapsed.Seconds()/raw.Seconds(), tree, proc, t.validates)
	}
}

// loadAverage is the machine's 1, 5 and 15 minute load averages.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
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

// rawOnce times the raw binary pipe; readBack adds one binary read of
// every table of the target, two at a time, after it: what any copy proven
// by reading the target back costs at least (caravan overlaps that read
// with the loading of other tables, so it is an upper bound of the floor).
func rawOnce(b *testing.B, ds *dataset, readBack bool) measurement {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	var m measurement
	withDatabase(ctx, b, "raw_bench_dst", func(dstURL string) {
		var err error
		m, err = rawCopy(ctx, ds, dstURL, rawParallel)
		if err == nil && readBack {
			dst := *ds
			dst.URL = dstURL
			var read time.Duration
			read, err = readEverything(ctx, &dst, rawParallel, true)
			m.Elapsed += read
		}
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

func dumpOnce(b *testing.B, ds *dataset) measurement {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	var m measurement
	withDatabase(ctx, b, "pgdump_bench_dst", func(dstURL string) {
		var err error
		m, err = dumpRestore(ctx, ds, dstURL)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if err := ds.checkCounts(ctx, dstURL); err != nil {
			b.Fatalf("pg_dump | psql: %v", err)
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
	p := findPgcopydb(b)
	if p == "" {
		b.Skip("no pgcopydb reference point")
	}
	return p
}

// findPgcopydb returns pgcopydb's path, installing it with apt-get when it
// is missing and the benchmark runs as root; "" (and a message) otherwise.
func findPgcopydb(b *testing.B) string {
	b.Helper()
	if p, err := exec.LookPath("pgcopydb"); err == nil {
		return p
	}
	if os.Geteuid() != 0 {
		fmt.Println("pgcopydb not installed and not root (Debian/Ubuntu: apt-get install pgcopydb): no pgcopydb reference point")
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	fmt.Println("pgcopydb not installed: apt-get install -y pgcopydb")
	if _, _, err := runCommand(ctx, "apt-get", []string{"DEBIAN_FRONTEND=noninteractive"}, "install", "-y", "pgcopydb"); err != nil {
		fmt.Printf("apt-get install pgcopydb failed, no pgcopydb reference point: %v\n", err)
		return ""
	}
	p, err := exec.LookPath("pgcopydb")
	if err != nil {
		fmt.Println("pgcopydb still not found after apt-get install: no pgcopydb reference point")
		return ""
	}
	return p
}
