package mssql

import (
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
