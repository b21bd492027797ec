package bench

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// table is one table of the dataset, described twice: as it is on the
// source, and as the DDL the raw-copy baseline pre-creates on its target.
type table struct {
	Name   string // in schema public
	Create string // CREATE TABLE without keys or indexes: they are built after the load, as caravan does
	Key    string // the primary key's column list, "" for a keyless table
	Rows   int64  // on the source
	Bytes  int64  // COPY text bytes on the source
}

func (t *table) qualified() string { return pgx.Identifier{"public", t.Name}.Sanitize() }

func (t *table) addKey() string {
	return fmt.Sprintf("ALTER TABLE %s ADD PRIMARY KEY (%s)", t.qualified(), t.Key)
}

// dataset is the shared source database.
type dataset struct {
	Name   string
	URL    string
	Tables []*table // largest first, so parallel copies start with the long ones
	Rows   int64
	Bytes  int64
	How    string // how the pgbench tables were generated
	Kept   bool   // not dropped at the end
}

// The pgbench tables as pgbench -i (PostgreSQL 15) creates them, minus the
// fillfactor storage option, which does not matter for a freshly loaded table.
func pgbenchTables() []*table {
	return []*table{
		{Name: "pgbench_accounts", Create: `CREATE TABLE pgbench_accounts (aid int NOT NULL, bid int, abalance int, filler char(84))`, Key: "aid"},
		{Name: "pgbench_branches", Create: `CREATE TABLE pgbench_branches (bid int NOT NULL, bbalance int, filler char(88))`, Key: "bid"},
		{Name: "pgbench_tellers", Create: `CREATE TABLE pgbench_tellers (tid int NOT NULL, bid int, tbalance int, filler char(84))`, Key: "tid"},
		{Name: "pgbench_history", Create: `CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22))`},
	}
}

// wideTable has one column of every common type family, values of varying
// length (escapes, multi-byte UTF-8), and NULLs in every nullable column.
func wideTable() *table {
	return &table{Name: "bench_wide", Key: "id", Create: `CREATE TABLE bench_wide (
		id bigint NOT NULL,
		n integer,
		amount numeric(18,4),
		ratio double precision,
		note text,
		code varchar(40),
		flag boolean,
		day date,
		at timestamptz,
		uid uuid,
		doc jsonb,
		blob bytea,
		tags integer[])`}
}

// wideRowsSQL fills bench_wide with rows lo..hi: deterministic (no random()),
// so every run measures the same bytes. blob holds 0 to 2 kB (1 kB on
// average) of md5 output, which no compression shrinks: bytea of that size
// is what makes a table's COPY text (hex) twice its size on disk.
func wideRowsSQL(lo, hi int) string {
	return fmt.Sprintf(`INSERT INTO bench_wide
	SELECT g,
		CASE WHEN g %% 17 = 0 THEN NULL ELSE (g::bigint * 7919) %% 1000000 - 500000 END,
		CASE WHEN g %% 19 = 0 THEN NULL ELSE round(((g::bigint * 104729) %% 100000000000) / 10000.0 - 5000000, 4) END,
		CASE WHEN g %% 13 = 0 THEN NULL ELSE sin(g) * 1e6 END,
		CASE g %% 6
			WHEN 0 THEN NULL
			WHEN 1 THEN repeat('ab', g %% 40)
			WHEN 2 THEN 'Zürich ☃ 東京 🚀 ' || g
			WHEN 3 THEN repeat(md5(g::text), 1 + g %% 8)
			WHEN 4 THEN E'tab\there\nnewline \\ back ' || g
			ELSE ''
		END,
		'C-' || to_hex((g::bigint * 2654435761) %% 4294967296),
		CASE WHEN g %% 11 = 0 THEN NULL ELSE g %% 2 = 0 END,
		date '2000-01-01' + g %% 9000,
		CASE WHEN g %% 23 = 0 THEN NULL ELSE timestamptz '2020-01-01 00:00:00+00' + g * interval '1.234567 second' END,
		md5(g::text)::uuid,
		CASE WHEN g %% 7 = 0 THEN NULL ELSE jsonb_build_object('id', g, 'name', 'item ' || g, 'tags', jsonb_build_array(g %% 3, g %% 5),
			'nested', jsonb_build_object('ok', g %% 2 = 0, 'v', g / 3.0)) END,
		CASE WHEN g %% 9 = 0 THEN NULL ELSE coalesce((SELECT decode(string_agg(md5((g::bigint * 131 + i)::text), ''), 'hex')
			FROM generate_series(1, g %% 129) i), '\x') END,
		CASE g %% 6 WHEN 0 THEN NULL WHEN 1 THEN '{}' ELSE ARRAY[g %% 10, g %% 1000, g, -g] END
	FROM generate_series(%d, %d) g`, lo, hi)
}

