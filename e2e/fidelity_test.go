package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
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
	// Sequences: a serial's, owned by its column, and a standalone one
	// a default uses, with its value.
	`CREATE SEQUENCE ticket_no AS integer START WITH 100 INCREMENT BY 10 CACHE 5`,
	`SELECT setval('ticket_no', 5000)`,
	`CREATE TABLE tickets (id serial PRIMARY KEY, no integer NOT NULL DEFAULT nextval('ticket_no'), touched integer NOT NULL DEFAULT 0)`,
	`INSERT INTO tickets (touched) SELECT 0 FROM generate_series(1, 600)`,

	// Functions, a procedure, and a trigger that would change every copied
	// row if it fired during the load.
	`CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.touched := NEW.touched + 1; RETURN NEW; END $$`,
	`CREATE TRIGGER tickets_touch BEFORE INSERT OR UPDATE ON tickets FOR EACH ROW EXECUTE FUNCTION touch()`,
	`CREATE FUNCTION vehicle_label(v vehicles) RETURNS text LANGUAGE sql STABLE RETURN upper(v.name)`,
	`CREATE PROCEDURE reset_tickets(n integer) LANGUAGE sql BEGIN ATOMIC UPDATE tickets SET touched = 0 WHERE id <= n; END`,
	`CREATE TABLE audit_log (id integer PRIMARY KEY, what text)`,
	`CREATE RULE no_delete_audit AS ON DELETE TO audit_log DO INSTEAD NOTHING`,

	// Views on views, and a materialized view with an index.
	`CREATE VIEW all_vehicles AS SELECT id, name, vehicle_label(v) AS label FROM vehicles v`,
	`CREATE VIEW geo.busy_stations WITH (security_barrier = true) AS SELECT s.id, s.level FROM geo.stations s WHERE s.level = 'high'`,
	`CREATE VIEW busy_vehicles AS SELECT a.* FROM all_vehicles a JOIN bookings b ON b.room = a.id`,
	`CREATE MATERIALIZED VIEW region_totals AS SELECT region, count(*) AS n, sum(v) AS total FROM measurements GROUP BY region`,
	`CREATE UNIQUE INDEX region_totals_region ON region_totals (region)`,

	// Row-level security.
	`ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY`,
	`CREATE POLICY own_rows ON audit_log FOR SELECT TO PUBLIC USING (what <> 'secret')`,

	// Comments everywhere.
	`COMMENT ON SCHEMA geo IS 'stations and readings'`,
	`COMMENT ON TABLE vehicles IS 'every vehicle'`,
	`COMMENT ON COLUMN cars.doors IS 'how many doors'`,
	`COMMENT ON TABLE measurements IS 'partitioned by time'`,
	`COMMENT ON CONSTRAINT name_set ON vehicles IS 'names are required'`,
	`COMMENT ON CONSTRAINT no_double_booking ON bookings IS 'one booking per room at a time'`,
	`COMMENT ON INDEX measurements_region IS 'by region'`,
	`COMMENT ON TYPE geo.level IS 'an enum'`,
	`COMMENT ON TYPE geo.reading IS 'a composite'`,
	`COMMENT ON COLUMN geo.reading.share IS 'a composite attribute'`,
	`COMMENT ON DOMAIN geo.percent IS 'a domain'`,
	`COMMENT ON CONSTRAINT percent_range ON DOMAIN geo.percent IS 'a domain check'`,
	`COMMENT ON TYPE geo.floatrange IS 'a range'`,
	`COMMENT ON SEQUENCE ticket_no IS 'a standalone sequence'`,
	`COMMENT ON FUNCTION touch() IS 'a trigger function'`,
	`COMMENT ON PROCEDURE reset_tickets(integer) IS 'a procedure'`,
	`COMMENT ON TRIGGER tickets_touch ON tickets IS 'a trigger'`,
	`COMMENT ON RULE no_delete_audit ON audit_log IS 'a rule'`,
	`COMMENT ON POLICY own_rows ON audit_log IS 'a policy'`,
	`COMMENT ON VIEW all_vehicles IS 'a view'`,
	`COMMENT ON COLUMN all_vehicles.label IS 'a view column'`,
	`COMMENT ON MATERIALIZED VIEW region_totals IS 'a materialized view'`,

	// Owners and grants (migrated on request).
	`DO $$ BEGIN CREATE ROLE caravan_fid_owner; EXCEPTION WHEN duplicate_object THEN NULL; END $$`,
	`DO $$ BEGIN CREATE ROLE caravan_fid_reader; EXCEPTION WHEN duplicate_object THEN NULL; END $$`,
	`ALTER TABLE audit_log OWNER TO caravan_fid_owner`,
	`ALTER FUNCTION vehicle_label(vehicles) OWNER TO caravan_fid_owner`,
	`GRANT SELECT, INSERT ON vehicles TO caravan_fid_reader`,
	`GRANT USAGE ON SCHEMA geo TO caravan_fid_reader WITH GRANT OPTION`,
	`GRANT SELECT ON ALL TABLES IN SCHEMA geo TO caravan_fid_reader`,
	`REVOKE EXECUTE ON FUNCTION touch() FROM PUBLIC`,
	`CREATE POLICY reader_rows ON audit_log FOR SELECT TO caravan_fid_reader USING (id > 0)`,
	`GRANT USAGE ON SEQUENCE ticket_no TO caravan_fid_reader`,

	// Something caravan does not migrate: a run must refuse to start until
	// the user accepts it.
	`CREATE AGGREGATE total(integer) (sfunc = int4pl, stype = integer)`,
	`ANALYZE`,
}

