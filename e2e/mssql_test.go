package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/microsoft/go-mssqldb" // the sqlserver driver, for setting up the source

	"github.com/caravan-db/caravan/internal/testenv"
)

// TestMigrateFromSQLServer runs `caravan migrate` from a real SQL Server
// (CARAVAN_TEST_MSSQL_URL, e.g. the docker-compose mssql service) into
// PostgreSQL: identity and composite keys, a heap, a foreign key, money,
// datetime2, uniqueidentifier and unicode, compared after the run.
func TestMigrateFromSQLServer(t *testing.T) {
	msURL := os.Getenv("CARAVAN_TEST_MSSQL_URL")
	if msURL == "" {
		t.Skip("CARAVAN_TEST_MSSQL_URL not set: no SQL Server to migrate from (docker compose up -d mssql, then CARAVAN_TEST_MSSQL_URL=sqlserver://sa:<password>@localhost:1433?database=master)")
	}
	ctx := context.Background()
	ms, err := sql.Open("sqlserver", msURL)
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	sch := fmt.Sprintf("caravan_e2e_%d", time.Now().UnixNano()%1_000_000_000)
	// the placeholder is a token no statement holds otherwise (SCH was
	// also replaced inside the word SCHEMA)
	q := func(s string) string { return strings.ReplaceAll(s, "§", "["+sch+"]") }
	for _, stmt := range []string{
		"CREATE SCHEMA §",
		`CREATE TABLE §.Orders (Id int IDENTITY(1,1) PRIMARY KEY, Customer nvarchar(100) NOT NULL, Amount money NULL,
			PlacedAt datetime2(7) NOT NULL, Ref uniqueidentifier NOT NULL DEFAULT newid(), Note varchar(max) NULL)`,
		`INSERT INTO §.Orders (Customer, Amount, PlacedAt, Note)
			SELECT TOP (5000) N'Zoë 😀 ' + CAST(n AS nvarchar(10)), CAST(n AS money) / 7, DATEADD(second, n, CAST('2024-01-01T00:00:00.1234567' AS datetime2(7))),
				CASE WHEN n % 5 = 0 THEN NULL ELSE 'note ' + CAST(n AS varchar(10)) END
			FROM (SELECT ROW_NUMBER() OVER (ORDER BY (SELECT NULL)) AS n FROM sys.all_objects a CROSS JOIN sys.all_objects b) x`,
		`CREATE TABLE §.Lines (OrderId int NOT NULL REFERENCES §.Orders (Id), Line int NOT NULL, Sku nvarchar(20) NOT NULL, PRIMARY KEY (OrderId, Line))`,
		`INSERT INTO §.Lines SELECT o.Id, l.n, N'SKU-' + CAST(o.Id * 3 + l.n AS nvarchar(10)) FROM §.Orders o CROSS JOIN (VALUES (1), (2), (3)) l(n)`,
		`CREATE TABLE §.Heap (v nvarchar(50) NULL)`,
		`INSERT INTO §.Heap SELECT TOP (3000) N'h' + CAST(Id % 100 AS nvarchar(10)) FROM §.Orders`,
	} {
		if _, err := ms.ExecContext(ctx, q(stmt)); err != nil {
			t.Fatalf("%s: %v", q(stmt), err)
		}
	}
	t.Cleanup(func() {
		for _, stmt := range []string{"DROP TABLE §.Lines", "DROP TABLE §.Orders", "DROP TABLE §.Heap", "DROP SCHEMA §"} {
			_, _ = ms.ExecContext(ctx, q(stmt))
		}
	})

	dst := testenv.Database(t, "dst")
	res := caravan(t, 5*time.Minute, "migrate", "--source-url", msURL, "--target-url", dst, "--include", sch+".*", "--chunk-rows", "1000")
	if res.code != 0 {
		t.Fatalf("migrate exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 5000))
	}
	for table, n := range map[string]int64{"orders": 5000, "lines": 15000, "heap": 3000} {
		if got := query[int64](t, dst, fmt.Sprintf(`SELECT count(*) FROM %q.%q`, sch, table)); got != n {
			t.Errorf("%s: %d rows, want %d", table, got, n)
		}
	}
	var msSum, msRefs string
	if err := ms.QueryRowContext(ctx, q(`SELECT CAST(CAST(SUM(Amount) AS decimal(19,4)) AS varchar(40)), CAST(COUNT(DISTINCT Ref) AS varchar(20)) FROM §.Orders`)).Scan(&msSum, &msRefs); err != nil {
		t.Fatal(err)
	}
	if got := query[string](t, dst, fmt.Sprintf(`SELECT sum(amount)::text FROM %q.orders`, sch)); got != msSum {
		t.Errorf("sum(amount): PostgreSQL %s, SQL Server %s", got, msSum)
	}
	if got := query[string](t, dst, fmt.Sprintf(`SELECT count(DISTINCT ref)::text FROM %q.orders`, sch)); got != msRefs {
		t.Errorf("distinct refs: PostgreSQL %s, SQL Server %s", got, msRefs)
	}
	if got := query[string](t, dst, fmt.Sprintf(`SELECT customer || ' ' || placedat::text FROM %q.orders WHERE id = 1`, sch)); got != "Zoë 😀 1 2024-01-01 00:00:01.123457" {
		t.Errorf("row 1 holds %q", got)
	}
	if n := query[int64](t, dst, `SELECT count(*) FROM caravan.verdicts WHERE NOT ok`); n != 0 {
		t.Errorf("%d failed verdicts", n)
	}
}