// compositeTable is keyed by two columns: order lines, five per order.
func compositeTable() *table {
	return &table{Name: "bench_lines", Key: "order_id, line_no", Create: `CREATE TABLE bench_lines (
		order_id integer NOT NULL,
		line_no smallint NOT NULL,
		sku text NOT NULL,
		qty integer,
		price numeric(10,2),
		shipped timestamptz,
		note text)`}
}

func compositeRowsSQL(lo, hi int) string {
	return fmt.Sprintf(`INSERT INTO bench_lines
	SELECT (g - 1) / 5 + 1, (g - 1) %% 5 + 1, 'SKU-' || lpad(((g::bigint * 48271) %% 100000)::text, 6, '0'),
		1 + g %% 12, ((g::bigint * 7919) %% 100000) / 100.0,
		CASE WHEN g %% 4 = 0 THEN NULL ELSE timestamptz '2021-06-01 00:00:00+00' + g * interval '17 second' END,
		CASE WHEN g %% 3 = 0 THEN 'gift wrap, deliver after ' || (g %% 24) || 'h' END
	FROM generate_series(%d, %d) g`, lo, hi)
}

// keylessTable has no primary key and no unique column: an append-only log.
func keylessTable() *table {
	return &table{Name: "bench_events", Create: `CREATE TABLE bench_events (
		at timestamptz NOT NULL,
		kind text,
		amount double precision,
		payload text)`}
}

func keylessRowsSQL(lo, hi int) string {
	return fmt.Sprintf(`INSERT INTO bench_events
	SELECT timestamptz '2022-01-01 00:00:00+00' + (g %% 100000) * interval '1 minute',
		(ARRAY['view', 'click', 'buy', NULL])[1 + g %% 4],
		CASE WHEN g %% 5 = 0 THEN NULL ELSE cos(g) * 1000 END,
		repeat('event payload ' || g || ' ', 1 + g %% 5)
	FROM generate_series(%d, %d) g`, lo, hi)
}

// shape is the dataset's size, from the environment (see doc.go).
type shape struct {
	Scale, Wide, Composite, Keyless int
}

