package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/caravan-db/caravan/internal/testenv"
)

// syncedChunks lists the chunks of a table sync copied again, from the
// audit trail, in chunk order.
func syncedChunks(t *testing.T, dst, run, table string) []int64 {
	t.Helper()
	s := query[string](t, dst, `SELECT coalesce(string_agg((metadata->>'chunk'), ',' ORDER BY (metadata->>'chunk')::int), '')
		FROM caravan.audit WHERE run_id = $1 AND operation = 'sync_chunk' AND table_name = $2`, run, table)
	var out []int64
	for _, f := range strings.Split(s, ",") {
		if f != "" {
			var n int64
			fmt.Sscan(f, &n)
			out = append(out, n)
		}
	}
	return out
}

// chunkOf is the chunk of public.items whose recorded range holds id.
func chunkOf(t *testing.T, dst, run string, id int) int64 {
	t.Helper()
	return query[int64](t, dst, `SELECT chunk FROM caravan.chunks WHERE run_id = $1 AND table_id = 'public.items'
		AND (lo IS NULL OR (lo->>0)::int <= $2) AND (hi IS NULL OR $2 < (hi->>0)::int)`, run, id)
}

// TestSyncCopiesOnlyChangedChunks: after a migrate, updates, inserts and
// deletes on the source (a key range, every row of one chunk, keys above
// the last bound, a keyless table) reach the target through sync, which
// copies only the chunks that changed; a second sync copies nothing; a
// column added on the source stops sync, naming it, with the target
// untouched.
func TestSyncCopiesOnlyChangedChunks(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src,
		`CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL, price numeric(10,2))`,
		`INSERT INTO items SELECT g, 'item ' || g, g * 1.25 FROM generate_series(1, 5000) g`,
		`CREATE TABLE notes (n integer, body text)`,
		`INSERT INTO notes SELECT g % 50, 'note ' || g FROM generate_series(1, 400) g`,
		`CREATE TABLE quiet (id integer PRIMARY KEY, v text)`,
		`INSERT INTO quiet SELECT g, 'v' || g FROM generate_series(1, 300) g`,
		// A foreign key to items: rows of items it references are removed
		// and added, so the order in which the two tables are synced matters.
		`CREATE TABLE lines (id integer PRIMARY KEY, item_id integer NOT NULL REFERENCES items (id), qty integer)`,
		`INSERT INTO lines SELECT g, g * 7 % 5000 + 1, g FROM generate_series(1, 700) g`)
	tables := []string{"items", "notes", "quiet", "lines"}
	run := uuid.NewString()
	res := caravan(t, 3*time.Minute, "migrate", "--source-url", src, "--target-url", dst, "--run-id", run, "--chunk-rows", "1000")
	if res.code != 0 {
		t.Fatalf("migrate exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 4000))
	}
	chunks := query[int64](t, dst, `SELECT count(*) FROM caravan.chunks WHERE run_id = $1 AND table_id = 'public.items'`, run)
	if n := query[int64](t, dst, `SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = 'lines'::regclass`); n != 1 {
		t.Fatalf("the target has %d foreign keys on lines, want 1", n)
	}
	if chunks < 5 {
		t.Fatalf("items has %d chunks; the test needs at least 5", chunks)
	}
	last := chunks - 1
	// Every row of one chunk (not the first, not the last) goes.
	emptied := chunks - 2
	lo := query[string](t, dst, `SELECT (lo->>0) FROM caravan.chunks WHERE run_id = $1 AND table_id = 'public.items' AND chunk = $2`, run, emptied)
	hi := query[string](t, dst, `SELECT (hi->>0) FROM caravan.chunks WHERE run_id = $1 AND table_id = 'public.items' AND chunk = $2`, run, emptied)
	// A key range inside chunk 1 goes.
	from := query[int64](t, dst, `SELECT (lo->>0)::int + 10 FROM caravan.chunks WHERE run_id = $1 AND table_id = 'public.items' AND chunk = 1`, run)
	gone := fmt.Sprintf("BETWEEN %d AND %d", from, from+60)
	want := []int64{chunkOf(t, dst, run, 10), chunkOf(t, dst, run, int(from)), chunkOf(t, dst, run, int(from)+60), emptied, last}
	testenv.Exec(t, src,
		`UPDATE items SET name = 'renamed', price = NULL WHERE id = 10`,
		`DELETE FROM lines WHERE item_id `+gone+` OR (item_id >= `+lo+` AND item_id < `+hi+`)`,
		`DELETE FROM items WHERE id `+gone,
		`DELETE FROM items WHERE id >= `+lo+` AND id < `+hi,
		`INSERT INTO items SELECT g, 'new ' || g, g FROM generate_series(6000, 6100) g`,
		`INSERT INTO lines SELECT 1000 + g, 6000 + g, g FROM generate_series(1, 50) g`,
		`UPDATE lines SET qty = -1 WHERE id = 3`,
		`UPDATE notes SET body = 'edited' WHERE body = 'note 7'`,
		`DELETE FROM notes WHERE body = 'note 8'`,
		`INSERT INTO notes VALUES (99, 'added')`)
	slices.Sort(want)
	want = slices.Compact(want)
	if len(want) != 4 {
		t.Fatalf("changes meant for 4 chunks touch chunks %v", want)
	}

	res = caravan(t, 3*time.Minute, "sync", "--source-url", src, "--target-url", dst, run)
	if res.code != 0 {
		t.Fatalf("sync exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 4000))
	}
	assertSameContent(t, src, dst, tables...)
	// Whichever table goes first, a foreign key refuses one of them once:
	// items loses rows lines references, lines gains rows referencing new items.
	mustContain(t, res.stderr, "a foreign key refused a chunk for now")
	if got := syncedChunks(t, dst, run, "public.items"); !slices.Equal(got, want) {
		t.Errorf("sync copied chunks %v of items again, want exactly %v\n%s", got, want, res.stdout)
	}
	if got := syncedChunks(t, dst, run, "public.notes"); len(got) == 0 {
		t.Errorf("sync did not copy the changed keyless table again\n%s", res.stdout)
	}
	if got := syncedChunks(t, dst, run, "public.quiet"); len(got) != 0 {
		t.Errorf("sync copied chunks %v of an unchanged table", got)
	}
	if n := query[int64](t, dst, `SELECT count(*) FROM caravan.chunks WHERE run_id = $1 AND table_id = 'public.items' AND attempt > 1`, run); n != int64(len(want)) {
		t.Errorf("%d chunks of items have a new attempt, want %d", n, len(want))
	}
	// The ledger agrees with the chunks (one row per copied chunk, the rows the chunk holds).
	if n := query[int64](t, dst, `SELECT count(*) FROM caravan.chunks c WHERE run_id = $1
		AND rows <> (SELECT coalesce(sum(rows), 0) FROM caravan.ledger l WHERE l.run_id = c.run_id AND l.table_id = c.table_id AND l.chunk = c.chunk AND l.attempt = c.attempt)`, run); n != 0 {
		t.Errorf("%d chunks whose ledger disagrees with their recorded rows", n)
	}
	// The re-judged verdicts speak of the source as it is now.
	if n := query[int64](t, dst, `SELECT target_rows FROM caravan.verdicts WHERE run_id = $1 AND table_id = 'public.items' AND level = 'count'`, run); n != query[int64](t, src, `SELECT count(*) FROM items`) {
		t.Errorf("the count verdict of items says %d target rows after sync", n)
	}
	assertRunAgrees(t, dst, run, res.code, "succeeded")
	mustContain(t, res.stdout, "public.quiet: unchanged (1 chunks compared)", "public.items: 4 of 5 chunks changed", "validated")

	// Nothing changed: nothing is copied.
	before := query[int64](t, dst, `SELECT count(*) FROM caravan.audit WHERE run_id = $1 AND operation = 'sync_chunk'`, run)
	res = caravan(t, 3*time.Minute, "sync", "--source-url", src, "--target-url", dst, run)
	if res.code != 0 {
		t.Fatalf("second sync exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 4000))
	}
	mustContain(t, res.stdout, "synced: 0 chunks copied again")
	if after := query[int64](t, dst, `SELECT count(*) FROM caravan.audit WHERE run_id = $1 AND operation = 'sync_chunk'`, run); after != before {
		t.Errorf("a sync with no change copied %d chunks", after-before)
	}

	// Schema drift: refused, naming table and column, the target untouched.
	hash := contentHash(t, dst, "items")
	testenv.Exec(t, src, `UPDATE items SET name = 'again' WHERE id = 20`, `ALTER TABLE items ADD COLUMN extra integer`)
	res = caravan(t, 3*time.Minute, "sync", "--source-url", src, "--target-url", dst, run)
	if res.code != 1 {
		t.Fatalf("sync after a column was added exited %d, want 1\n%s\n%s", res.code, res.stdout, tail(res.stderr, 4000))
	}
	mustContain(t, res.stderr, "public.items", "column extra was added")
	if got := contentHash(t, dst, "items"); got != hash {
		t.Error("sync refused for schema drift but changed the target")
	}
	if after := query[int64](t, dst, `SELECT count(*) FROM caravan.audit WHERE run_id = $1 AND operation = 'sync_chunk'`, run); after != before {
		t.Errorf("sync refused for schema drift but copied %d chunks", after-before)
	}
}

// TestSyncInterruptedConverges: a sync stopped midway (a keyless table it
// must empty is locked on the target, then Ctrl-C) leaves the chunks it
// copied copied; run again, it copies only what is left and the target
// equals the source.
func TestSyncInterruptedConverges(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src,
		`CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL)`,
		`INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 3000) g`,
		`CREATE TABLE notes (n integer, body text)`,
		`INSERT INTO notes SELECT g % 50, 'note ' || g FROM generate_series(1, 400) g`)
	run := uuid.NewString()
	res := caravan(t, 3*time.Minute, "migrate", "--source-url", src, "--target-url", dst, "--run-id", run, "--chunk-rows", "1000")
	if res.code != 0 {
		t.Fatalf("migrate exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 4000))
	}
	testenv.Exec(t, src, `UPDATE items SET name = 'changed' WHERE id % 1000 = 5`, `DELETE FROM notes WHERE n = 3`)
	want := []int64{chunkOf(t, dst, run, 5), chunkOf(t, dst, run, 1005), chunkOf(t, dst, run, 2005)}
	slices.Sort(want)
	want = slices.Compact(want)

	ctx := context.Background()
	lock, err := pgx.Connect(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close(ctx)
	tx, err := lock.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE notes IN ACCESS SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	sync := start(t, "sync", "sync", "--source-url", src, "--target-url", dst, "--workers", "1", run)
	copied := func() int64 {
		return query[int64](t, dst, `SELECT count(*) FROM caravan.audit WHERE run_id = $1 AND operation = 'sync_chunk' AND table_name = 'public.items'`, run)
	}
	testenv.Eventually(t, time.Minute, "sync copies the changed chunks of items and waits for the lock on notes", func() bool {
		return copied() == int64(len(want)) && query[int64](t, dst, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'TRUNCATE%'`) == 1
	})
	if err := sync.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := sync.Wait(); err == nil {
		t.Error("an interrupted sync exited 0")
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if n := query[int64](t, dst, `SELECT count(*) FROM notes`); n != 400 {
		t.Errorf("the interrupted sync changed notes (%d rows): its copy is not one transaction", n)
	}

	res = caravan(t, 3*time.Minute, "sync", "--source-url", src, "--target-url", dst, run)
	if res.code != 0 {
		t.Fatalf("sync after an interrupted one exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 4000))
	}
	assertSameContent(t, src, dst, "items", "notes")
	if got := syncedChunks(t, dst, run, "public.items"); !slices.Equal(got, want) {
		t.Errorf("items chunks copied in all: %v, want %v (each changed chunk once)", got, want)
	}
	mustContain(t, res.stdout, "public.items: unchanged", "public.notes: compared whole: changed, copied again")
	assertRunAgrees(t, dst, run, res.code, "succeeded")
}
