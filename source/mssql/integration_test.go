package mssql

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
	"github.com/caravan-db/caravan/source"
)

// The integration suite needs a real SQL Server (CARAVAN_TEST_MSSQL_URL, a
// sqlserver:// URL of a login that may create databases, e.g.
// sqlserver://sa:Passw0rd!@localhost:1433 with docker compose up mssql)
// and a PostgreSQL target (CARAVAN_TEST_PG_URL). It creates a database with
// every type and edge value, discovers, plans and reads it, COPYs the rows
// into PostgreSQL, and compares every value with the canonical text SQL
// Server's value must have, and the digests of both sides.

type itEnv struct {
	ctx    context.Context
	admin  *sql.DB // the test database, as the test's own connection
	src    *Source
	pg     *pgxpool.Pool
	dbName string
	pgSch  string
	d      dialect // the engine under test
}

func setupIntegration(t *testing.T) *itEnv {
	msURL := os.Getenv("CARAVAN_TEST_MSSQL_URL")
	if msURL == "" {
		t.Skip("CARAVAN_TEST_MSSQL_URL not set: SQL Server integration tests skipped (docker compose up -d mssql, then CARAVAN_TEST_MSSQL_URL=sqlserver://sa:<password>@localhost:1433)")
	}
	pgURL := os.Getenv("CARAVAN_TEST_PG_URL")
	if pgURL == "" {
		t.Skip("CARAVAN_TEST_PG_URL not set: the SQL Server integration tests need a PostgreSQL target")
	}
	u, err := url.Parse(msURL)
	if err != nil || u.Scheme != "sqlserver" {
		t.Skip("CARAVAN_TEST_MSSQL_URL must be a sqlserver:// URL for the integration tests")
	}
	ctx := t.Context()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	env := &itEnv{ctx: ctx, dbName: "caravan_it_" + hex.EncodeToString(rnd[:]), pgSch: "mssql_it_" + hex.EncodeToString(rnd[:])}

	master, err := sql.Open("sqlserver", msURL)
	if err != nil {
		t.Fatal(redactURL(err.Error()))
	}
	t.Cleanup(func() { master.Close() })
	if env.d, err = detectDialect(ctx, master); err != nil {
		t.Fatal(err)
	}
	t.Logf("engine: %s", env.d)
	mustExec(t, master, "CREATE DATABASE "+quoteIdent(env.dbName))
	t.Cleanup(func() {
		_, _ = master.ExecContext(context.Background(), "ALTER DATABASE "+quoteIdent(env.dbName)+" SET SINGLE_USER WITH ROLLBACK IMMEDIATE")
		_, _ = master.ExecContext(context.Background(), "DROP DATABASE "+quoteIdent(env.dbName))
	})
	// SNAPSHOT isolation where the engine lets a database turn it on;
	// Babelfish refuses every ALTER DATABASE ... SET (its reads are
	// PostgreSQL MVCC snapshots anyway)
	if _, err := master.ExecContext(ctx, "ALTER DATABASE "+quoteIdent(env.dbName)+" SET ALLOW_SNAPSHOT_ISOLATION ON"); err != nil {
		t.Logf("ALLOW_SNAPSHOT_ISOLATION not set (%v): reading without SNAPSHOT isolation", err)
	}

	q := u.Query()
	q.Set("database", env.dbName)
	u.RawQuery = q.Encode()
	dbURL := u.String()
	env.admin, err = sql.Open("sqlserver", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.admin.Close() })
	for _, stmt := range seedFor(env.d) {
		mustExec(t, env.admin, stmt)
	}

	env.src, err = Open(ctx, dbURL, Options{NUL: PolicyStrip, Surrogates: PolicyReplace, PageRows: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.src.Close() })

	env.pg, err = pgutil.Pool(ctx, pgURL, "caravan-mssql-it", 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.pg.Close)
	if _, err := env.pg.Exec(ctx, "CREATE SCHEMA "+schema.Quote(env.pgSch)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = env.pg.Exec(context.Background(), "DROP SCHEMA "+schema.Quote(env.pgSch)+" CASCADE") })
	return env
}