func datasetShape(b *testing.B) shape {
	return shape{
		Scale:     envInt(b, "CARAVAN_BENCH_SCALE", 3),
		Wide:      envInt(b, "CARAVAN_BENCH_WIDE_ROWS", 100_000),
		Composite: envInt(b, "CARAVAN_BENCH_COMPOSITE_ROWS", 50_000),
		Keyless:   envInt(b, "CARAVAN_BENCH_KEYLESS_ROWS", 30_000),
	}
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// sourceDataset builds the source once per test binary.
func sourceDataset(b *testing.B) *dataset {
	b.Helper()
	datasetOnce.Do(func() {
		sh := datasetShape(b)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		start := time.Now()
		if name := os.Getenv("CARAVAN_BENCH_SOURCE_DB"); name != "" {
			// A dataset kept from an earlier run (CARAVAN_BENCH_KEEP_SOURCE):
			// it is measured again, not rebuilt, and not dropped.
			source = &dataset{Name: name, URL: databaseURL(b, name), Kept: true, How: "database " + name,
				Tables: append(pgbenchTables(), wideTable(), compositeTable(), keylessTable())}
			datasetErr = source.measure(ctx)
		} else {
			name, dbURL := newDatabase(ctx, b, "caravan_bench_src")
			source = &dataset{Name: name, URL: dbURL, Kept: os.Getenv("CARAVAN_BENCH_KEEP_SOURCE") != ""}
			datasetErr = source.load(ctx, sh)
		}
		name := source.Name
		if datasetErr == nil {
			b.Logf("source %s: %s; %d rows, %.1f MB of COPY text in %d tables, built in %s",
				name, source.How, source.Rows, mb(source.Bytes), len(source.Tables), time.Since(start).Round(time.Second))
		}
	})
	if datasetErr != nil {
		b.Fatalf("benchmark dataset: %v", datasetErr)
	}
	return source
}

func (d *dataset) load(ctx context.Context, sh shape) error {
	pgbench, err := exec.LookPath("pgbench")
	if err == nil {
		if err := runPgbench(ctx, pgbench, d.URL, sh.Scale); err != nil {
			return err
		}
		d.How = fmt.Sprintf("pgbench -i -s %d", sh.Scale)
	} else {
		if err := generatePgbench(ctx, d.URL, sh.Scale); err != nil {
			return err
		}
		d.How = fmt.Sprintf("pgbench not found: pgbench tables for scale %d generated with SQL", sh.Scale)
	}
	extra := []struct {
		t    *table
		rows int
		fill func(lo, hi int) string
	}{{wideTable(), sh.Wide, wideRowsSQL}, {compositeTable(), sh.Composite, compositeRowsSQL}, {keylessTable(), sh.Keyless, keylessRowsSQL}}
	for _, x := range extra {
		stmts := []string{x.t.Create}
		// Slices keep each INSERT's memory and WAL bounded.
		for lo := 1; lo <= x.rows; lo += 100_000 {
			stmts = append(stmts, x.fill(lo, min(lo+100_000-1, x.rows)))
		}
		if x.t.Key != "" {
			stmts = append(stmts, x.t.addKey())
		}
		if err := execAll(ctx, d.URL, stmts...); err != nil {
			return fmt.Errorf("%s: %w", x.t.Name, err)
		}
		d.Tables = append(d.Tables, x.t)
	}
	if err := execAll(ctx, d.URL, "VACUUM ANALYZE"); err != nil {
		return err
	}
	d.How += fmt.Sprintf(" + bench_wide (%d rows) + bench_lines (%d rows, composite key) + bench_events (%d rows, no key)",
		sh.Wide, sh.Composite, sh.Keyless)
	d.Tables = append(pgbenchTables(), d.Tables...)
	return d.measure(ctx)
}

// runPgbench initialises the pgbench tables. pgbench takes libpq options,
// not a pgx URL, so the URL is taken apart.
func runPgbench(ctx context.Context, pgbench, dbURL string, scale int) error {
	u, err := url.Parse(dbURL)
	if err != nil {
		return fmt.Errorf("pgbench: source URL: %w", err)
	}
	args := []string{"-i", "-q", "-s", strconv.Itoa(scale)}
	if h := u.Hostname(); h != "" {
		args = append(args, "-h", h)
	}
	if p := u.Port(); p != "" {
		args = append(args, "-p", p)
	}
	if u.User != nil && u.User.Username() != "" {
		args = append(args, "-U", u.User.Username())
	}
	args = append(args, strings.TrimPrefix(u.Path, "/"))
	var env []string
	if pw, ok := u.User.Password(); ok {
		env = append(env, "PGPASSWORD="+pw)
	}
	if m := u.Query().Get("sslmode"); m != "" {
		env = append(env, "PGSSLMODE="+m)
	}
	if _, _, err := runCommand(ctx, pgbench, env, args...); err != nil {
		return fmt.Errorf("pgbench -i: %w", err)
	}
	return nil
}

// generatePgbench is what pgbench -i would have produced: accounts with a
// blank-padded filler, branches and tellers with NULL fillers, empty history.
func generatePgbench(ctx context.Context, dbURL string, scale int) error {
	var stmts []string
	for _, t := range pgbenchTables() {
		stmts = append(stmts, t.Create)
	}
	stmts = append(stmts,
		fmt.Sprintf(`INSERT INTO pgbench_branches (bid, bbalance) SELECT g, 0 FROM generate_series(1, %d) g`, scale),
		fmt.Sprintf(`INSERT INTO pgbench_tellers (tid, bid, tbalance) SELECT g, (g - 1) / 10 + 1, 0 FROM generate_series(1, %d) g`, 10*scale),
		fmt.Sprintf(`INSERT INTO pgbench_accounts SELECT g, (g - 1) / 100000 + 1, 0, '' FROM generate_series(1, %d) g`, 100000*scale))
	for _, t := range pgbenchTables() {
		if t.Key != "" {
			stmts = append(stmts, t.addKey())
		}
	}
	if err := execAll(ctx, dbURL, stmts...); err != nil {
		return fmt.Errorf("generate pgbench tables: %w", err)
	}
	return nil
}

// measure counts each table's rows and COPY text bytes. Reading everything
// once also sets hint bits and warms the cache, so whichever benchmark runs
// first does not pay for that alone.
func (d *dataset) measure(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, d.URL)
	if err != nil {
		return fmt.Errorf("measure source: %w", err)
	}
	defer conn.Close(ctx)
	for _, t := range d.Tables {
		var w countingWriter
		tag, err := conn.PgConn().CopyTo(ctx, &w, "COPY "+t.qualified()+" TO STDOUT")
		if err != nil {
			return fmt.Errorf("measure %s: %w", t.Name, err)
		}
		t.Rows, t.Bytes = tag.RowsAffected(), w.n
		d.Rows += t.Rows
		d.Bytes += t.Bytes
	}
	sort.SliceStable(d.Tables, func(i, j int) bool { return d.Tables[i].Bytes > d.Tables[j].Bytes })
	return nil
}

// checkCounts proves a target holds as many rows per table as the source.
func (d *dataset) checkCounts(ctx context.Context, dbURL string) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("check target: %w", err)
	}
	defer conn.Close(ctx)
	var bad []string
	for _, t := range d.Tables {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+t.qualified()).Scan(&n); err != nil {
			return fmt.Errorf("check target %s: %w", t.Name, err)
		}
		if n != t.Rows {
			bad = append(bad, fmt.Sprintf("%s: %d rows, source %d", t.Name, n, t.Rows))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("target differs from source: %s", strings.Join(bad, "; "))
	}
	return nil
}

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

func mb(n int64) float64 { return float64(n) / 1e6 }
