package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caravan-db/caravan/internal/testenv"
)

// TestSQLServerObjectsNotLostBySurprise: plan says which views are created
// on the target (translated, a view on a view among them) and lists the
// rest of a T-SQL schema's views, procedures, functions and triggers,
// writing their definitions (--objects-dir); migrate refuses to start until
// each is accepted, naming it and the setting; accepted, the run copies
// the rows, creates the translated views and the sequence at the source's
// value and reports what it left behind.
func TestSQLServerObjectsNotLostBySurprise(t *testing.T) {
	msURL, ms := openTSQL(t)
	ctx := context.Background()
	sch := fmt.Sprintf("objs_%d", time.Now().UnixNano()%1_000_000_000)
	q := func(s string) string { return strings.ReplaceAll(s, "§", "["+sch+"]") }
	for _, stmt := range []string{
		"CREATE SCHEMA §",
		"CREATE TABLE §.items (id int PRIMARY KEY, name nvarchar(20) NULL, qty int NULL, doubled AS (qty * 2), absolute AS (ABS(qty)))",
		"INSERT INTO §.items (id, name, qty) VALUES (1, N'a', 5), (2, NULL, NULL), (3, N'c', -7)",
		"CREATE VIEW §.named AS SELECT id, ISNULL(name, N'?') AS name FROM §.items",
		"CREATE VIEW §.later AS SELECT n.id, n.name + N'!' AS shout FROM §.named AS n WHERE n.id > 1",
		"CREATE VIEW §.tricky AS SELECT id FROM §.items WHERE name LIKE N'a%'",
		"CREATE PROCEDURE §.touch AS UPDATE §.items SET name = name",
		"CREATE FUNCTION §.twice (@x int) RETURNS int AS BEGIN RETURN @x * 2 END",
		"CREATE TRIGGER §.items_tr ON §.items AFTER INSERT AS SELECT 1",
		"CREATE SEQUENCE §.ticket AS bigint START WITH 100 INCREMENT BY 10",
		"CREATE TYPE §.lines AS TABLE (id int NOT NULL, note nvarchar(10) NULL)",
		"SELECT NEXT VALUE FOR §.ticket",
		"SELECT NEXT VALUE FOR §.ticket",
	} {
		if _, err := ms.ExecContext(ctx, q(stmt)); err != nil {
			t.Fatalf("%s: %v", q(stmt), err)
		}
	}
	t.Cleanup(func() {
		for _, stmt := range []string{"DROP TRIGGER §.items_tr", "DROP VIEW §.tricky", "DROP VIEW §.later", "DROP VIEW §.named", "DROP PROCEDURE §.touch", "DROP FUNCTION §.twice",
			"DROP SEQUENCE §.ticket", "DROP TYPE §.lines", "DROP TABLE §.items", "DROP SCHEMA §"} {
			_, _ = ms.ExecContext(ctx, q(stmt))
		}
	})
	objects := []string{"view:" + sch + ".tricky", "procedure:" + sch + ".touch", "function:" + sch + ".twice", "trigger:" + sch + ".items_tr", "table type:" + sch + ".lines"}

	dir := t.TempDir()
	res := caravan(t, 2*time.Minute, "plan", "--source-url", msURL, "--include", sch+".*", "--objects-dir", dir)
	if res.code != 0 {
		t.Fatalf("plan exited %d\n%s", res.code, tail(res.stderr, 3000))
	}
	mustContain(t, res.stdout, append([]string{"-- not migrated", "CREATE SEQUENCE IF NOT EXISTS", "5 definitions written",
		"view " + sch + ".named: created as PostgreSQL view", "view " + sch + ".later: created as PostgreSQL view",
		"view " + sch + ".tricky: not migrated: its query is not translated: LIKE"}, objects...)...)
	for file, text := range map[string]string{sch + ".tricky.sql": "LIKE N'a%'", sch + ".touch.sql": "UPDATE", sch + ".twice.sql": "RETURN @x * 2",
		sch + ".items_tr.sql": "AFTER INSERT", sch + ".lines.sql": "AS TABLE (\n    [id] int NOT NULL,\n    [note] nvarchar(10) NULL\n)"} {
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil || !strings.Contains(string(data), text) {
			t.Errorf("--objects-dir %s: %q, %v; want it to hold %q", file, data, err, text)
		}
	}

	dst := testenv.Database(t, "dst")
	args := []string{"migrate", "--source-url", msURL, "--target-url", dst, "--include", sch + ".*"}
	res = caravan(t, 2*time.Minute, args...)
	if res.code == 0 {
		t.Fatal("migrate started with objects it would not migrate, not accepted")
	}
	mustContain(t, res.stdout+res.stderr, append([]string{"--accept-unmigrated"}, objects...)...)
	if query[bool](t, dst, fmt.Sprintf(`SELECT to_regclass('%s.items') IS NOT NULL`, sch)) {
		t.Error("the refused run created tables")
	}

	res = caravan(t, 3*time.Minute, append(args, "--computed", "generated", "--accept-unmigrated", "view:"+sch+".*", "--accept-unmigrated", "procedure:*",
		"--accept-unmigrated", "function:*", "--accept-unmigrated", "trigger:*", "--accept-unmigrated", "table type:*")...)
	if res.code != 0 {
		t.Fatalf("migrate exited %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, tail(res.stderr, 6000))
	}
	mustContain(t, res.stdout, append([]string{"not migrated (5"}, sch+".tricky", sch+".items_tr")...)
	if n := query[int64](t, dst, fmt.Sprintf(`SELECT count(*) FROM %q.items`, sch)); n != 3 {
		t.Errorf("items: %d rows, want 3", n)
	}
	// The translated views answer on the target as on the source.
	if got := query[string](t, dst, fmt.Sprintf(`SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM %q.named`, sch)); got != "1:a,2:?,3:c" {
		t.Errorf("view named on the target: %s", got)
	}
	if got := query[string](t, dst, fmt.Sprintf(`SELECT string_agg(id || ':' || shout, ',' ORDER BY id) FROM %q.later`, sch)); got != "2:?!,3:c!" {
		t.Errorf("view later on the target: %s", got)
	}
	// --computed generated: the simple expression is PostgreSQL's to
	// compute, a function the translator does not know keeps the source's values.
	if got := query[string](t, dst, fmt.Sprintf(`SELECT string_agg(attname || ':' || attgenerated::text, ',' ORDER BY attnum) FROM pg_attribute
		WHERE attrelid = '%q.items'::regclass AND attname IN ('doubled', 'absolute')`, sch)); got != "doubled:s,absolute:" {
		t.Errorf("computed columns on the target: %s, want doubled generated and absolute plain", got)
	}
	if got := query[string](t, dst, fmt.Sprintf(`SELECT string_agg(coalesce(doubled::text, 'NULL') || '/' || coalesce(absolute::text, 'NULL'), ',' ORDER BY id) FROM %q.items`, sch)); got != "10/5,NULL/NULL,-14/7" {
		t.Errorf("computed values on the target: %s", got)
	}
	if n := query[int64](t, dst, `SELECT count(*) FROM caravan.audit WHERE operation = 'not_migrated'`); n != 5 {
		t.Errorf("%d not_migrated audit rows, want 5", n)
	}
	// The sequence continues where the source's does.
	var next int64
	if err := ms.QueryRowContext(ctx, q("SELECT CAST(NEXT VALUE FOR §.ticket AS bigint)")).Scan(&next); err != nil {
		t.Fatal(err)
	}
	if got := query[int64](t, dst, fmt.Sprintf(`SELECT nextval('%q.ticket')`, sch)); got != next || next != 120 {
		t.Errorf("sequence: next value %d on the target, %d on the source, want 120", got, next)
	}
}
