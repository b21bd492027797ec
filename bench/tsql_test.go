package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/microsoft/go-mssqldb" // the sqlserver driver, for building the source table
)

// BenchmarkTSQLCompare measures a T-SQL source (CARAVAN_TEST_MSSQL_URL;
// skipped without it): one table of CARAVAN_BENCH_TSQL_ROWS rows (default
// 1,000,000) with a bigint key and numeric, datetime2, uniqueidentifier,
// float, bit and money columns, migrated by caravan into a fresh
// PostgreSQL database, against
//   - the engine's own floor, when the engine is Babelfish and
//     CARAVAN_TEST_BABELFISH_PG_URL names its PostgreSQL port: the same
//     rows read by COPY TO STDOUT there (read only: nothing is written);
//   - pgloader (Debian's package reads SQL Server through FreeTDS), when
//     installed: the same table into another fresh database.
//
// The table is built once and kept (dbo.caravan_bench_<rows>): building a
// million rows through T-SQL takes a minute.
func BenchmarkTSQLCompare(b *testing.B) {
	msURL := os.Getenv("CARAVAN_TEST_MSSQL_URL")
	if msURL == "" {
		b.Skip("CARAVAN_TEST_MSSQL_URL not set: no T-SQL source to measure")
	}
	rows := envInt(b, "CARAVAN_BENCH_TSQL_ROWS", 1_000_000)
	table := fmt.Sprintf("caravan_bench_%d", rows)
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	dbName, err := ensureTSQLTable(ctx, msURL, table, rows)
	if err != nil {
		b.Fatal(err)
	}
	binary := caravanBinary(b)
	floorURL := os.Getenv("CARAVAN_TEST_BABELFISH_PG_URL")
	pgloader, _ := exec.LookPath("pgloader")
	var floor, car, pgl measurement
	var pglErr error
	for b.Loop() {
		if floorURL != "" {
			m, err := engineFloor(ctx, floorURL, strings.ToLower(dbName)+"_dbo", table)
			if err != nil {
				b.Fatal(err)
			}
			floor.add(m)
		}
		car.add(caravanTSQLOnce(b, binary, msURL, table, int64(rows)))
		if pgloader != "" && pglErr == nil {
			var m measurement
			m, pglErr = pgloaderTSQLOnce(b, pgloader, msURL, table, int64(rows))
			pgl.add(m)
		}
	}
	car.Bytes = floor.Bytes
	fmt.Printf("T-SQL source: %d rows (bigint key; numeric, datetime2, uniqueidentifier, float, bit, money)\n", rows)
	fmt.Printf("caravan migrate (2 extractors, 2 loaders): %.0f rows/s in %s (%s)\n", car.rowsPerSec(), car.Elapsed.Round(time.Millisecond), car.Note)
	if floorURL != "" {
		fmt.Printf("engine floor, COPY TO STDOUT on its PostgreSQL port: %.0f rows/s in %s\n", floor.rowsPerSec(), floor.Elapsed.Round(time.Millisecond))
		fmt.Printf("caravan/engine-floor time ratio: %.2f\n", car.Elapsed.Seconds()/floor.Elapsed.Seconds())
	}
	switch {
	case pgloader == "":
		fmt.Println("pgloader: not installed (apt-get install pgloader)")
	case pglErr != nil:
		fmt.Printf("pgloader: failed: %v\n", pglErr)
	default:
		fmt.Printf("pgloader: %.0f rows/s in %s; caravan/pgloader time ratio: %.2f\n", pgl.rowsPerSec(), pgl.Elapsed.Round(time.Millisecond),
			car.Elapsed.Seconds()/pgl.Elapsed.Seconds())
	}
	report(b, car)
}

// ensureTSQLTable builds dbo.<table> with rows rows unless it is there,
// and returns the database's name.
func ensureTSQLTable(ctx context.Context, msURL, table string, rows int) (string, error) {
	db, err := sql.Open("sqlserver", msURL)
	if err != nil {
		return "", err
	}
	defer db.Close()
	var name string
	var have int64
	err = db.QueryRowContext(ctx, "SELECT DB_NAME(), CAST(COALESCE(OBJECT_ID(@p1), 0) AS bigint)", "dbo."+table).Scan(&name, &have)
	if err != nil {
		return "", fmt.Errorf("T-SQL source: %w", err)
	}
	ref := "[dbo].[" + table + "]"
	if have != 0 {
		if err := db.QueryRowContext(ctx, "SELECT COUNT_BIG(*) FROM "+ref).Scan(&have); err != nil {
			return "", err
		}
		if have == int64(rows) {
			return name, nil
		}
		if _, err := db.ExecContext(ctx, "DROP TABLE "+ref); err != nil {
			return "", err
		}
	}
	digits := "(VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9))"
	var from []string
	var sum []string
	for i, p := 0, 1; p < rows*10 && i < 9; i, p = i+1, p*10 {
		from = append(from, fmt.Sprintf("%s d%d(d)", digits, i))
		sum = append(sum, fmt.Sprintf("%d * d%d.d", p, i))
	}
	stmts := []string{
		"CREATE TABLE " + ref + " (id bigint NOT NULL PRIMARY KEY, amount numeric(18,4) NOT NULL, at datetime2(6) NOT NULL, " +
			"ref uniqueidentifier NOT NULL, ratio float NULL, flag bit NOT NULL, price money NULL)",
		fmt.Sprintf("INSERT INTO %s SELECT TOP (%d) n, CAST(n AS numeric(18,4)) / 7, DATEADD(second, n, CAST('2024-01-01T00:00:00.123456' AS datetime2(6))), "+
			"NEWID(), CASE WHEN n %% 10 = 0 THEN NULL ELSE n / 3.0E0 END, n %% 2, CAST(n %% 100000 AS money) / 3 "+
			"FROM (SELECT %s + 1 AS n FROM %s) AS x ORDER BY n", ref, rows, strings.Join(sum, " + "), strings.Join(from, " CROSS JOIN ")),
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return "", fmt.Errorf("build %s: %w", ref, err)
		}
	}
	return name, nil
}

