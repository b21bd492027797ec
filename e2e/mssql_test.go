package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/microsoft/go-mssqldb" // the sqlserver driver, for setting up the source

	"github.com/caravan-db/caravan/internal/testenv"
)

// TestMigrateFromSQLServer runs `caravan migrate` from a real SQL Server
// (CARAVAN_TEST_MSSQL_URL, e.g. the docker-compose mssql service) into
// PostgreSQL: identity and composite keys, a heap, a foreign key, money,
// datetime2, uniqueidentifier and unicode, compared after the run.
func TestMigrateFromSQLServer(t *testing.T) {
	msURL, ms := openTSQL(t)
	ctx := context.Background()
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

// TestMigrateFromTSQLEngineCoverage migrates a database that uses what a
// T-SQL schema uses (every type the engine has with min/max/NULL/empty
// values; accents, emoji and NUL in text; case- and accent-insensitive and
// uniqueidentifier keys over many chunks; composite keys with spaces and
// reserved words; a heap of exact duplicates; identity, defaults, checks,
// unique and filtered indexes, FKs with actions, computed columns,
// comments; a 1,024-column table; two schemas), then compares every value
// of every table with what the engine holds. On Babelfish that is its
// PostgreSQL port (CARAVAN_TEST_BABELFISH_PG_URL): each stored value cast
// to the target column's type and printed by PostgreSQL, row sets compared
// whole.
func TestMigrateFromTSQLEngineCoverage(t *testing.T) {
	msURL, ms := openTSQL(t)
	ctx := context.Background()
	var version, dbName string
	if err := ms.QueryRowContext(ctx, "SELECT CAST(@@VERSION AS nvarchar(4000)), DB_NAME()").Scan(&version, &dbName); err != nil {
		t.Fatal(err)
	}
	babelfish := strings.HasPrefix(version, "Babelfish")
	enginePG := os.Getenv("CARAVAN_TEST_BABELFISH_PG_URL")
	if babelfish && enginePG == "" {
		t.Fatal("the engine is Babelfish: set CARAVAN_TEST_BABELFISH_PG_URL to its PostgreSQL port (postgres://user:pw@127.0.0.1:5433/babelfish_db) so values are compared with what it holds")
	}
	sfx := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	sch, sch2 := "cov_"+sfx, "cov2_"+sfx
	// § and ¶ stand for the two schemas: tokens no statement holds otherwise
	q := func(s string) string {
		return strings.ReplaceAll(strings.ReplaceAll(s, "§", "["+sch+"]"), "¶", "["+sch2+"]")
	}
	nums := func(n int) string {
		return fmt.Sprintf("(SELECT TOP (%d) ROW_NUMBER() OVER (ORDER BY (SELECT NULL)) AS n FROM sys.all_columns a CROSS JOIN sys.all_columns b) x", n)
	}
	stmts := []string{
		"CREATE SCHEMA §",
		"CREATE SCHEMA ¶",
		`CREATE TABLE §.Customers (Id int IDENTITY(10, 5) PRIMARY KEY, Name nvarchar(100) NOT NULL,
			Email varchar(200) COLLATE SQL_Latin1_General_CP1_CI_AS NULL, Created datetime NOT NULL DEFAULT getdate(),
			Token uniqueidentifier NOT NULL DEFAULT newid(), Tier tinyint NOT NULL DEFAULT 1, Note nvarchar(20) NOT NULL DEFAULT N'none',
			Balance money NOT NULL DEFAULT 0 CHECK (Balance >= 0), Doubled AS (Tier * 2),
			CONSTRAINT UQ_Customers_Email UNIQUE (Email))`,
		`CREATE UNIQUE INDEX UX_Customers_Note ON §.Customers (Note) WHERE Note <> N'none'`,
		`CREATE INDEX IX_Customers_Name ON §.Customers (Name)`,
		`EXEC sys.sp_addextendedproperty N'MS_Description', N'who buys', N'SCHEMA', N'` + sch + `', N'TABLE', N'Customers'`,
		`EXEC sys.sp_addextendedproperty N'MS_Description', N'full name', N'SCHEMA', N'` + sch + `', N'TABLE', N'Customers', N'COLUMN', N'Name'`,
		`INSERT INTO §.Customers (Name, Email, Tier, Note, Balance)
			SELECT N'Zoë ' + CAST(n AS nvarchar(10)), 'c' + CAST(n AS varchar(10)) + '@example.com', n % 3, CASE WHEN n % 10 = 0 THEN N'vip ' + CAST(n AS nvarchar(10)) ELSE N'none' END, CAST(n AS money) / 3
			FROM ` + nums(300),
		`CREATE TABLE §.Orders (Id int NOT NULL PRIMARY KEY, CustomerId int NULL, Placed datetime2(7) NOT NULL,
			CONSTRAINT FK_Orders_Customers FOREIGN KEY (CustomerId) REFERENCES §.Customers (Id) ON DELETE CASCADE ON UPDATE NO ACTION)`,
		`INSERT INTO §.Orders SELECT n, 10 + 5 * (n % 300), DATEADD(minute, n, CAST('2024-02-29T12:00:00.1234567' AS datetime2(7))) FROM ` + nums(2500),
		`CREATE TABLE ¶.[Order Details] ([Order Id] int NOT NULL REFERENCES §.Orders (Id) ON DELETE CASCADE, [select] int NOT NULL, [from] nvarchar(10) NOT NULL,
			[Qty Ordered] decimal(9,2) NULL, [Half Qty] AS ([Qty Ordered] / 2.0), PRIMARY KEY ([Order Id], [select], [from]))`,
		`INSERT INTO ¶.[Order Details] SELECT 1 + n % 2500, n % 3, CASE WHEN n % 2 = 0 THEN N'Ünit' ELSE N'box' END, CAST(n AS decimal(9,2)) / 7 FROM ` + nums(3000),
		`CREATE TABLE §.CiKeys (k varchar(20) COLLATE SQL_Latin1_General_CP1_CI_AS NOT NULL PRIMARY KEY, v int NOT NULL)`,
		`INSERT INTO §.CiKeys SELECT CHAR(CASE WHEN n % 2 = 0 THEN 97 ELSE 65 END + n % 26) + RIGHT('0000' + CAST(n AS varchar(10)), 5), n FROM ` + nums(15000),
		`CREATE TABLE §.AiKeys (k nvarchar(20) COLLATE Latin1_General_CI_AI NOT NULL PRIMARY KEY, v int NOT NULL)`,
		`INSERT INTO §.AiKeys SELECT SUBSTRING(N'éEñOüaÅç', 1 + n % 8, 1) + CAST(n AS nvarchar(10)), n FROM ` + nums(5000),
		`CREATE TABLE §.Guids (g uniqueidentifier NOT NULL PRIMARY KEY DEFAULT newid(), n int NOT NULL)`,
		`INSERT INTO §.Guids (n) SELECT n FROM ` + nums(5000),
		`CREATE TABLE §.Dups (a int NULL, b nvarchar(10) NULL, c varchar(5) COLLATE SQL_Latin1_General_CP1_CI_AS NULL)`,
		`INSERT INTO §.Dups SELECT CASE WHEN n % 11 = 0 THEN NULL ELSE n % 7 END, CASE WHEN n % 13 = 0 THEN NULL ELSE N'é' + CAST(n % 3 AS nvarchar(5)) END,
			CASE n % 4 WHEN 0 THEN 'a' WHEN 1 THEN 'A' WHEN 2 THEN '' ELSE NULL END FROM ` + nums(2000),
		`CREATE TABLE §.Texts (id int PRIMARY KEY, c char(10) COLLATE Latin1_General_CI_AS NULL, nc nchar(10) NULL,
			vc varchar(50) COLLATE SQL_Latin1_General_CP1_CI_AS NULL, nv nvarchar(50) NULL, vmax varchar(max) NULL, nvmax nvarchar(max) NULL,
			t text NULL, nt ntext NULL)`,
		`INSERT INTO §.Texts VALUES
			(1, 'Ñandú', N'Ñandú😀', 'Ñandú àéîõü', N'😀𝄞 € Ñ', REPLICATE(CAST('x' AS varchar(max)), 9000), N'tab' + NCHAR(9) + N'nl' + NCHAR(10) + N'bs\', 'légacy', N'légacy 😀'),
			(2, '', N'', '', N'', '', N'', '', N''),
			(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
			(4, 'a', N'a' + NCHAR(0) + N'b', 'x', N'a' + NCHAR(0) + N'b', 'y', N'z', 'q', N'r')`,
		`CREATE TABLE §.AllTypes (id int PRIMARY KEY, c_bit bit, c_tinyint tinyint, c_smallint smallint, c_int int, c_bigint bigint,
			c_dec decimal(38,0), c_dec38 decimal(38,38), c_num numeric(19,4), c_money money, c_smallmoney smallmoney, c_float float, c_real real,
			c_date date, c_time time(7), c_datetime datetime, c_datetime2 datetime2(7), c_smalldatetime smalldatetime, c_dto datetimeoffset(7),
			c_binary binary(4), c_varbinary varbinary(max), c_image image, c_guid uniqueidentifier, c_xml xml)`,
		`INSERT INTO §.AllTypes VALUES
			(1, 0, 0, -32768, -2147483648, -9223372036854775808, -99999999999999999999999999999999999999, -0.99999999999999999999999999999999999999,
			 -123.45, -922337203685477.5808, -214748.3648, -1.79E+308, -3.40E+38, '0001-01-01', '00:00:00', '1753-01-01T00:00:00',
			 '0001-01-01T00:00:00', '1900-01-01T00:00:00', '0001-01-01T00:00:00+00:00', 0x00000000, 0x, 0x, '00000000-0000-0000-0000-000000000000', N'<a/>'),
			(2, 1, 255, 32767, 2147483647, 9223372036854775807, 99999999999999999999999999999999999999, 0.99999999999999999999999999999999999999,
			 12.34, 922337203685477.5807, 214748.3647, 1.79E+308, 3.40E+38, '9999-12-31', '23:59:59.999999', '9999-12-31T23:59:59.997',
			 '9999-12-31T23:59:59.999999', '2079-06-06T23:59:00', '9999-12-31T23:59:59.999999+00:00', 0xFFFFFFFF, 0xDEADBEEF, 0x47494638,
			 '6F9619FF-8B86-D011-B42D-00C04FC964FF', N'<a x="1">é</a>'),
			(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
			(4, 1, 1, 1, 1, 1, 1, 0.5, 0.0001, 0.0001, -0.0001, 0.1, 0.1, '2020-02-29', '12:34:56.123456', '2020-01-01T00:00:00.003',
			 '2020-01-01T23:59:59.999999', '2020-01-01T10:00:00', '2020-01-01T10:00:00.5+05:30', 0x01, 0x02, 0x03, NEWID(), N'<r><c/></r>')`,
		tsqlWideTable(1024),
		`INSERT INTO §.Wide (id) VALUES (1), (2), (3)`,
		`UPDATE §.Wide SET c5 = NULL, c6 = N'' WHERE id = 2`,
	}
	t.Cleanup(func() {
		for _, stmt := range []string{"DROP TABLE ¶.[Order Details]", "DROP TABLE §.Orders", "DROP TABLE §.Customers", "DROP TABLE §.CiKeys",
			"DROP TABLE §.AiKeys", "DROP TABLE §.Guids", "DROP TABLE §.Dups", "DROP TABLE §.Texts", "DROP TABLE §.AllTypes", "DROP TABLE §.Wide",
			"DROP SCHEMA ¶", "DROP SCHEMA §"} {
			_, _ = ms.ExecContext(ctx, q(stmt))
		}
	})
	for _, stmt := range stmts {
		if _, err := ms.ExecContext(ctx, q(stmt)); err != nil {
			t.Fatalf("%s: %v", tail(q(stmt), 2000), err)
		}
	}

	dst := testenv.Database(t, "dst")
	res := caravan(t, 10*time.Minute, "migrate", "--source-url", msURL, "--target-url", dst,
		"--include", sch+".*", "--include", sch2+".*", "--chunk-rows", "1000")
	if res.code != 0 {
		t.Fatalf("migrate exited %d\n%s\n%s", res.code, res.stdout, tail(res.stderr, 8000))
	}
	if n := query[int64](t, dst, `SELECT count(*) FROM caravan.verdicts WHERE NOT ok`); n != 0 {
		t.Errorf("%d failed verdicts", n)
	}
	// the number of chunks follows from the row count and --chunk-rows
	for table, want := range map[string]int64{sch + ".cikeys": 15, sch + ".aikeys": 5, sch + ".guids": 5, sch2 + ".order details": 3, sch + ".dups": 1} {
		if got := query[int64](t, dst, `SELECT coalesce(max(chunks), -1) FROM caravan.tables WHERE lower(source_name) = $1`, table); got != want {
			t.Errorf("%s: %d chunks, want %d", table, got, want)
		}
	}
	// schema objects
	checks := map[string]string{
		"FK with ON DELETE CASCADE": `SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND confdeltype = 'c' AND connamespace = '` + sch + `'::regnamespace`,
		"check constraint":          `SELECT count(*) FROM pg_constraint WHERE contype = 'c' AND conrelid = '"` + sch + `".customers'::regclass`,
		"unique constraint":         `SELECT count(*) FROM pg_constraint WHERE contype = 'u' AND conrelid = '"` + sch + `".customers'::regclass`,
		"identity":                  `SELECT count(*) FROM pg_attribute WHERE attrelid = '"` + sch + `".customers'::regclass AND attname = 'id' AND attidentity <> ''`,
		"table comment":             `SELECT count(*) FROM pg_description WHERE objoid = '"` + sch + `".customers'::regclass AND objsubid = 0 AND description = 'who buys'`,
		"column comment":            `SELECT count(*) FROM pg_description WHERE objoid = '"` + sch + `".customers'::regclass AND objsubid > 0 AND description = 'full name'`,
		"literal default":           `SELECT count(*) FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum WHERE d.adrelid = '"` + sch + `".customers'::regclass AND a.attname = 'note' AND pg_get_expr(d.adbin, d.adrelid) LIKE '''none''%'`,
		"newid default":             `SELECT count(*) FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum WHERE d.adrelid = '"` + sch + `".customers'::regclass AND a.attname = 'token' AND pg_get_expr(d.adbin, d.adrelid) = 'gen_random_uuid()'`,
		"getdate default":           `SELECT count(*) FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum WHERE d.adrelid = '"` + sch + `".customers'::regclass AND a.attname = 'created'`,
		"index":                     `SELECT count(*) FROM pg_indexes WHERE schemaname = '` + sch + `' AND tablename = 'customers' AND indexdef LIKE '%(name)%'`,
		"1,024 columns":             `SELECT CASE WHEN count(*) = 1024 THEN 1 ELSE 0 END FROM pg_attribute WHERE attrelid = '"` + sch + `".wide'::regclass AND attnum > 0`,
	}
	for what, sqlText := range checks {
		if n := query[int64](t, dst, sqlText); n < 1 {
			t.Errorf("%s: not on the target (%s)", what, sqlText)
		}
	}
	if enginePG == "" {
		t.Log("not Babelfish: values compared by the validator's digests and counts only")
		return
	}
	for _, tb := range [][2]string{{sch, "customers"}, {sch, "orders"}, {sch2, "order details"}, {sch, "cikeys"}, {sch, "aikeys"},
		{sch, "guids"}, {sch, "dups"}, {sch, "texts"}, {sch, "alltypes"}, {sch, "wide"}} {
		compareWithBabelfish(t, enginePG, dbName, dst, tb[0], tb[1])
	}
}

// tsqlWideTable is a table of n columns: an int key and columns alternating
// int and nvarchar, each with a literal default.
func tsqlWideTable(n int) string {
	cols := []string{"id int NOT NULL PRIMARY KEY"}
	for i := 1; i < n; i++ {
		if i%3 == 0 {
			cols = append(cols, fmt.Sprintf("c%d nvarchar(8) NULL DEFAULT N'v%d'", i, i))
		} else {
			cols = append(cols, fmt.Sprintf("c%d int NULL DEFAULT %d", i, i))
		}
	}
	return "CREATE TABLE §.Wide (" + strings.Join(cols, ", ") + ")"
}

// compareWithBabelfish compares every row of a target table with the
// engine's own storage, read through Babelfish's PostgreSQL port: each
// column cast to the target column's type and printed by PostgreSQL. A
// T-SQL database d's schema s is the PostgreSQL schema d_s there, and
// Babelfish keeps names in lower case, as caravan's default name policy.
func compareWithBabelfish(t *testing.T, enginePG, dbName, dst, sch, table string) {
	t.Helper()
	ctx := context.Background()
	tgt, err := pgx.Connect(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close(ctx)
	rows, err := tgt.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
		WHERE a.attrelid = (quote_ident($1) || '.' || quote_ident($2))::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, sch, table)
	if err != nil {
		t.Fatal(err)
	}
	var names, types []string
	for rows.Next() {
		var n, ty string
		if err := rows.Scan(&n, &ty); err != nil {
			t.Fatal(err)
		}
		names, types = append(names, n), append(types, ty)
	}
	rows.Close()
	if len(names) == 0 {
		t.Fatalf("%s.%s: no such table on the target", sch, table)
	}
	var tgtSel, engSel []string
	for i, n := range names {
		id := pgx.Identifier{n}.Sanitize()
		tgtSel = append(tgtSel, id+"::text")
		engSel = append(engSel, engineCast(id, types[i])+"::text")
	}
	want := rowSet(t, ctx, enginePG, "SET TimeZone = 'UTC'", "SELECT "+strings.Join(engSel, ", ")+" FROM "+pgx.Identifier{strings.ToLower(dbName) + "_" + sch, table}.Sanitize())
	got := rowSet(t, ctx, dst, "SET TimeZone = 'UTC'", "SELECT "+strings.Join(tgtSel, ", ")+" FROM "+pgx.Identifier{sch, table}.Sanitize())
	if len(got) != len(want) {
		t.Errorf("%s.%s: target holds %d rows, the engine %d", sch, table, len(got), len(want))
		return
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%s.%s: first differing row (sorted):\n target %s\n engine %s", sch, table, tail(got[i], 600), tail(want[i], 600))
			return
		}
	}
}