func mustExec(t *testing.T, db *sql.DB, stmt string) {
	t.Helper()
	if _, err := db.ExecContext(t.Context(), stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

// nines38 is the largest decimal(38,0) digit string.
var nines38 = strings.Repeat("9", 38)

// seedFor is the seed for the engine under test. Babelfish has no
// hierarchyid, geography or geometry (those columns and their values are
// cut out), cannot store an unpaired surrogate (text is UTF-8 in
// PostgreSQL): U+FFFD stands in, which reads back as the same text.
func seedFor(d dialect) []string {
	stmts := append([]string(nil), seedTemplates...)
	stmts[2] = fmt.Sprintf(stmts[2], nines38)
	if !d.Babelfish {
		return stmts
	}
	cut := func(i int, pairs ...string) {
		for j := 0; j < len(pairs); j += 2 {
			if !strings.Contains(stmts[i], pairs[j]) {
				panic("seed: " + pairs[j])
			}
			stmts[i] = strings.Replace(stmts[i], pairs[j], pairs[j+1], 1)
		}
	}
	// its alias types are PostgreSQL domains, whose NOT NULL a nullable
	// column cannot lift
	cut(0, " NOT NULL", "")
	cut(1, " c_hier hierarchyid, c_geog geography, c_geom geometry,", "")
	cut(2, " c_hier, c_geog, c_geom,", "",
		"hierarchyid::GetRoot(),\n  geography::Point(47.65, -122.35, 4326), geometry::STGeomFromText('LINESTRING (0 0, 1 1)', 0), 'A-1'", "'A-1'",
		"\n  CAST('/1/2/' AS hierarchyid), NULL, NULL, 'Z-9'", " 'Z-9'",
		"NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),", "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),",
		" CAST('/1/2.5/-3/' AS hierarchyid),\n  NULL, NULL, 'B')", " 'B')",
		"N'x' + NCHAR(55296)", "N'x' + NCHAR(65533)")
	return stmts
}

// expectedFor is expectedAllTypes for the engine under test: on Babelfish
// without the columns it lacks, and with what it holds where it holds
// something else than SQL Server would (each reason given).
func expectedFor(d dialect) map[string][4]string {
	out := map[string][4]string{}
	for k, v := range expectedAllTypes {
		out[k] = v
	}
	if !d.Babelfish {
		return out
	}
	delete(out, "c_hier")
	delete(out, "c_geog")
	delete(out, "c_geom")
	set := func(col string, row int, v string) { w := out[col]; w[row-1] = v; out[col] = w }
	// time(7) is PostgreSQL's time(6): 23:59:59.9999999 rounds to 24:00:00
	set("c_time", 2, "24:00:00")
	// NCHAR(0) is NULL on Babelfish (PostgreSQL text holds no NUL), and so
	// is the concatenation
	set("c_nvarchar", 4, `\N`)
	// a datetime2(7) inside a sql_variant keeps microseconds there too
	set("c_variant", 4, "2020-01-01 10:00:00.123457")
	return out
}

var seedTemplates = []string{
	`CREATE TYPE dbo.Code FROM varchar(12) NOT NULL`,
	`CREATE TABLE dbo.AllTypes (
  id int NOT NULL PRIMARY KEY,
  c_bit bit, c_tinyint tinyint, c_smallint smallint, c_int int, c_bigint bigint,
  c_dec decimal(38,0), c_dec38 decimal(38,38), c_num numeric(19,4), c_money money, c_smallmoney smallmoney,
  c_float float, c_real real,
  c_date date, c_time time(7), c_datetime datetime, c_datetime2 datetime2(7), c_smalldatetime smalldatetime, c_dto datetimeoffset(7),
  c_char char(5) COLLATE Latin1_General_CI_AS, c_varchar varchar(20) COLLATE Latin1_General_CI_AS,
  c_varchar_max varchar(max) COLLATE Latin1_General_CI_AS, c_nchar nchar(5) COLLATE Latin1_General_CI_AS,
  c_nvarchar nvarchar(50) COLLATE Latin1_General_CI_AS, c_nvarchar_max nvarchar(max) COLLATE Latin1_General_CI_AS,
  c_text text COLLATE Latin1_General_CI_AS, c_ntext ntext COLLATE Latin1_General_CI_AS,
  c_binary binary(4), c_varbinary varbinary(max), c_image image,
  c_guid uniqueidentifier, c_xml xml, c_variant sql_variant, c_hier hierarchyid, c_geog geography, c_geom geometry,
  c_code dbo.Code NULL,
  c_rowver rowversion,
  c_computed AS (CAST(c_int AS bigint) * 2)
)`,
	`INSERT dbo.AllTypes (id, c_bit, c_tinyint, c_smallint, c_int, c_bigint, c_dec, c_dec38, c_num, c_money, c_smallmoney, c_float, c_real,
  c_date, c_time, c_datetime, c_datetime2, c_smalldatetime, c_dto, c_char, c_varchar, c_varchar_max, c_nchar, c_nvarchar, c_nvarchar_max,
  c_text, c_ntext, c_binary, c_varbinary, c_image, c_guid, c_xml, c_variant, c_hier, c_geog, c_geom, c_code) VALUES
 (1, 0, 0, -32768, -2147483648, -9223372036854775808, -%[1]s, -0.%[1]s,
  -123.45, -922337203685477.5808, -214748.3648, -1.79E+308, -3.40E+38,
  '0001-01-01', '00:00:00', '1753-01-01T00:00:00', '0001-01-01T00:00:00', '1900-01-01T00:00:00', '0001-01-01T00:00:00+00:00',
  'a', '', '', N'a', N'', N'',
  '', N'', 0x00000000, 0x, 0x, '00000000-0000-0000-0000-000000000000', N'<a/>', CAST(42 AS int), hierarchyid::GetRoot(),
  geography::Point(47.65, -122.35, 4326), geometry::STGeomFromText('LINESTRING (0 0, 1 1)', 0), 'A-1'),
 (2, 1, 255, 32767, 2147483647, 9223372036854775807, %[1]s, 0.%[1]s,
  12.34, 922337203685477.5807, 214748.3647, 1.79E+308, 3.40E+38,
  '9999-12-31', '23:59:59.9999999', '9999-12-31T23:59:59.997', '9999-12-31T23:59:59.9999999', '2079-06-06T23:59:00', '9999-12-31T23:59:59.9999999+00:00',
  'zzzzz', N'héllo', REPLICATE(CAST('x' AS varchar(max)), 9000), N'😀', N'😀𝄞 €', N'tab' + NCHAR(9) + N'nl' + NCHAR(10) + N'bs\',
  'legacy', N'légacy 😀', 0xFFFFFFFF, 0xDEADBEEF, 0x47494638, '6F9619FF-8B86-D011-B42D-00C04FC964FF', N'<a x="1">é</a>', CAST(N'abc' AS nvarchar(10)),
  CAST('/1/2/' AS hierarchyid), NULL, NULL, 'Z-9'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, 1, 1, 1, 1, 1, 1, 0.5, 0.0001, 0.0001, -0.0001, 0.1, 0.1,
  '2020-02-29', '12:34:56.1234565', '2020-01-01T00:00:00.003', '2020-01-01T23:59:59.9999995', '2020-01-01T10:00:00', '2020-01-01T10:00:00.5+05:30',
  'b', 'x', 'y', N'z', N'a' + NCHAR(0) + N'b', N'x' + NCHAR(55296),
  'c', N'd', 0x01, 0x02, 0x03, NEWID(), N'<r><c/></r>', CAST('2020-01-01T10:00:00.1234567' AS datetime2(7)), CAST('/1/2.5/-3/' AS hierarchyid),
  NULL, NULL, 'B')`,
	`EXEC sys.sp_addextendedproperty N'MS_Description', N'every SQL Server type', N'SCHEMA', N'dbo', N'TABLE', N'AllTypes'`,
	`CREATE TABLE dbo.Keys (
  k1 varchar(10) COLLATE Latin1_General_CI_AS NOT NULL, k2 uniqueidentifier NOT NULL, v int NOT NULL,
  CONSTRAINT PK_Keys PRIMARY KEY (k1, k2))`,
	`INSERT dbo.Keys (k1, k2, v) SELECT x.k1, CAST(CONVERT(binary(16), 16 * n.i + 15 - n.i) AS uniqueidentifier), 100 * x.o + n.i
  FROM (VALUES ('a', 1), ('B', 2), ('c', 3), ('D ', 4), ('é', 5), ('E', 6)) AS x(k1, o)
  CROSS JOIN (VALUES (0), (1), (2), (3), (4), (5), (6), (7)) AS n(i)`,
	`CREATE TABLE dbo.Heap (a int NULL, b nvarchar(10) COLLATE Latin1_General_CI_AS NULL)`,
	`INSERT dbo.Heap (a, b) SELECT v, CAST(v AS nvarchar(10)) FROM dbo.Keys`,
	`CREATE TABLE dbo.Ident (
  id int IDENTITY(100, 5) PRIMARY KEY, v nvarchar(10) NOT NULL DEFAULT N'x', created datetime2 NOT NULL DEFAULT sysdatetime(),
  amount decimal(10,2) NULL CHECK (amount >= 0), keyref varchar(10) COLLATE Latin1_General_CI_AS NULL)`,
	`INSERT dbo.Ident (v) VALUES (N'a'), (N'b'), (N'c')`,
}

// expectedAllTypes is the canonical text of every AllTypes value ("\N" is
// NULL; "*" is not compared: NEWID() and rowversion values).
var expectedAllTypes = map[string][4]string{
	"c_bit":           {"f", "t", `\N`, "t"},
	"c_tinyint":       {"0", "255", `\N`, "1"},
	"c_smallint":      {"-32768", "32767", `\N`, "1"},
	"c_int":           {"-2147483648", "2147483647", `\N`, "1"},
	"c_bigint":        {"-9223372036854775808", "9223372036854775807", `\N`, "1"},
	"c_dec":           {"-" + nines38, nines38, `\N`, "1"},
	"c_dec38":         {"-0." + nines38, "0." + nines38, `\N`, "0.5" + strings.Repeat("0", 37)},
	"c_num":           {"-123.4500", "12.3400", `\N`, "0.0001"},
	"c_money":         {"-922337203685477.5808", "922337203685477.5807", `\N`, "0.0001"},
	"c_smallmoney":    {"-214748.3648", "214748.3647", `\N`, "-0.0001"},
	"c_float":         {"-1.79e+308", "1.79e+308", `\N`, "0.1"},
	"c_real":          {"-3.4e+38", "3.4e+38", `\N`, "0.1"},
	"c_date":          {"0001-01-01", "9999-12-31", `\N`, "2020-02-29"},
	"c_time":          {"00:00:00", "23:59:59.999999", `\N`, "12:34:56.123456"},
	"c_datetime":      {"1753-01-01 00:00:00", "9999-12-31 23:59:59.997", `\N`, "2020-01-01 00:00:00.003"},
	"c_datetime2":     {"0001-01-01 00:00:00", "9999-12-31 23:59:59.999999", `\N`, "2020-01-02 00:00:00"},
	"c_smalldatetime": {"1900-01-01 00:00:00", "2079-06-06 23:59:00", `\N`, "2020-01-01 10:00:00"},
	"c_dto":           {"0001-01-01 00:00:00+00", "9999-12-31 23:59:59.999999+00", `\N`, "2020-01-01 04:30:00.5+00"},
	"c_char":          {"a" + strings.Repeat(" ", 4), "zzzzz", `\N`, "b" + strings.Repeat(" ", 4)},
	"c_varchar":       {"", "héllo", `\N`, "x"},
	"c_varchar_max":   {"", strings.Repeat("x", 9000), `\N`, "y"},
	"c_nchar":         {"a" + strings.Repeat(" ", 4), "😀" + strings.Repeat(" ", 4), `\N`, "z" + strings.Repeat(" ", 4)},
	"c_nvarchar":      {"", "😀𝄞 €", `\N`, "ab"},
	"c_nvarchar_max":  {"", "tab\tnl\nbs\\", `\N`, "x\uFFFD"},
	"c_text":          {"", "legacy", `\N`, "c"},
	"c_ntext":         {"", "légacy 😀", `\N`, "d"},
	"c_binary":        {`\x00000000`, `\xffffffff`, `\N`, `\x01000000`},
	"c_varbinary":     {`\x`, `\xdeadbeef`, `\N`, `\x02`},
	"c_image":         {`\x`, `\x47494638`, `\N`, `\x03`},
	"c_guid":          {"00000000-0000-0000-0000-000000000000", "6f9619ff-8b86-d011-b42d-00c04fc964ff", `\N`, "*"},
	"c_xml":           {"<a/>", `<a x="1">é</a>`, `\N`, "<r><c/></r>"},
	"c_variant":       {"42", "abc", `\N`, "2020-01-01 10:00:00.1234567"},
	"c_hier":          {"/", "/1/2/", `\N`, "/1/2.5/-3/"},
	"c_geog":          {"POINT (-122.35 47.65)", `\N`, `\N`, `\N`},
	"c_geom":          {"LINESTRING (0 0, 1 1)", `\N`, `\N`, `\N`},
	"c_code":          {"A-1", "Z-9", `\N`, "B"},
	"c_rowver":        {"*", "*", "*", "*"},
	"c_computed":      {"-4294967296", "4294967294", `\N`, "2"},
}

func TestIntegrationMigrate(t *testing.T) {
	env := setupIntegration(t)
	ctx := env.ctx
	db := env.discover(t, schema.Filter{})
	for _, w := range db.Warnings {
		t.Log("warning:", w)
	}
	snap, err := env.src.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.ID != snapIsolation && !env.d.Babelfish {
		t.Fatalf("snapshot %+v", snap)
	}
	defer snap.Release(ctx)

	all := tableNamed(db, "dbo", "AllTypes")
	if all == nil || all.Comment != "every SQL Server type" {
		t.Fatalf("AllTypes: %+v", all)
	}
	ident := tableNamed(db, "dbo", "Ident")
	if c := ident.Column("id"); c.Identity == nil || c.Identity.Start != 100 || c.Identity.Increment != 5 {
		t.Fatalf("identity: %+v", c.Identity)
	}
	if c := ident.Column("v"); c.Default != "'x'" {
		t.Fatalf("default: %q", c.Default)
	}
	if len(ident.Checks) != 1 {
		t.Fatalf("checks: %+v", ident.Checks)
	}

	for _, tb := range db.Tables {
		t.Run(tb.Source.Name, func(t *testing.T) {
			migrateTable(t, env, tb, snap.ID)
		})
	}

	// every value of AllTypes, as PostgreSQL now holds it
	expected := expectedFor(env.d)
	cols := make([]string, 0, len(expected))
	for c := range expected {
		cols = append(cols, c)
	}
	sort.Strings(cols)
	for _, c := range cols {
		want := expected[c]
		rows, err := env.pg.Query(ctx, fmt.Sprintf("SELECT %s IS NULL, concat(%s) FROM %s ORDER BY id", schema.Quote(c), schema.Quote(c), schema.QuoteName(all.Target)))
		if err != nil {
			t.Fatal(err)
		}
		i := 0
		for rows.Next() {
			var null bool
			var got string
			if err := rows.Scan(&null, &got); err != nil {
				t.Fatal(err)
			}
			if null {
				got = `\N`
			}
			if want[i] != "*" && got != want[i] {
				t.Errorf("%s row %d: PostgreSQL holds %q, want %q", c, i+1, got, want[i])
			}
			i++
		}
		rows.Close()
	}
}

// tableNamed finds a table whatever case the catalog reports its name in
// (Babelfish's sys.tables gives names in lower case).
func tableNamed(db *schema.Database, sch, name string) *schema.Table {
	for _, t := range db.Tables {
		if strings.EqualFold(t.Source.Schema, sch) && strings.EqualFold(t.Source.Name, name) {
			return t
		}
	}
	return nil
}

// migrateTable creates, plans, reads and loads one table, then compares
// row counts and digests of both sides.
func migrateTable(t *testing.T, env *itEnv, tb *schema.Table, snapshot string) {
	ctx := env.ctx
	create, err := (&schema.Database{Tables: []*schema.Table{tb}}).CreateTable(tb, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.pg.Exec(ctx, create); err != nil {
		t.Fatalf("%s: %v", create, err)
	}
	chunks, err := env.src.Plan(ctx, tb, snapshot, 7)
	if err != nil {
		t.Fatal(err)
	}
	// small tables plan as one chunk; split keyed ones further with
	// bounds SQL Server picks, to exercise range reads
	if keys, ok, _ := tableKeys(tb); ok && len(chunks) == 1 {
		chunks = splitEvery(t, env, tb, keys, 7)
	}
	var data bytes.Buffer
	var digest proto.Digest
	var scratch []byte
	var fields []proto.Field
	loadCols := tb.LoadColumns()
	for i, ch := range chunks {
		task := taskFor(tb, loadCols, ch, snapshot, i)
		err := env.src.Read(ctx, task, func(line []byte) error {
			fields, err = proto.SplitRow(fields[:0], line)
			if err != nil {
				return err
			}
			var h uint64
			h, scratch = proto.RowHash(fields, scratch)
			digest.Add(h)
			data.Write(line)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var srcCount int64
	if err := env.admin.QueryRowContext(ctx, "SELECT COUNT_BIG(*) FROM "+tableRef("", tb.Source)).Scan(&srcCount); err != nil {
		t.Fatal(err)
	}
	if digest.Rows != srcCount {
		t.Fatalf("read %d rows over %d chunks, SQL Server holds %d", digest.Rows, len(chunks), srcCount)
	}
	targetCols := make([]string, len(loadCols))
	for i, c := range loadCols {
		targetCols[i] = schema.Quote(c.TargetName)
	}
	conn, err := env.pg.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	copySQL := "COPY " + schema.QuoteName(tb.Target) + " (" + strings.Join(targetCols, ", ") + ") FROM STDIN"
	if _, err := conn.Conn().PgConn().CopyFrom(ctx, &data, copySQL); err != nil {
		t.Fatalf("%s: %v", copySQL, err)
	}
	// the validator's digest: PostgreSQL's output of every target value
	var sel []string
	for _, c := range targetCols {
		sel = append(sel, c+" IS NULL", "concat("+c+")")
	}
	rows, err := env.pg.Query(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM "+schema.QuoteName(tb.Target))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var target proto.Digest
	for rows.Next() {
		vals := make([]any, len(sel))
		nulls := make([]bool, len(targetCols))
		texts := make([]string, len(targetCols))
		for i := range targetCols {
			vals[2*i], vals[2*i+1] = &nulls[i], &texts[i]
		}
		if err := rows.Scan(vals...); err != nil {
			t.Fatal(err)
		}
		fields = fields[:0]
		for i := range targetCols {
			fields = append(fields, proto.Field{Null: nulls[i], Value: []byte(texts[i])})
		}
		var h uint64
		h, scratch = proto.RowHash(fields, scratch)
		target.Add(h)
	}
	if target != digest {
		t.Fatalf("digest: source %s (%d rows), target %s (%d rows)", digest, digest.Rows, target, target.Rows)
	}
}

func taskFor(tb *schema.Table, cols []*schema.Column, ch source.Chunk, snapshot string, n int) *proto.ChunkTask {
	task := &proto.ChunkTask{
		V: proto.Version, Run: "it", Table: tb.ID(), Chunk: n,
		Source: proto.TableRef{Schema: tb.Source.Schema, Name: tb.Source.Name},
		Target: proto.TableRef{Schema: tb.Target.Schema, Name: tb.Target.Name},
		Range:  ch.Range, Lo: ch.Lo, Hi: ch.Hi, Snapshot: snapshot,
	}
	for _, c := range cols {
		task.Cols = append(task.Cols, c.Name)
		task.Types = append(task.Types, c.SourceType)
		task.TargetCols = append(task.TargetCols, c.TargetName)
	}
	if keys, _ := tb.KeyColumns(); len(keys) > 0 {
		for _, k := range keys {
			task.Key = append(task.Key, k.Name)
			task.KeyTypes = append(task.KeyTypes, k.SourceType)
		}
	}
	return task
}

// splitEvery makes chunks whose bounds are every n-th key in SQL Server's
// order, read back through keyText as Plan's bounds are.
func splitEvery(t *testing.T, env *itEnv, tb *schema.Table, keys []keyCol, n int) []source.Chunk {
	var exprs, order []string
	for _, k := range keys {
		exprs = append(exprs, env.src.d.keyExpr(k.Ref, k.Type))
		order = append(order, k.ordered(""))
	}
	q := "SELECT " + strings.Join(exprs, ", ") + " FROM " + tableRef("", tb.Source) + " ORDER BY " + strings.Join(order, ", ")
	var bounds [][]string
	i := 0
	err := scanAll(env.ctx, env.admin, q, "keys", func(r *sql.Rows) error {
		vals := make([]any, len(keys))
		ptrs := make([]any, len(keys))
		for j := range vals {
			ptrs[j] = &vals[j]
		}
		if err := r.Scan(ptrs...); err != nil {
			return err
		}
		i++
		if i%n != 0 {
			return nil
		}
		b := make([]string, len(keys))
		for j, k := range keys {
			txt, err := keyText(k.Type, vals[j])
			if err != nil {
				return err
			}
			b[j] = txt
		}
		bounds = append(bounds, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return chunksFromBounds(bounds, int64(i))
}

// TestIntegrationDatabaseSnapshot reads through a database snapshot, when
// the server's edition and storage allow creating one.
func TestIntegrationDatabaseSnapshot(t *testing.T) {
	env := setupIntegration(t)
	env.src.opts.DatabaseSnapshot = true
	snap, err := env.src.Snapshot(env.ctx)
	if err != nil {
		t.Skipf("database snapshots not available here: %v", err)
	}
	defer func() {
		if err := snap.Release(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	db, err := env.src.Discover(env.ctx, schema.Filter{Include: []string{"dbo.Keys"}})
	if err != nil {
		t.Fatal(err)
	}
	tb := db.Tables[0]
	// writes after the snapshot are not seen
	mustExec(t, env.admin, "DELETE FROM dbo.Keys WHERE v < 300")
	chunks, err := env.src.Plan(env.ctx, tb, snap.ID, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, ch := range chunks {
		if err := env.src.Read(env.ctx, taskFor(tb, tb.LoadColumns(), ch, snap.ID, i), func([]byte) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if n != 48 {
		t.Fatalf("read %d rows from the snapshot, want 48", n)
	}
}

// TestIntegrationPermanentErrors: an error no retry mends (here a column
// the table does not have, as after a schema change under a run) fails
// the read as permanent, naming the table and the chunk.
func TestIntegrationPermanentErrors(t *testing.T) {
	env := setupIntegration(t)
	db, err := env.src.Discover(env.ctx, schema.Filter{Include: []string{"dbo.Keys"}})
	if err != nil {
		t.Fatal(err)
	}
	tb := db.Tables[0]
	task := taskFor(tb, tb.LoadColumns(), source.Chunk{Range: proto.RangeKey}, "", 3)
	task.Cols = append(task.Cols, "gone")
	task.Types = append(task.Types, "int")
	err = env.src.Read(env.ctx, task, func([]byte) error { return nil })
	if err == nil || !source.IsPermanent(err) || !strings.Contains(err.Error(), "chunk 3") || !strings.Contains(strings.ToLower(err.Error()), "keys") {
		t.Fatalf("want a permanent error naming the table and chunk, got %v", err)
	}
	t.Log(err)
}

// Read's rows come through Conn.Raw on the connection whose SNAPSHOT
// transaction database/sql began (rawRows): the driver's session must carry
// that transaction, and the parameters, into the statement.
func TestIntegrationRawRowsInTransaction(t *testing.T) {
	env := setupIntegration(t)
	if !env.src.siOn {
		t.Skip("SNAPSHOT isolation is off in the test database")
	}
	v, err := env.src.openConnView(env.ctx, snapIsolation)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	if err := v.tx.QueryRowContext(env.ctx, "SELECT CAST(@@TRANCOUNT AS bigint)").Scan(&want); err != nil {
		t.Fatal(err)
	}
	vals := make([]driver.Value, 3)
	var got []driver.Value
	err = rawRows(env.ctx, v.conn, "SELECT CAST(@@TRANCOUNT AS bigint), CAST(@p1 AS bigint), CAST(@p2 AS nvarchar(10))", "transaction count", vals, func() error {
		got = append(got, vals...)
		return nil
	}, int64(42), "Ñé")
	if cerr := v.close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if want < 1 || len(got) != 3 || got[0] != want || got[1] != int64(42) || got[2] != "Ñé" {
		t.Fatalf("rawRows in the view's transaction gave %v; the transaction's own @@TRANCOUNT is %d", got, want)
	}
}

// discover reads the test schema's model as a run would, with dbo mapped
// to the test's target schema.
func (env *itEnv) discover(t *testing.T, filter schema.Filter) *schema.Database {
	t.Helper()
	db, err := env.src.Discover(env.ctx, filter)
	if err != nil {
		t.Fatal(err)
	}
	policy := env.src.DefaultNames()
	policy.SchemaMap = map[string]string{"dbo": env.pgSch}
	if err := policy.Apply(db); err != nil {
		t.Fatal(err)
	}
	return db
}
