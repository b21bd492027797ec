package coordinator

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/caravan-db/caravan/internal/testenv"
	"github.com/caravan-db/caravan/schema"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// An extension the target server cannot provide stops the run before
// anything is created, naming it; one it can provide is created.
func TestExtensionsTheTargetLacks(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testenv.Database(t, "dst"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	db := &schema.Database{Extensions: []*schema.Extension{{Name: "citext", Schema: "public"}, {Name: "no_such_extension", Schema: "public"}}}
	err = createExtensions(ctx, tx, db)
	if err == nil || !strings.Contains(err.Error(), `extension "no_such_extension"`) || !strings.Contains(err.Error(), "not available on the target") {
		t.Fatalf("got %v, want an error naming the extension the target lacks", err)
	}
	var installed bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citext')`).Scan(&installed); err != nil {
		t.Fatal(err)
	}
	if !installed {
		t.Error("citext, which the target has, was not created")
	}
}

func TestUnmigratedNeedAcceptance(t *testing.T) {
	db := &schema.Database{Unmigrated: []*schema.Unmigrated{
		{Kind: "aggregate", Name: "public.total(integer)", Reason: "r1"},
		{Kind: "view", Name: "public.v", Reason: "r2"},
	}}
	o := Options{AcceptUnmigrated: []string{"aggregate:*"}}
	err := o.CheckUnmigrated(db)
	if err == nil || !strings.Contains(err.Error(), "view:public.v (r2)") || strings.Contains(err.Error(), "aggregate:") ||
		!strings.Contains(err.Error(), "--accept-unmigrated") || !strings.Contains(err.Error(), "accept-unmigrated:") {
		t.Fatalf("got %v", err)
	}
	o.AcceptUnmigrated = append(o.AcceptUnmigrated, "view:public.*")
	if err := o.CheckUnmigrated(db); err != nil {
		t.Errorf("everything accepted, yet: %v", err)
	}
	if got := o.AcceptedBy(db.Unmigrated[1]); got != "view:public.*" {
		t.Errorf("accepted by %q", got)
	}
}