// TestMigrateSchemaFidelity migrates a database holding every kind of
// object and proves the target is its clone: each table's own rows
// (ONLY) identical, and the schema-only dumps equal but for what
// docs/ARCHITECTURE.md lists as deliberate.
func TestMigrateSchemaFidelity(t *testing.T) {
	// Roles belong to the whole server: drop them once both databases are
	// gone (cleanups run last first), so a shared server is left as found.
	admin := testenv.AdminURL(t)
	t.Cleanup(func() {
		testenv.Exec(t, admin, `DROP ROLE IF EXISTS caravan_fid_owner`, `DROP ROLE IF EXISTS caravan_fid_reader`)
	})
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, fidelitySchema...)

	// plan names what would be left behind; migrate refuses to start
	// until it is accepted, and copies nothing meanwhile.
	res := caravan(t, time.Minute, "plan", "--source-url", src)
	if res.code != 0 {
		t.Fatalf("plan exited %d\n%s", res.code, tail(res.stderr, 3000))
	}
	mustContain(t, res.stdout, "-- not migrated", "aggregate:public.total(integer)")
	args := []string{"migrate", "--source-url", src, "--target-url", dst,
		"--chunk-rows", "500", "--batch-rows", "200", "--extractors", "2", "--loaders", "2"}
	res = caravan(t, time.Minute, args...)
	if res.code == 0 {
		t.Fatal("migrate started with an object it would not migrate, not accepted")
	}
	mustContain(t, res.stdout+res.stderr, "aggregate:public.total(integer)", "--accept-unmigrated")
	if query[bool](t, dst, `SELECT to_regclass('public.vehicles') IS NOT NULL`) {
		t.Error("the refused run created tables")
	}

	reportFile := filepath.Join(t.TempDir(), "report.json")
	res = caravan(t, 2*time.Minute, append(args, "--accept-unmigrated", "aggregate:*", "--owners-and-grants", "--report-json", reportFile)...)
	if res.code != 0 {
		t.Fatalf("migrate exited %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, tail(res.stderr, 6000))
	}
	// The report ends with what was left behind, as do its JSON and the audit.
	mustContain(t, res.stdout, "not migrated (1", "aggregate", "public.total(integer)")
	data, err := os.ReadFile(reportFile)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		NotMigrated []struct{ Kind, Name, Reason string } `json:"not_migrated"`
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.NotMigrated) != 1 || rep.NotMigrated[0].Name != "public.total(integer)" || rep.NotMigrated[0].Reason == "" {
		t.Errorf("report JSON not_migrated = %+v", rep.NotMigrated)
	}
	if n := query[int64](t, dst, `SELECT count(*) FROM caravan.audit WHERE operation = 'not_migrated' AND metadata->>'name' = 'public.total(integer)'`); n != 1 {
		t.Errorf("%d audit rows for the object left behind", n)
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

	// The trigger did not fire on copied rows; it is in place afterwards.
	if n := query[int64](t, dst, `SELECT count(*) FROM tickets WHERE touched <> 0`); n != 0 {
		t.Errorf("%d tickets were touched by the trigger during the load", n)
	}
	testenv.Exec(t, dst, `UPDATE tickets SET no = no WHERE id = 1`)
	if n := query[int64](t, dst, `SELECT touched FROM tickets WHERE id = 1`); n != 1 {
		t.Errorf("the trigger is not in place after the load: touched = %d", n)
	}
	// Sequences go on where the source's would.
	if got, want := query[int64](t, dst, `SELECT nextval('ticket_no')`), query[int64](t, src, `SELECT nextval('ticket_no')`); got != want {
		t.Errorf("standalone sequence gave %d next, the source gives %d", got, want)
	}
	// The materialized view was refreshed.
	assertSameContent(t, src, dst, "region_totals", "busy_vehicles", "geo.busy_stations")

	// What was accepted as left behind is the one difference.
	testenv.Exec(t, src, `DROP AGGREGATE total(integer)`)
	if s, d := schemaDump(t, src), schemaDump(t, dst); s != d {
		t.Errorf("the target's schema differs from the source's:\n%s", lineDiff(s, d))
	}
}

// schemaDump is pg_dump --schema-only of a database, caravan's own schema
// aside, owners and grants included (the run migrates them on request),
// normalised as docs/ARCHITECTURE.md (Schema fidelity) lists: pg_dump's
// per-run \restrict key.
func schemaDump(t *testing.T, dbURL string) string {
	t.Helper()
	out, err := exec.Command(pgDump, "--schema-only", "--exclude-schema", "caravan", "--dbname", dbURL).CombinedOutput()
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
	out := []string{"(the same lines in another order)"}
	for l, n := range count {
		switch {
		case n > 0:
			out = append(out, "- "+l)
		case n < 0:
			out = append(out, "+ "+l)
		}
	}
	if len(out) > 1 {
		out = out[1:]
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func queryStrings(t *testing.T, dbURL, sql string, args ...any) []string {
	t.Helper()
	return query[[]string](t, dbURL, "SELECT coalesce(array_agg(x), '{}') FROM ("+sql+") q(x)", args...)
}
