package e2e

import (
	"testing"
	"time"

	"github.com/caravan-db/caravan/internal/testenv"
)

// fidelitySchema holds the objects a real PostgreSQL database has beyond
// plain tables.
var fidelitySchema = []string{
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
}

func queryStrings(t *testing.T, dbURL, sql string, args ...any) []string {
	t.Helper()
	return query[[]string](t, dbURL, "SELECT coalesce(array_agg(x), '{}') FROM ("+sql+") q(x)", args...)
}