// engineCast turns a Babelfish column into the target column's type: via
// text where Babelfish's own types have no cast to PostgreSQL's (its
// uniqueidentifier prints upper case, which uuid input reads).
func engineCast(id, targetType string) string {
	switch {
	case targetType == "bytea":
		return "(" + id + ")::sys.varbinary::bytea" // binary and image have no cast of their own
	case targetType == "boolean":
		return "((" + id + ")::int <> 0)"
	}
	return "((" + id + ")::text)::" + targetType
}

func rowSet(t *testing.T, ctx context.Context, url, setup, sqlText string) []string {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, setup); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, sqlText, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatalf("%s: %v", tail(sqlText, 500), err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals := rows.RawValues()
		parts := make([]string, len(vals))
		for i, v := range vals {
			if v == nil {
				parts[i] = `\N`
			} else {
				parts[i] = strconv.Quote(string(v))
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", tail(sqlText, 500), err)
	}
	sort.Strings(out)
	return out
}

// openTSQL is the T-SQL engine the SQL Server tests migrate from
// (CARAVAN_TEST_MSSQL_URL: SQL Server, e.g. the docker-compose mssql
// service, or Babelfish, see docs/TYPES.md), closed after the test's own
// cleanups (they run last-in first-out); the test is skipped without one.
func openTSQL(t *testing.T) (string, *sql.DB) {
	t.Helper()
	msURL := os.Getenv("CARAVAN_TEST_MSSQL_URL")
	if msURL == "" {
		t.Skip("CARAVAN_TEST_MSSQL_URL not set: no T-SQL engine to migrate from (SQL Server: docker compose up -d mssql, then CARAVAN_TEST_MSSQL_URL=sqlserver://sa:<password>@localhost:1433?database=master; Babelfish: see docs/TYPES.md)")
	}
	ms, err := sql.Open("sqlserver", msURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	return msURL, ms
}
