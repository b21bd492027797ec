package e2e

import (
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/caravan-db/caravan/internal/testenv"
)

// fidelitySchema holds the objects a real PostgreSQL database has beyond
// plain tables.
var fidelitySchema = []string{
	// Extensions that columns and constraints need.
	`CREATE EXTENSION btree_gist`,
	`CREATE EXTENSION citext`,

	// Types built from each other: created dependencies first.
	`CREATE SCHEMA geo`,
	`CREATE TYPE geo.level AS ENUM ('low', 'mid', 'high')`,
	`CREATE DOMAIN geo.percent AS numeric(5,2) CONSTRAINT percent_range CHECK (VALUE BETWEEN 0 AND 100) NOT NULL`,
	`CREATE TYPE geo.reading AS (at timestamptz, level geo.level, share geo.percent, tags text[])`,
	`CREATE DOMAIN geo.readings AS geo.reading[]`,
	`CREATE TYPE geo.floatrange AS RANGE (subtype = float8, subtype_diff = float8mi)`,
	`CREATE DOMAIN email AS citext CHECK (VALUE LIKE '%@%')`,
	`CREATE TABLE geo.stations (id integer PRIMARY KEY, contact email, last geo.reading, history geo.readings,
		span geo.floatrange, spans geo.floatmultirange, level geo.level DEFAULT 'mid')`,
	`INSERT INTO geo.stations SELECT g, 'station' || g || '@example.org',
		ROW('2024-01-01'::timestamptz + g * interval '1 day', 'high', g % 100, ARRAY['a', 'b'])::geo.reading,
		ARRAY[ROW(NULL, 'low', 1.5, '{}')::geo.reading],
		geo.floatrange(g, g + 0.5), geo.floatmultirange(geo.floatrange(0, 1), geo.floatrange(g, g + 2)), 'low'
		FROM generate_series(1, 700) g`,

	// An exclusion constraint (btree_gist gives = on integers).
	`CREATE TABLE bookings (id integer PRIMARY KEY, room integer NOT NULL, during tstzrange NOT NULL,
		CONSTRAINT no_double_booking EXCLUDE USING gist (room WITH =, during WITH &&))`,
	`INSERT INTO bookings SELECT g, g % 10, tstzrange('2024-01-01'::timestamptz + g * interval '1 hour', '2024-01-01'::timestamptz + (g + 1) * interval '1 hour')
		FROM generate_series(1, 800) g`,

	// Inheritance, with rows in the parent and in the children.
	`CREATE TABLE vehicles (id integer PRIMARY KEY, name text NOT NULL, CONSTRAINT name_set CHECK (name <> ''))`,
	`CREATE TABLE cars (doors smallint) INHERITS (vehicles)`,
	`CREATE TABLE trucks (payload numeric(10,2), name text NOT NULL DEFAULT 'truck') INHERITS (vehicles)`,
	`INSERT INTO vehicles SELECT g, 'vehicle ' || g FROM generate_series(1, 300) g`,
	`INSERT INTO cars SELECT g, 'car ' || g, 2 + g % 3 FROM generate_series(1001, 1700) g`,
	`INSERT INTO trucks SELECT g, 'truck ' || g, g * 10 FROM generate_series(2001, 2100) g`,

	// Declarative partitioning, three levels, range, list, hash and defaults.
	`CREATE TABLE measurements (id bigint NOT NULL, at date NOT NULL, region text NOT NULL, v numeric,
		PRIMARY KEY (id, at, region)) PARTITION BY RANGE (at)`,
	`CREATE TABLE measurements_2023 PARTITION OF measurements FOR VALUES FROM ('2023-01-01') TO ('2024-01-01')`,
	`CREATE TABLE measurements_2024 PARTITION OF measurements FOR VALUES FROM ('2024-01-01') TO ('2025-01-01') PARTITION BY LIST (region)`,
	`CREATE TABLE measurements_2024_eu PARTITION OF measurements_2024 FOR VALUES IN ('eu') PARTITION BY HASH (id)`,
	`CREATE TABLE measurements_2024_eu_0 PARTITION OF measurements_2024_eu FOR VALUES WITH (MODULUS 2, REMAINDER 0)`,
	`CREATE TABLE measurements_2024_eu_1 PARTITION OF measurements_2024_eu FOR VALUES WITH (MODULUS 2, REMAINDER 1)`,
	`CREATE TABLE measurements_2024_rest PARTITION OF measurements_2024 DEFAULT`,
	`CREATE TABLE measurements_later PARTITION OF measurements DEFAULT`,
	`CREATE INDEX measurements_region ON measurements (region, at)`,
	`INSERT INTO measurements SELECT g, date '2023-01-01' + g % 800, (ARRAY['eu', 'us', 'apac'])[g % 3 + 1], g * 1.5
		FROM generate_series(1, 6000) g`,
	`ANALYZE`,
}

