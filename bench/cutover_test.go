package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// changedFraction is the share of each table's rows the cutover benchmark
// changes between the migrate and the sync, as issue 11 asks: a third
// updated, a third deleted, a third inserted.
const changedFraction = 0.001

// BenchmarkCutover measures issue 11's cutover on the bench dataset, round
// after round, each on a fresh copy of the source (the benchmark changes
// it) and a fresh target:
//
//   - migrate: caravan migrate with every validation level;
//   - sync: caravan sync of that run after 0.1% of every table's rows
//     changed on the source (updates, deletes and inserts, keyless table
//     included);
//   - verify: caravan verify of the now identical databases.
//
// Its goals: sync at most 0.40 of the migrate, verify at most the migrate's
// validation phase plus one source read. The validation phase is read from
// the run's own records: the union of the intervals of its validate_*
// audit rows (validation of one table overlaps the load of another, so the
// union, not the first-to-last span); one source read is a raw COPY TO of
// every table, two at a time as caravan's two workers read.
func BenchmarkCutover(b *testing.B) {
	ds := sourceDataset(b)
	binary := caravanBinary(b)
	var rounds []cutoverRound
	for b.Loop() {
		b.StopTimer()
		r := cutoverOnce(b, binary, ds)
		rounds = append(rounds, r)
		fmt.Printf("\ncutover round %d: load average %s at the start, %s at the end\n", len(rounds), r.LoadBefore, r.LoadAfter)
		r.print(os.Stdout)
		b.StartTimer()
	}
	var syncRatio, verifyRatio float64
	for _, r := range rounds {
		syncRatio += r.syncRatio() / float64(len(rounds))
		verifyRatio += r.verifyRatio() / float64(len(rounds))
	}
	b.ReportMetric(syncRatio, "sync/migrate")
	b.ReportMetric(verifyRatio, "verify/(validation+read)")
}

// cutoverRound is one round's figures.
type cutoverRound struct {
	Migrate, Sync, Verify time.Duration
	Validation            time.Duration // union of the run's validate_* intervals
	ValidationSum         time.Duration // sum of caravan.verdicts seconds, one per table
	SourceRead            time.Duration // raw COPY TO of every table
	Changed               int64         // rows updated, deleted and inserted on the source
	Rows                  int64         // rows of the source before the changes
	SyncOut, VerifyOut    string        // the last lines of each command's output
	LoadBefore, LoadAfter string
}

func (r cutoverRound) syncRatio() float64 { return r.Sync.Seconds() / r.Migrate.Seconds() }
func (r cutoverRound) verifyRatio() float64 {
	return r.Verify.Seconds() / (r.Validation + r.SourceRead).Seconds()
}

func (r cutoverRound) print(w io.Writer) {
	fmt.Fprintln(w, "| step | wall | ratio | goal |")
	fmt.Fprintln(w, "|---|---|---|---|")
	fmt.Fprintf(w, "| migrate (every validation level) | %.1f s | | |\n", r.Migrate.Seconds())
	fmt.Fprintf(w, "| of which validation phase (run's audit) | %.1f s | | |\n", r.Validation.Seconds())
	fmt.Fprintf(w, "| one source read (raw COPY TO, 2 at a time) | %.1f s | | |\n", r.SourceRead.Seconds())
	fmt.Fprintf(w, "| sync after %d of %d rows changed (%.2f%%) | %.1f s | %.2f of migrate | <= 0.40 |\n",
		r.Changed, r.Rows, 100*float64(r.Changed)/float64(r.Rows), r.Sync.Seconds(), r.syncRatio())
	fmt.Fprintf(w, "| verify (identical) | %.1f s | %.2f of validation + read | <= 1.00 |\n", r.Verify.Seconds(), r.verifyRatio())
	fmt.Fprintf(w, "(validation seconds summed over tables, caravan.verdicts: %.1f s)\n", r.ValidationSum.Seconds())
	fmt.Fprintf(w, "sync: %s\nverify: %s\n", r.SyncOut, r.VerifyOut)
}