// engineFloor reads the table by COPY on the engine's PostgreSQL port:
// the fastest the engine hands these rows to anyone.
func engineFloor(ctx context.Context, pgURL, schemaName, table string) (measurement, error) {
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		return measurement{}, fmt.Errorf("engine floor: %w", err)
	}
	defer conn.Close(ctx)
	var w countingWriter
	start := time.Now()
	tag, err := conn.PgConn().CopyTo(ctx, &w, "COPY "+pgx.Identifier{schemaName, table}.Sanitize()+" TO STDOUT")
	if err != nil {
		return measurement{}, fmt.Errorf("engine floor: %w", err)
	}
	return measurement{Elapsed: time.Since(start), Rows: tag.RowsAffected(), Bytes: w.n}, nil
}

func caravanTSQLOnce(b *testing.B, binary, msURL, table string, rows int64) measurement {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	var m measurement
	withDatabase(ctx, b, "caravan_bench_tsql", func(dstURL string) {
		args := []string{"migrate", "--source-url", msURL, "--target-url", dstURL, "--include", "dbo." + table, "--extractors", "2", "--loaders", "2"}
		args = append(args, strings.Fields(os.Getenv("CARAVAN_BENCH_ARGS"))...)
		start := time.Now()
		out, _, err := runCommand(ctx, binary, []string{"CARAVAN_LOG_FORMAT=json"}, args...)
		m = measurement{Elapsed: time.Since(start), Rows: rows}
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if err := checkTSQLCount(ctx, dstURL, "public", table, rows); err != nil {
			b.Fatalf("caravan: %v\n%s", err, out)
		}
		m.Note = runLine(out)
	})
	return m
}

// pgloaderTSQLOnce runs pgloader on the same table; its error is reported,
// not fatal: pgloader may not read the engine's catalog.
func pgloaderTSQLOnce(b *testing.B, binary, msURL, table string, rows int64) (measurement, error) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	var m measurement
	var runErr error
	withDatabase(ctx, b, "caravan_bench_pgloader", func(dstURL string) {
		src, err := pgloaderSource(msURL)
		if err != nil {
			runErr = err
			return
		}
		dir := b.TempDir()
		load := filepath.Join(dir, "tsql.load")
		script := fmt.Sprintf("LOAD DATABASE FROM %s INTO %s\nINCLUDING ONLY TABLE NAMES LIKE '%s' IN SCHEMA 'dbo';\n", src, dstURL, table)
		if err := os.WriteFile(load, []byte(script), 0o600); err != nil {
			runErr = err
			return
		}
		start := time.Now()
		out, stderr, err := runCommand(ctx, binary, nil, "--no-ssl-cert-verification", load)
		m = measurement{Elapsed: time.Since(start), Rows: rows}
		b.StopTimer()
		// pgloader exits 0 when it cannot even read the catalog: its log
		// says so (on Babelfish 4.3: "MSSQL ERROR: %dbsqlexec fail" while
		// fetching metadata; the engine logs "Argument data type sysname
		// is invalid for argument 1 of replace function")
		for _, line := range strings.Split(out+stderr, "\n") {
			if err == nil && (strings.Contains(line, " ERROR ") || strings.Contains(line, " FATAL ")) {
				err = errors.New(strings.TrimSpace(line))
			}
		}
		if err == nil {
			err = checkTSQLCount(ctx, dstURL, "dbo", table, rows)
		}
		runErr = err
	})
	return m, runErr
}

// pgloaderSource spells the sqlserver:// URL as pgloader's mssql:// one.
func pgloaderSource(msURL string) (string, error) {
	u, err := url.Parse(msURL)
	if err != nil {
		return "", err
	}
	db := u.Query().Get("database")
	if db == "" {
		return "", errors.New("pgloader needs the database in the source URL (?database=)")
	}
	out := &url.URL{Scheme: "mssql", User: u.User, Host: u.Host, Path: "/" + db}
	return out.String(), nil
}

func checkTSQLCount(ctx context.Context, dstURL, schemaName, table string, want int64) error {
	conn, err := pgx.Connect(ctx, dstURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schemaName, table}.Sanitize()).Scan(&n); err != nil {
		return err
	}
	if n != want {
		return fmt.Errorf("%s.%s holds %d rows, want %d", schemaName, table, n, want)
	}
	return nil
}
