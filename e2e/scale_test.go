package e2e

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/caravan-db/caravan/internal/testenv"
)

// TestMillionRows copies a million rows with three extractors and three
// loaders.
func TestMillionRows(t *testing.T) {
	if testing.Short() {
		t.Skip("a million rows: skipped in -short mode")
	}
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, bigTable("million", 1_000_000)...)
	run := uuid.NewString()
	res := caravan(t, 10*time.Minute, "migrate", "--source-url", src, "--target-url", dst, "--run-id", run,
		"--extractors", "3", "--loaders", "3")
	if res.code != 0 {
		t.Fatalf("migrate exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 4000))
	}
	t.Logf("\n%s", res.stdout)
	assertSameContent(t, src, dst, "million")
	assertExactlyOnce(t, src, dst, run, "million")
}
