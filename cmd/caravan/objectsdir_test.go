package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caravan-db/caravan/schema"
)

func TestDefinitionFileNames(t *testing.T) {
	for name, want := range map[string]string{
		"dbo.OrderTotals":  "dbo.OrderTotals.sql",
		"sales.a/b":        "sales.a%2Fb.sql",
		"dbo.x:y*?":        "dbo.x%3Ay%2A%3F.sql",
		"dbo.50% off":      "dbo.50%25%20off.sql",
		".hidden.v":        "%2Ehidden.v.sql",
		"dbo.été":          "dbo.%C3%A9t%C3%A9.sql",
		`dbo.back\slash"q`: "dbo.back%5Cslash%22q.sql",
	} {
		if got := definitionFile(name); got != want {
			t.Errorf("definitionFile(%q) = %q, want %q", name, got, want)
		}
	}
}

// One file per object that has a text, holding it after a header that
// says what caravan does with it; objects without a text get none.
func TestWriteDefinitions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "objects")
	files, err := writeDefinitions(dir, []*schema.Unmigrated{
		{Kind: "view", Name: "dbo.v/1", Reason: "not migrated", Definition: "CREATE VIEW [dbo].[v/1] AS SELECT 1 AS x\n"},
		{Kind: "procedure", Name: "dbo.p", Reason: "rewrite it", Definition: "CREATE PROCEDURE dbo.p AS SELECT 2"},
		{Kind: "partition scheme", Name: "ps", Reason: "copied unpartitioned"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("wrote %v, want two files", files)
	}
	got, err := os.ReadFile(filepath.Join(dir, "dbo.v%2F1.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "-- view dbo.v/1: not migrated\nCREATE VIEW [dbo].[v/1] AS SELECT 1 AS x\n"; string(got) != want {
		t.Errorf("view file:\n%s\nwant:\n%s", got, want)
	}
	got, err = os.ReadFile(filepath.Join(dir, "dbo.p.sql"))
	if err != nil || !strings.Contains(string(got), "CREATE PROCEDURE dbo.p AS SELECT 2") {
		t.Errorf("procedure file: %q, %v", got, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("directory holds %d files, want 2", len(entries))
	}
}
