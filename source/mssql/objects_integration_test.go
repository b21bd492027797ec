package mssql

import (
	"fmt"
	"strings"
	"testing"

	"github.com/caravan-db/caravan/schema"
)

// The inventory carries each module's T-SQL text from the engine's
// catalog, for --objects-dir, and plan lists each object.
func TestIntegrationObjectDefinitions(t *testing.T) {
	env := setupIntegration(t)
	for _, stmt := range []string{
		"CREATE TABLE dbo.obj_t (id int PRIMARY KEY, a nvarchar(10))",
		"CREATE VIEW dbo.obj_v AS SELECT TOP 5 id, ISNULL(a, N'x') AS a FROM dbo.obj_t",
		"CREATE PROCEDURE dbo.obj_p AS SELECT COUNT(*) FROM dbo.obj_t",
		"CREATE FUNCTION dbo.obj_f (@x int) RETURNS int AS BEGIN RETURN @x + 1 END",
		"CREATE TRIGGER obj_tr ON dbo.obj_t AFTER INSERT AS SELECT 1",
	} {
		mustExec(t, env.admin, stmt)
	}
	db, err := env.src.Discover(env.ctx, schema.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"view:dbo.obj_v":      "SELECT TOP 5 id",
		"procedure:dbo.obj_p": "SELECT COUNT(*) FROM dbo.obj_t",
		"function:dbo.obj_f":  "RETURN @x + 1",
		"trigger:dbo.obj_tr":  "AFTER INSERT",
	}
	got := map[string]string{}
	for _, u := range db.Unmigrated {
		got[strings.ToLower(u.Key())] = u.Definition
	}
	for key, text := range want {
		if !strings.Contains(got[key], text) {
			t.Errorf("%s: definition %q, want it to hold %q (inventory: %v)", key, got[key], text, got)
		}
	}
}

// A used and an unused sequence are created on PostgreSQL so that nextval
// there returns what NEXT VALUE FOR would have returned on the source.
func TestIntegrationSequences(t *testing.T) {
	env := setupIntegration(t)
	for _, stmt := range []string{
		"CREATE TABLE dbo.seq_t (id int PRIMARY KEY)",
		"CREATE SEQUENCE dbo.seq_used AS bigint START WITH 10 INCREMENT BY 5",
		"CREATE SEQUENCE dbo.seq_fresh AS int START WITH 100 INCREMENT BY -3 MINVALUE 0 MAXVALUE 100 CYCLE",
	} {
		mustExec(t, env.admin, stmt)
	}
	for i := 0; i < 3; i++ {
		mustExec(t, env.admin, "SELECT NEXT VALUE FOR dbo.seq_used")
	}
	db, err := env.src.Discover(env.ctx, schema.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range db.Unmigrated {
		if u.Kind == "sequence" {
			t.Errorf("sequence left unmigrated: %s: %s", u.Name, u.Reason)
		}
	}
	next := map[string]int64{}
	for _, s := range db.Sequences {
		name := strings.ToLower(s.Name.Name)
		s.Name = schema.Name{Schema: env.pgSch, Name: name}
		for _, stmt := range schema.CreateSequence(s) {
			if _, err := env.pg.Exec(env.ctx, stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		var v int64
		if err := env.pg.QueryRow(env.ctx, "SELECT nextval($1)", schema.QuoteName(s.Name)).Scan(&v); err != nil {
			t.Fatal(err)
		}
		next[name] = v
	}
	for name, want := range map[string]int64{"seq_used": 25, "seq_fresh": 100} {
		var src int64
		if err := env.admin.QueryRowContext(env.ctx, "SELECT CAST(NEXT VALUE FOR dbo."+name+" AS bigint)").Scan(&src); err != nil {
			t.Fatal(err)
		}
		if src != want || next[name] != want {
			t.Errorf("%s: next value %d on the source, %d on the target, want %d", name, src, next[name], want)
		}
	}
}

// The engine's own view text translates: views are created on PostgreSQL
// over the tables caravan creates, a view on a view after it, and answer
// as on the source; a view using LIKE stays listed with its reason.
func TestIntegrationViewsTranslated(t *testing.T) {
	env := setupIntegration(t)
	for _, stmt := range []string{
		"CREATE TABLE dbo.vw_t (id int PRIMARY KEY, a nvarchar(10) NULL, qty int NULL)",
		"INSERT INTO dbo.vw_t (id, a, qty) VALUES (1, N'x', 2), (2, NULL, 3), (3, N'z', NULL)",
		"CREATE VIEW dbo.vw_ok AS SELECT id, ISNULL(a, N'?') AS a, qty * 2 AS twice FROM dbo.vw_t",
		"CREATE VIEW dbo.vw_on AS SELECT TOP (2) o.id, o.a + N'!' AS shout FROM dbo.vw_ok AS o ORDER BY o.twice DESC",
		"CREATE VIEW dbo.vw_no AS SELECT id FROM dbo.vw_t WHERE a LIKE N'x%'",
	} {
		mustExec(t, env.admin, stmt)
	}
	db := env.discover(t, schema.Filter{Include: []string{"dbo.vw_t"}})
	var names []string
	for _, v := range db.Views {
		names = append(names, strings.ToLower(v.Name))
	}
	if strings.Join(names, ",") != "dbo.vw_ok,dbo.vw_on" {
		for _, u := range db.Unmigrated {
			t.Log(u.Key(), u.Reason)
		}
		t.Fatalf("translated views %v, want vw_ok then vw_on", names)
	}
	for _, u := range db.Unmigrated {
		if strings.EqualFold(u.Key(), "view:dbo.vw_no") && !strings.Contains(u.Reason, "LIKE") {
			t.Errorf("vw_no: %s", u.Reason)
		}
	}
	create, err := db.CreateTable(db.Tables[0], false)
	if err != nil {
		t.Fatal(err)
	}
	stmts := []string{create, fmt.Sprintf(`INSERT INTO %s.vw_t VALUES (1, 'x', 2), (2, NULL, 3), (3, 'z', NULL)`, schema.Quote(env.pgSch))}
	for _, v := range db.Views {
		stmts = append(stmts, v.SQL...)
	}
	for _, s := range stmts {
		if _, err := env.pg.Exec(env.ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	var got string
	q := fmt.Sprintf(`SELECT string_agg(id || ':' || shout, ',' ORDER BY id) FROM %s.vw_on`, schema.Quote(env.pgSch))
	if err := env.pg.QueryRow(env.ctx, q).Scan(&got); err != nil {
		t.Fatal(err)
	}
	// twice: 4, 6, NULL; NULL sorts last under DESC in SQL Server
	if got != "1:x!,2:?!" {
		t.Errorf("vw_on on PostgreSQL: %s, want 1:x!,2:?!", got)
	}
}