// TestMigrateSchemaFidelity migrates a database holding every kind of
// object and proves the target is its clone: each table's own rows
// (ONLY) identical, and the schema-only dumps equal but for what
// docs/ARCHITECTURE.md lists as deliberate.
func TestMigrateSchemaFidelity(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, fidelitySchema...)

	res := caravan(t, 2*time.Minute, "migrate", "--source-url", src, "--target-url", dst,
		"--chunk-rows", "500", "--batch-rows", "200", "--extractors", "2", "--loaders", "2")
	if res.code != 0 {
		t.Fatalf("migrate exited %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, tail(res.stderr, 6000))
	}
	tables := queryStrings(t, src, `SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%' ORDER BY 1`)
	assertSameContent(t, src, dst, tables...)

	// Each leaf partition was a table of its own, chunked on its own.
	if n := query[int64](t, dst, `SELECT count(DISTINCT table_id) FROM caravan.chunks WHERE table_id LIKE 'public.measurements_%'`); n != 7 {
		t.Errorf("%d measurements tables were planned, want the 7 partitions", n)
	}
	if n := query[int64](t, dst, `SELECT count(*) FROM caravan.chunks WHERE table_id = 'public.measurements_2023'`); n < 2 {
		t.Errorf("a partition got %d chunks, want it chunked on its own", n)
	}
	// Parents hold only their own rows.
	if got, want := query[int64](t, dst, `SELECT count(*) FROM ONLY vehicles`), int64(300); got != want {
		t.Errorf("vehicles holds %d rows of its own, want %d", got, want)
	}
	if got, want := query[int64](t, dst, `SELECT count(*) FROM vehicles`), int64(1100); got != want {
		t.Errorf("vehicles with its children holds %d rows, want %d", got, want)
	}

	if s, d := schemaDump(t, src), schemaDump(t, dst); s != d {
		t.Errorf("the target's schema differs from the source's:\n%s", lineDiff(s, d))
	}
}

// schemaDump is pg_dump --schema-only of a database, caravan's own schema
// aside, normalised as docs/ARCHITECTURE.md (Schema fidelity) lists:
// owners and grants (not migrated by default) and pg_dump's per-run
// \restrict key.
func schemaDump(t *testing.T, dbURL string) string {
	t.Helper()
	out, err := exec.Command(pgDump, "--schema-only", "--no-owner", "--no-privileges", "--exclude-schema", "caravan", "--dbname", dbURL).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	var kept []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, `\restrict `) || strings.HasPrefix(line, `\unrestrict `) {
			continue
		}
		kept = append(kept, line)
	}
	return strings.Join(kept, "\n")
}

// pgDump is the pg_dump of the PostgreSQL the tests use (15).
var pgDump = "/usr/bin/pg_dump"

// lineDiff lists the lines only one side has.
func lineDiff(a, b string) string {
	count := map[string]int{}
	for _, l := range strings.Split(a, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(b, "\n") {
		count[l]--
	}
	var out []string
	for l, n := range count {
		switch {
		case n > 0:
			out = append(out, "- "+l)
		case n < 0:
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func queryStrings(t *testing.T, dbURL, sql string, args ...any) []string {
	t.Helper()
	return query[[]string](t, dbURL, "SELECT coalesce(array_agg(x), '{}') FROM ("+sql+") q(x)", args...)
}
