package coordinator

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caravan-db/caravan/internal/testenv"
	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/target"
)

// Translated views are created with the tables, views on views after the
// views they use. One the target refuses, and those on it, stop the run
// before anything is created unless accepted; accepted, the run records
// them as not migrated and creates the rest. A later run over the same
// tables (--mode truncate) replaces the views.
func TestViewsCreatedWithTheTables(t *testing.T) {
	ctx := context.Background()
	url := testenv.Database(t, "dst")
	pool, err := pgutil.Pool(ctx, url, "caravan-test", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := target.EnsureState(ctx, pool); err != nil {
		t.Fatal(err)
	}
	plan := func() *Plan {
		tb := &schema.Table{Source: schema.Name{Schema: "dbo", Name: "T"}, Target: schema.Name{Schema: "public", Name: "t"},
			Columns: []*schema.Column{{Name: "Id", TargetName: "id", Type: "integer", SourceType: "int"}}}
		return &Plan{DB: &schema.Database{Tables: []*schema.Table{tb}, Schemas: []string{"public"}, Views: []*schema.Object{
			{Kind: "view", Name: "dbo.V1", Mapped: true, SQL: []string{`CREATE OR REPLACE VIEW "public"."v1" ("id") AS SELECT "t"."id" AS "id" FROM "public"."t"`}},
			{Kind: "view", Name: "dbo.Bad", Mapped: true, SQL: []string{`CREATE OR REPLACE VIEW "public"."bad" ("x") AS SELECT "t"."nope" AS "x" FROM "public"."t"`}},
			{Kind: "view", Name: "dbo.OnBad", Mapped: true, Needs: []string{"dbo.Bad"}, SQL: []string{`CREATE OR REPLACE VIEW "public"."onbad" ("x") AS SELECT "bad"."x" AS "x" FROM "public"."bad"`}},
			{Kind: "view", Name: "dbo.OnV1", Mapped: true, Needs: []string{"dbo.V1"}, SQL: []string{`CREATE OR REPLACE VIEW "public"."onv1" ("id") AS SELECT "v1"."id" AS "id" FROM "public"."v1"`}},
		}}}
	}
	run := func(opts Options) (*Coordinator, *Plan, error) {
		p := plan()
		c := New(nil, pool, nil, Config{Run: uuid.NewString(), Options: opts})
		if err := target.CreateRun(ctx, pool, &target.Run{ID: c.cfg.Run, Status: target.RunPlanning, SourceKind: "mssql", Model: p.DB}); err != nil {
			t.Fatal(err)
		}
		return c, p, c.createTables(ctx, p)
	}
	_, _, err = run(Options{})
	if err == nil || !strings.Contains(err.Error(), "view:dbo.Bad (PostgreSQL refused its translation") ||
		!strings.Contains(err.Error(), "view:dbo.OnBad (it uses view dbo.Bad, which is not migrated)") || strings.Contains(err.Error(), "dbo.V1") {
		t.Fatalf("got %v, want the run refused naming the views the target refused", err)
	}
	if testQuery[bool](t, pool, `SELECT to_regclass('public.t') IS NOT NULL OR to_regclass('public.v1') IS NOT NULL`) {
		t.Fatal("the refused run created tables or views")
	}

	c, p, err := run(Options{AcceptUnmigrated: []string{"view:dbo.*Bad"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := testQuery[string](t, pool, `SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'v'`); got != "onv1,v1" {
		t.Errorf("views on the target: %s", got)
	}
	var names []string
	for _, v := range p.DB.Views {
		names = append(names, v.Name)
	}
	if strings.Join(names, ",") != "dbo.V1,dbo.OnV1" || len(p.DB.Unmigrated) != 2 {
		t.Errorf("views %v, not migrated %v", names, p.DB.Unmigrated)
	}
	rec, err := target.LoadRun(ctx, pool, c.cfg.Run)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Model.Unmigrated) != 2 || rec.Model.Unmigrated[1].Key() != "view:dbo.OnBad" || len(rec.Model.Views) != 2 {
		t.Errorf("recorded model: views %d, not migrated %v", len(rec.Model.Views), rec.Model.Unmigrated)
	}
	if n := testQuery[int64](t, pool, `SELECT count(*) FROM caravan.audit WHERE run_id = $1 AND operation = 'not_migrated'`, c.cfg.Run); n != 2 {
		t.Errorf("%d not_migrated audit rows, want 2", n)
	}

	// a table reloaded on resume is emptied under its views (TRUNCATE)
	if _, err := pool.Exec(ctx, `INSERT INTO public.t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	if _, err := target.RestartTable(ctx, pool, c.cfg.Run, p.DB.Tables[0].Target, p.DB.Tables[0].ID(), true); err != nil {
		t.Fatalf("reload a table under views: %v", err)
	}
	if n := testQuery[int64](t, pool, `SELECT count(*) FROM public.onv1`); n != 0 {
		t.Errorf("%d rows through the views after the reload", n)
	}

	// the tables are emptied, the views replaced
	if _, _, err := run(Options{Mode: ModeTruncate, AcceptUnmigrated: []string{"view:*"}}); err != nil {
		t.Fatalf("a second run over the views: %v", err)
	}
}

func testQuery[T any](t *testing.T, pool *pgxpool.Pool, q string, args ...any) T {
	t.Helper()
	var v T
	if err := pool.QueryRow(context.Background(), q, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

// plan says for each view what the run does with it.
func TestViewFates(t *testing.T) {
	p := &Plan{DB: &schema.Database{
		Views:      []*schema.Object{{Kind: "view", Name: "dbo.ok"}},
		Objects:    []*schema.Object{{Kind: "materialized view", Name: "public.mv"}, {Kind: "function", Name: "public.f()"}},
		Unmigrated: []*schema.Unmigrated{{Kind: "view", Name: "dbo.no", Reason: "its query is not translated: CROSS APPLY is not translated"}, {Kind: "trigger", Name: "dbo.tr"}},
	}}
	got := strings.Join(p.ViewFates(), "\n")
	want := "view dbo.ok: created as PostgreSQL view\nmaterialized view public.mv: created after the load\n" +
		"view dbo.no: not migrated: its query is not translated: CROSS APPLY is not translated"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