func cutoverOnce(b *testing.B, binary string, ds *dataset) cutoverRound {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*runTimeout)
	defer cancel()
	r := cutoverRound{LoadBefore: loadAverage(), Rows: ds.Rows}
	srcName, srcURL := copyDatabase(ctx, b, ds.Name, "caravan_cutover_src")
	defer dropOrReport(ctx, b, srcName)
	dstName, dstURL := newDatabase(ctx, b, "caravan_cutover_dst")
	defer dropOrReport(ctx, b, dstName)
	src := *ds
	src.Name, src.URL = srcName, srcURL

	run := uuid.NewString()
	m, out, err := migrateCaravan(ctx, binary, &src, dstURL, "--run-id", run)
	if err != nil {
		b.Fatal(err)
	}
	r.Migrate = m.Elapsed
	if r.Validation, r.ValidationSum, err = validationPhase(ctx, dstURL, run); err != nil {
		b.Fatalf("%v\nmigrate report:\n%s", err, out)
	}
	if r.SourceRead, err = readEverything(ctx, &src, rawParallel, false); err != nil {
		b.Fatal(err)
	}
	if r.Changed, err = changeRows(ctx, &src, changedFraction); err != nil {
		b.Fatal(err)
	}

	var sm measurement
	// CARAVAN_BENCH_SYNC_ARGS adds flags to the sync (--cpu-profile, say).
	syncArgs := append([]string{"sync", "--source-url", srcURL, "--target-url", dstURL, "--workers", "2"},
		strings.Fields(os.Getenv("CARAVAN_BENCH_SYNC_ARGS"))...)
	out, err = runMeasured(ctx, &sm, binary, []string{"CARAVAN_LOG_FORMAT=json"}, append(syncArgs, run)...)
	if err != nil {
		b.Fatalf("caravan sync: %v", err)
	}
	r.Sync, r.SyncOut = sm.Elapsed, runLine(out)
	if err := sameCounts(ctx, &src, dstURL); err != nil {
		b.Fatalf("after sync: %v\nsync output:\n%s", err, out)
	}

	var vm measurement
	out, err = runMeasured(ctx, &vm, binary, []string{"CARAVAN_LOG_FORMAT=json"},
		"verify", "--source-url", srcURL, "--target-url", dstURL, "--workers", "2")
	if err != nil {
		b.Fatalf("caravan verify after sync: %v", err)
	}
	r.Verify, r.VerifyOut = vm.Elapsed, verifyLine(out)
	r.LoadAfter = loadAverage()
	return r
}

// copyDatabase makes a private copy of the shared source, which the
// cutover changes. CREATE DATABASE ... TEMPLATE needs the template idle:
// the benchmarks run one at a time and close their connections.
func copyDatabase(ctx context.Context, b *testing.B, from, prefix string) (string, string) {
	b.Helper()
	name := prefix + "_" + randomHex(6)
	stmt := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize() + " TEMPLATE " + pgx.Identifier{from}.Sanitize()
	if err := execAll(ctx, admin(b), stmt); err != nil {
		b.Fatalf("copy the source database: %v", err)
	}
	return name, databaseURL(b, name)
}

func dropOrReport(ctx context.Context, b *testing.B, name string) {
	if err := dropDatabase(ctx, name); err != nil {
		b.Error(err)
	}
}

