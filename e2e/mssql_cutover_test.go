package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/caravan-db/caravan/internal/testenv"
)

// TestCutoverFromTSQLEngine is a cutover from a T-SQL engine: `caravan
// migrate`, changes on the source, `caravan sync`, then `caravan verify`.
// The tables are those whose keys order differently or alike in the two
// engines: an int key over many chunks, a bigint key of negative and
// positive values, a key of two integers, an identity, a uniqueidentifier
// key (SQL Server sorts its last bytes first), a case-insensitive varchar
// key with mixed-case values, a composite (int, nvarchar) key, and a heap
// of exact duplicates. After the sync every value of every table is
// compared with what the engine holds (on Babelfish through its PostgreSQL
// port, see compareWithBabelfish; on SQL Server verify's comparison stands
// for it), not with what caravan read. Integer-key chunks with a few
// changes are compared part by part (proto.Parts) and read once on the
// source; tables whose key the target orders otherwise are compared whole.
// A sync while the source is written finishes, the next one brings the
// last writes, a sync with no change copies nothing, and verify finds the
// pair identical, then names exactly the rows changed on the target.
func TestCutoverFromTSQLEngine(t *testing.T) {
	msURL, ms := openTSQL(t)
	ctx := context.Background()
	var version, dbName string
	if err := ms.QueryRowContext(ctx, "SELECT CAST(@@VERSION AS nvarchar(4000)), DB_NAME()").Scan(&version, &dbName); err != nil {
		t.Fatal(err)
	}
	enginePG := os.Getenv("CARAVAN_TEST_BABELFISH_PG_URL")
	if strings.HasPrefix(version, "Babelfish") && enginePG == "" {
		t.Fatal("the engine is Babelfish: set CARAVAN_TEST_BABELFISH_PG_URL to its PostgreSQL port so values are compared with what it holds")
	}
	sch := fmt.Sprintf("cut_%d", time.Now().UnixNano()%1_000_000_000)
	q := func(s string) string { return strings.ReplaceAll(s, "§", "["+sch+"]") }
	exec := func(stmts ...string) {
		t.Helper()
		for _, stmt := range stmts {
			if _, err := ms.ExecContext(ctx, q(stmt)); err != nil {
				t.Fatalf("%s: %v", tail(q(stmt), 2000), err)
			}
		}
	}
	// 1..n (n <= 10,000) from constants: a catalog view such as
	// sys.all_columns fails while another session drops a schema.
	nums := func(n int) string {
		const d = "(VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9))"
		return fmt.Sprintf("(SELECT TOP (%d) ROW_NUMBER() OVER (ORDER BY (SELECT NULL)) AS n FROM %s a(d) CROSS JOIN %[2]s b(d) CROSS JOIN %[2]s c(d) CROSS JOIN %[2]s e(d)) x", n, d)
	}
	tables := []string{"intkeys", "bigkeys", "guids", "cikeys", "pairs", "heap", "idents", "lines"}
	exec("CREATE SCHEMA §")
	t.Cleanup(func() {
		for _, tb := range tables {
			_, _ = ms.ExecContext(ctx, q("DROP TABLE §."+tb))
		}
		_, _ = ms.ExecContext(ctx, q("DROP SCHEMA §"))
	})
	exec(
		`CREATE TABLE §.intkeys (id int NOT NULL PRIMARY KEY, name nvarchar(100) NOT NULL, amount decimal(12,2) NULL)`,
		`INSERT INTO §.intkeys SELECT n, N'Zoë 😀 ' + CAST(n AS nvarchar(10)), CASE WHEN n % 7 = 0 THEN NULL ELSE CAST(n AS decimal(12,2)) / 4 END FROM `+nums(4000),
		`CREATE TABLE §.bigkeys (id bigint NOT NULL PRIMARY KEY, v nvarchar(50) NULL)`,
		`INSERT INTO §.bigkeys SELECT (CAST(n AS bigint) - 1000) * 3000000007, N'Ñandú ' + CAST(n AS nvarchar(10)) FROM `+nums(2000),
		`CREATE TABLE §.guids (g uniqueidentifier NOT NULL PRIMARY KEY DEFAULT newid(), n int NOT NULL, note nvarchar(50) NULL)`,
		`INSERT INTO §.guids (n, note) SELECT n, N'über ' + CAST(n AS nvarchar(10)) FROM `+nums(3000),
		`CREATE TABLE §.cikeys (k varchar(20) COLLATE SQL_Latin1_General_CP1_CI_AS NOT NULL PRIMARY KEY, v int NOT NULL)`,
		`INSERT INTO §.cikeys SELECT CHAR(CASE WHEN n % 2 = 0 THEN 97 ELSE 65 END + n % 26) + RIGHT('0000' + CAST(n AS varchar(10)), 5), n FROM `+nums(3000),
		`CREATE TABLE §.pairs (a int NOT NULL, b nvarchar(20) NOT NULL, v nvarchar(40) NULL, PRIMARY KEY (a, b))`,
		`INSERT INTO §.pairs SELECT n % 40, N'b' + CAST(n AS nvarchar(10)) + CASE WHEN n % 3 = 0 THEN N'é' ELSE N'' END, N'🚀 ' + CAST(n AS nvarchar(10)) FROM `+nums(1500),
		`CREATE TABLE §.heap (a int NULL, b nvarchar(20) NULL)`,
		`INSERT INTO §.heap SELECT CASE WHEN n % 11 = 0 THEN NULL ELSE n % 9 END, N'ç' + CAST(n % 4 AS nvarchar(5)) FROM `+nums(800),
		`CREATE TABLE §.lines (o int NOT NULL, l tinyint NOT NULL, qty int NULL, PRIMARY KEY (o, l))`,
		`INSERT INTO §.lines SELECT 1 + (n - 1) / 3, 1 + (n - 1) % 3, n FROM `+nums(3000),
		`CREATE TABLE §.idents (id int IDENTITY(100, 7) PRIMARY KEY, placed datetime2(3) NOT NULL, price money NULL)`,
		`INSERT INTO §.idents (placed, price) SELECT DATEADD(minute, n, CAST('2024-02-29T23:59:59.123' AS datetime2(3))), CAST(n AS money) / 3 FROM `+nums(1200),
	)

	dst := testenv.Database(t, "dst")
	run := uuid.NewString()
	res := caravan(t, 10*time.Minute, "migrate", "--source-url", msURL, "--target-url", dst, "--run-id", run, "--include", sch+".*", "--chunk-rows", "500")
	if res.code != 0 {
		t.Fatalf("migrate exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 8000))
	}
	id := func(table string) string { return sch + "." + table }
	chunksOf := func(table string) int64 {
		return query[int64](t, dst, `SELECT count(*) FROM caravan.chunks WHERE run_id = $1 AND table_id = $2`, run, id(table))
	}
	for _, table := range []string{"intkeys", "bigkeys", "guids", "cikeys"} {
		if n := chunksOf(table); n < 3 {
			t.Fatalf("%s has %d chunks; the test needs several", table, n)
		}
	}
	// The int-key chunk that holds a key, from its recorded bounds.
	chunkOf := func(table string, key int64) int64 {
		return query[int64](t, dst, `SELECT chunk FROM caravan.chunks WHERE run_id = $1 AND table_id = $2
			AND (lo IS NULL OR (lo->>0)::bigint <= $3) AND (hi IS NULL OR $3 < (hi->>0)::bigint)`, run, id(table), key)
	}
	fewChanges := map[int64]string{ // int-key chunks changed in a few rows, and how
		chunkOf("intkeys", 10):   "two rows updated, two keys inserted below the smallest",
		chunkOf("intkeys", 2020): "one row updated",
		chunkOf("intkeys", 1230): "a key range deleted",
		chunkOf("intkeys", 4000): "keys inserted above the largest, a key moved in",
		chunkOf("intkeys", 3500): "a key moved out",
	}
	// and one chunk loses every row, a whole key range
	emptied := chunkOf("intkeys", 2800)
	var emptiedLo, emptiedHi int64
	if err := queryRow(t, dst, `SELECT (lo->>0)::bigint, (hi->>0)::bigint FROM caravan.chunks WHERE run_id = $1 AND table_id = $2 AND chunk = $3`,
		[]any{run, id("intkeys"), emptied}, &emptiedLo, &emptiedHi); err != nil {
		t.Fatal(err)
	}
	if _, dup := fewChanges[emptied]; len(fewChanges) != 5 || dup {
		t.Fatalf("the intkeys changes meant for 6 chunks fall in %d", len(fewChanges)+1)
	}
	exec(
		`UPDATE §.intkeys SET name = N'renamed ✨', amount = NULL WHERE id IN (10, 300)`,
		`UPDATE §.intkeys SET amount = -1 WHERE id = 2020`,
		`DELETE FROM §.intkeys WHERE id BETWEEN 1210 AND 1260`,
		fmt.Sprintf(`DELETE FROM §.intkeys WHERE id >= %d AND id < %d`, emptiedLo, emptiedHi),
		`INSERT INTO §.intkeys VALUES (-5, N'below', 1), (0, N'zero', NULL)`,
		`INSERT INTO §.intkeys SELECT 5000 + n, N'above ' + CAST(n AS nvarchar(10)), n FROM `+nums(20),
		// a row whose key moves to another chunk
		`UPDATE §.intkeys SET id = 6000 WHERE id = 3500`,
		`UPDATE §.lines SET qty = -qty WHERE o IN (5, 500) AND l = 2`,
		`DELETE FROM §.lines WHERE o = 700`,
		`INSERT INTO §.lines VALUES (700, 9, 1), (0, 1, NULL), (2000, 1, 2)`,
		// the open last chunk grows past two pieces: sync cuts it
		`INSERT INTO §.lines SELECT 3000 + n / 2, 1 + n % 2, n FROM `+nums(2500),
		`UPDATE §.bigkeys SET v = N'changed 😀' WHERE id IN (-2997000006993, 0, 2997000006993)`,
		`DELETE FROM §.bigkeys WHERE id BETWEEN -30000000070 AND 30000000070`,
		`INSERT INTO §.bigkeys VALUES (-9223372036854775808, N'min'), (9223372036854775807, N'max')`,
		`UPDATE §.guids SET note = N'géändert' WHERE n % 500 = 7`,
		`DELETE FROM §.guids WHERE n BETWEEN 1400 AND 1450`,
		`INSERT INTO §.guids (g, n, note) VALUES ('00000000-0000-0000-0000-000000000001', -1, N'low'), ('FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF', -2, N'high')`,
		`INSERT INTO §.guids (n, note) SELECT 10000 + n, N'new' FROM `+nums(30),
		// a key whose case changes is the same key to the engine, another to the target
		`UPDATE §.cikeys SET k = LOWER(k) WHERE v IN (3, 5)`,
		`UPDATE §.cikeys SET v = -v WHERE v % 400 = 1`,
		`DELETE FROM §.cikeys WHERE v BETWEEN 1000 AND 1100`,
		`INSERT INTO §.cikeys VALUES ('0first', 1), ('zzLast', 2), ('MiXeD', 3)`,
		`UPDATE §.pairs SET v = NULL WHERE a = 3 AND b = N'b3'`,
		`DELETE FROM §.pairs WHERE a = 4`,
		`INSERT INTO §.pairs VALUES (-1, N'Ünit', N'neg'), (99, N'zz', N'top')`,
		`INSERT INTO §.heap SELECT TOP (5) a, b FROM §.heap WHERE a = 1`,
		`INSERT INTO §.heap VALUES (NULL, NULL), (NULL, NULL)`,
		`DELETE FROM §.heap WHERE a = 2`,
		// the identity goes on: the target's sequence must follow it
		`INSERT INTO §.idents (placed, price) VALUES ('2030-01-01T00:00:00.5', 1.5), ('2030-01-02T00:00:00', NULL)`,
		`DELETE FROM §.idents WHERE id = 107`,
	)

	res = caravan(t, 10*time.Minute, "sync", "--source-url", msURL, "--target-url", dst, run)
	if res.code != 0 {
		t.Fatalf("sync exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 8000))
	}
	t.Logf("sync:\n%s", res.stdout)
	if enginePG != "" {
		for _, table := range tables {
			compareWithBabelfish(t, enginePG, dbName, dst, sch, table)
		}
	} else {
		// SQL Server: no PostgreSQL port to read it through; the verify
		// below compares every row instead.
		t.Log("not Babelfish: the synced content is checked by caravan verify only")
	}
	assertRunAgrees(t, dst, run, res.code, "succeeded")
	// The grown chunk of lines was split where its pieces ended.
	if most := query[int64](t, dst, `SELECT max(rows) FROM caravan.chunks WHERE run_id = $1 AND table_id = $2`, run, id("lines")); most > 1000 {
		t.Errorf("lines has a chunk of %d rows after sync: pieces hold at most twice --chunk-rows", most)
	}
	if n := query[int64](t, dst, `SELECT count(*) FROM caravan.audit WHERE run_id = $1 AND table_name = $2 AND operation = 'sync_chunk' AND metadata ? 'split_at'`,
		run, id("lines")); n < 2 {
		t.Errorf("lines' grown chunk was split %d times, want at least 2", n)
	}
	assertPartition(t, dst, run, id("lines"))
	// After the cutover the application's next insert takes the identity
	// value the engine would give next.
	var msNext int64
	if err := ms.QueryRowContext(ctx, q(`SELECT CAST(IDENT_CURRENT('§.idents') + IDENT_INCR('§.idents') AS bigint)`)).Scan(&msNext); err != nil {
		t.Fatal(err)
	}
	if next := query[int64](t, dst, fmt.Sprintf(`SELECT nextval(pg_get_serial_sequence('%q.idents', 'id'))`, sch)); next != msNext {
		t.Errorf("after sync the target's idents.id sequence gives %d, the engine %d", next, msNext)
	}

	// Each int-key chunk with a few changes was compared part by part: only
	// its changed parts' key values read on the target, the chunk proved.
	for chunk, what := range fewChanges {
		var parts, proved string
		var read, rows, reads int64
		err := queryRow(t, dst, `SELECT a.metadata->>'parts', a.metadata->>'proved', (a.metadata->>'target_rows_read')::bigint, c.rows,
				(a.metadata->>'source_reads')::bigint
			FROM caravan.audit a JOIN caravan.chunks c ON c.run_id = a.run_id AND c.table_id = a.table_name AND c.chunk = (a.metadata->>'chunk')::int
			WHERE a.run_id = $1 AND a.operation = 'sync_chunk' AND a.table_name = $2 AND (a.metadata->>'chunk')::int = $3`,
			[]any{run, id("intkeys"), chunk}, &parts, &proved, &read, &rows, &reads)
		if err != nil {
			t.Errorf("intkeys chunk %d (%s): no sync_chunk audit: %v\n%s", chunk, what, err, res.stdout)
			continue
		}
		t.Logf("intkeys chunk %d (%s): parts %s, proved %s, %d of %d target rows read", chunk, what, parts, proved, read, rows)
		// The rows to write are those of the compare read: SQL Server
		// cannot select them by key in that read's transaction.
		if reads != 1 {
			t.Errorf("intkeys chunk %d (%s): read %d times on the source, want once", chunk, what, reads)
		}
		var n, of int
		if _, err := fmt.Sscanf(parts, "%d of %d", &n, &of); err != nil || n > 4 || of < 8 || proved != "true" || read >= rows/2 {
			t.Errorf("intkeys chunk %d (%s): parts %q, proved %s, %d target rows read of %d: want a few parts of many, proved, a small share read",
				chunk, what, parts, proved, read, rows)
		}
	}
	if got := query[string](t, dst, `SELECT concat_ws(' ', metadata->>'parts', metadata->>'target_rows', metadata->>'proved') FROM caravan.audit
		WHERE run_id = $1 AND operation = 'sync_chunk' AND table_name = $2 AND (metadata->>'chunk')::int = $3`, run, id("intkeys"), emptied); got != "all 0 true" {
		t.Errorf("intkeys chunk %d, emptied: parts, rows on the target, proved = %q, want \"all 0 true\"", emptied, got)
	}
	if n := query[int64](t, dst, `SELECT count(*) FROM caravan.audit WHERE run_id = $1 AND operation = 'sync_chunk' AND table_name = $2`, run, id("intkeys")); n != 6 {
		t.Errorf("sync copied %d chunks of intkeys, want the 6 changed", n)
	}
	// bigint keys and a key of two integers have parts too: the changed
	// chunks were compared by range and proved.
	for _, table := range []string{"bigkeys", "lines", "idents"} {
		if n := query[int64](t, dst, `SELECT count(*) FROM caravan.audit WHERE run_id = $1 AND operation = 'sync_chunk' AND table_name = $2
			AND ((metadata->>'whole')::boolean OR metadata->>'proved' <> 'true')`, run, id(table)); n != 0 {
			t.Errorf("%d chunks of %s synced whole or unproved", n, table)
		}
		if n := query[int64](t, dst, `SELECT count(*) FROM caravan.audit WHERE run_id = $1 AND operation = 'sync_chunk' AND table_name = $2`, run, id(table)); n == 0 {
			t.Errorf("no chunk of %s synced", table)
		}
	}
	// A uniqueidentifier, a case-insensitive text and a composite key with
	// text are ordered otherwise by the target: their tables are compared
	// and replaced whole.
	for _, table := range []string{"guids", "cikeys", "pairs", "heap"} {
		mustContain(t, res.stdout, id(table)+": compared whole: changed, copied again")
		if n := query[int64](t, dst, `SELECT count(*) FROM caravan.audit WHERE run_id = $1 AND operation = 'sync_chunk' AND table_name = $2
			AND NOT (metadata->>'whole')::boolean`, run, id(table)); n != 0 {
			t.Errorf("%s: %d chunks synced by key range, though the target orders its key otherwise", table, n)
		}
	}

	// A sync while the application still writes (the catch-up before the
	// cutover): a row of an int-key chunk changes over and over as sync
	// reads the chunk. SNAPSHOT isolation is per transaction on SQL
	// Server, so every read of the chunk sees another moment; sync must
	// still finish, consistent with one of them, and the next sync, once
	// the writes stop, bring the last value.
	writes := make(chan int64, 1)
	wctx, stopWriter := context.WithCancel(ctx)
	defer stopWriter()
	var wrote atomic.Int64
	go func() {
		var err error
		for wctx.Err() == nil {
			if _, err = ms.ExecContext(wctx, q(`UPDATE §.intkeys SET amount = amount + 1, name = N'live ' + CAST(amount AS nvarchar(20)) WHERE id = 2020`)); err != nil {
				break
			}
			wrote.Add(1)
		}
		if wctx.Err() == nil {
			t.Errorf("the writer stopped: %v", err)
		}
		writes <- wrote.Load()
	}()
	testenv.Eventually(t, time.Minute, "the writer updates the source", func() bool { return wrote.Load() > 0 })
	res = caravan(t, 10*time.Minute, "sync", "--source-url", msURL, "--target-url", dst, run)
	during := wrote.Load()
	stopWriter()
	total := <-writes
	if res.code != 0 {
		t.Fatalf("a sync while the source is written exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 8000))
	}
	t.Logf("%d updates of one row before and while sync ran, %d in all", during, total)
	res = caravan(t, 10*time.Minute, "sync", "--source-url", msURL, "--target-url", dst, run)
	if res.code != 0 {
		t.Fatalf("the sync after the writes stopped exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 8000))
	}
	if enginePG != "" {
		compareWithBabelfish(t, enginePG, dbName, dst, sch, "intkeys")
	}

	// Nothing changed: nothing is copied.
	res = assertSyncCopiesNothing(t, msURL, dst, run)

	// verify: the synced pair is identical ...
	verifyArgs := []string{"verify", "--source-url", msURL, "--target-url", dst, "--include", sch + ".*", "--chunk-rows", "500"}
	res = caravan(t, 10*time.Minute, verifyArgs...)
	if res.code != 0 {
		t.Fatalf("verify of the synced pair exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 8000))
	}
	mustContain(t, res.stdout, fmt.Sprintf("identical: %d tables", len(tables)))

	// ... and once rows are changed, deleted and added on the target,
	// verify names exactly those.
	guid := func(n int) string {
		return strings.ToLower(query[string](t, dst, fmt.Sprintf(`SELECT g::text FROM %q.guids WHERE n = $1`, sch), n))
	}
	g7, g8 := guid(7), guid(8)
	testenv.Exec(t, dst,
		fmt.Sprintf(`UPDATE %q.intkeys SET name = 'tampered' WHERE id = 20`, sch),
		fmt.Sprintf(`DELETE FROM %q.intkeys WHERE id = 3001`, sch),
		fmt.Sprintf(`INSERT INTO %q.intkeys VALUES (4500, 'extra', 1)`, sch),
		fmt.Sprintf(`UPDATE %q.guids SET note = 'tampered' WHERE g = '%s'`, sch, g7),
		fmt.Sprintf(`DELETE FROM %q.guids WHERE g = '%s'`, sch, g8),
		fmt.Sprintf(`UPDATE %q.cikeys SET v = 0 WHERE k = 'MiXeD'`, sch),
		fmt.Sprintf(`DELETE FROM %q.pairs WHERE a = 5 AND b = 'b5'`, sch),
		fmt.Sprintf(`INSERT INTO %q.heap VALUES (1, 'ç1')`, sch),
		fmt.Sprintf(`UPDATE %q.lines SET qty = 0 WHERE o = 10 AND l = 3`, sch),
		fmt.Sprintf(`DELETE FROM %q.lines WHERE o = 11 AND l = 1`, sch),
	)
	res = caravan(t, 10*time.Minute, verifyArgs...)
	if res.code != 2 {
		t.Fatalf("verify of a changed target exited %d, want 2 (differences)\n%s\n%s", res.code, res.stdout, tail(res.stderr, 8000))
	}
	want := map[string][]string{
		id("intkeys"): {"changed id=20: name", "missing id=3001", "extra id=4500"},
		id("guids"):   {"changed g=" + g7 + ": note", "missing g=" + g8},
		id("cikeys"):  {"changed k=MiXeD: v"},
		id("pairs"):   {"missing a=5, b=b5"},
		id("heap"):    {"extra x1 1 ç1"},
		id("lines"):   {"changed o=10, l=3: qty", "missing o=11, l=1"},
	}
	assertVerifyDiffs(t, res.stdout, want)
	mustContain(t, res.stdout, fmt.Sprintf("DIFFERENT: %d of %d tables differ", len(want), len(tables)))
}