// validationPhase reads how long a run spent validating from its own
// records: the union of its validate_* audit intervals, and the sum of its
// verdicts' seconds (one row per table and level, each the table's whole
// judgement, so one per table is summed).
func validationPhase(ctx context.Context, dbURL, run string) (time.Duration, time.Duration, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, 0, fmt.Errorf("read the run's validation: %w", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT started_at, completed_at FROM caravan.audit
		WHERE run_id = $1 AND operation LIKE 'validate\_%' AND completed_at IS NOT NULL ORDER BY started_at`, run)
	if err != nil {
		return 0, 0, fmt.Errorf("read the run's validation audit: %w", err)
	}
	var spans [][2]time.Time
	for rows.Next() {
		var s [2]time.Time
		if err := rows.Scan(&s[0], &s[1]); err != nil {
			return 0, 0, fmt.Errorf("read the run's validation audit: %w", err)
		}
		spans = append(spans, s)
	}
	if err := rows.Err(); err != nil {
		return 0, 0, fmt.Errorf("read the run's validation audit: %w", err)
	}
	if len(spans) == 0 {
		return 0, 0, fmt.Errorf("run %s recorded no validation", run)
	}
	var sum float64
	if err := conn.QueryRow(ctx, `SELECT coalesce(sum(s), 0) FROM (SELECT max(seconds) AS s FROM caravan.verdicts
		WHERE run_id = $1 GROUP BY table_id) t`, run).Scan(&sum); err != nil {
		return 0, 0, fmt.Errorf("read the run's verdicts: %w", err)
	}
	return unionLength(spans), time.Duration(sum * float64(time.Second)), nil
}

// unionLength is the time covered by at least one of the spans, sorted by
// start.
func unionLength(spans [][2]time.Time) time.Duration {
	sort.Slice(spans, func(i, j int) bool { return spans[i][0].Before(spans[j][0]) })
	var total time.Duration
	cur := spans[0]
	for _, s := range spans[1:] {
		if s[0].After(cur[1]) {
			total += cur[1].Sub(cur[0])
			cur = s
			continue
		}
		if s[1].After(cur[1]) {
			cur[1] = s[1]
		}
	}
	return total + cur[1].Sub(cur[0])
}

// readEverything times one read of the source: COPY TO STDOUT of every
// table into nothing, parallel tables at a time, as text (verify reads
// text) or binary.
func readEverything(ctx context.Context, ds *dataset, parallel int, binary bool) (time.Duration, error) {
	format := ""
	if binary {
		format = " (FORMAT binary)"
	}
	start := time.Now()
	work := make(chan *table)
	errs := make(chan error, len(ds.Tables))
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := pgx.Connect(ctx, ds.URL)
			if err != nil {
				errs <- fmt.Errorf("read the source: %w", err)
				return
			}
			defer conn.Close(ctx)
			for t := range work {
				if _, err := conn.PgConn().CopyTo(ctx, io.Discard, "COPY "+t.qualified()+" TO STDOUT"+format); err != nil {
					errs <- fmt.Errorf("read %s: %w", t.Name, err)
				}
			}
		}()
	}
	for _, t := range ds.Tables {
		work <- t
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// changeRows updates, deletes and inserts (a third each) fraction of every
// table's rows, at least one of each in a non-empty table, picked at
// random (a fixed seed) so they spread over every chunk. Inserted rows copy
// existing ones with a key above the table's largest (the keyless table
// gets duplicates, which its multiset comparison must see).
func changeRows(ctx context.Context, ds *dataset, fraction float64) (int64, error) {
	conn, err := pgx.Connect(ctx, ds.URL)
	if err != nil {
		return 0, fmt.Errorf("change the source: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT setseed(0.11)"); err != nil {
		return 0, fmt.Errorf("change the source: %w", err)
	}
	var changed int64
	for _, t := range ds.Tables {
		if t.Rows == 0 {
			continue
		}
		c, ok := changes[t.Name]
		if !ok {
			return 0, fmt.Errorf("change the source: no changes defined for %s", t.Name)
		}
		n := max(1, int64(float64(t.Rows)*fraction/3))
		// Each operation picks its own rows; the deletes may take a row
		// just updated or inserted, which is still a change to carry.
		pick := fmt.Sprintf("ctid = ANY(ARRAY(SELECT ctid FROM %s ORDER BY random() LIMIT %d))", t.qualified(), n)
		stmts := []string{
			"UPDATE " + t.qualified() + " SET " + c.update + " WHERE " + pick,
			"INSERT INTO " + t.qualified() + " SELECT " + c.insert + " FROM " + t.qualified() + " WHERE " + pick,
			"DELETE FROM " + t.qualified() + " WHERE " + pick,
		}
		for _, s := range stmts {
			tag, err := conn.Exec(ctx, s)
			if err != nil {
				return 0, fmt.Errorf("change %s: %w", t.Name, err)
			}
			changed += tag.RowsAffected()
		}
	}
	return changed, nil
}

// changes says per table how a row is updated and how an inserted row is
// made from an existing one (a fresh key above the largest).
var changes = map[string]struct{ update, insert string }{
	"pgbench_accounts": {"abalance = abalance + 1",
		"aid + (SELECT max(aid) FROM pgbench_accounts), bid, abalance, filler"},
	"pgbench_branches": {"bbalance = bbalance + 1",
		"bid + (SELECT max(bid) FROM pgbench_branches), bbalance, filler"},
	"pgbench_tellers": {"tbalance = tbalance + 1",
		"tid + (SELECT max(tid) FROM pgbench_tellers), bid, tbalance, filler"},
	"pgbench_history": {"delta = delta + 1", "*"},
	"bench_wide": {"n = coalesce(n, 0) + 1, note = 'changed ' || id",
		"id + (SELECT max(id) FROM bench_wide), n, amount, ratio, note, code, flag, day, at, uid, doc, blob, tags"},
	"bench_lines": {"qty = coalesce(qty, 0) + 1",
		"order_id + (SELECT max(order_id) FROM bench_lines), line_no, sku, qty, price, shipped, note"},
	"bench_events": {"amount = coalesce(amount, 0) + 1, payload = payload || ' changed'", "*"},
}

// sameCounts proves the target holds as many rows per table as the
// (changed) source.
func sameCounts(ctx context.Context, ds *dataset, dstURL string) error {
	count := func(dbURL string) (map[string]int64, error) {
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			return nil, err
		}
		defer conn.Close(ctx)
		n := map[string]int64{}
		for _, t := range ds.Tables {
			var c int64
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+t.qualified()).Scan(&c); err != nil {
				return nil, fmt.Errorf("count %s: %w", t.Name, err)
			}
			n[t.Name] = c
		}
		return n, nil
	}
	want, err := count(ds.URL)
	if err != nil {
		return fmt.Errorf("count the source: %w", err)
	}
	got, err := count(dstURL)
	if err != nil {
		return fmt.Errorf("count the target: %w", err)
	}
	var bad []string
	for _, t := range ds.Tables {
		if got[t.Name] != want[t.Name] {
			bad = append(bad, fmt.Sprintf("%s: %d rows, source %d", t.Name, got[t.Name], want[t.Name]))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("target differs from source: %s", strings.Join(bad, "; "))
	}
	return nil
}

// verifyLine is verify's summary line ("identical: ...").
func verifyLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "identical:") || strings.HasPrefix(l, "DIFFERENT:") {
			return l
		}
	}
	return runLine(out)
}
