package postgres

import (
	"context"
	"testing"

	"github.com/caravan-db/caravan/schema"
)

// Sizes order the run (largest first) and cut wide tables into more
// chunks: TOAST counts; a partitioned table holds nothing itself, its
// partitions do.
func TestDiscoverSizes(t *testing.T) {
	s := open(t,
		`CREATE TABLE small (id int PRIMARY KEY)`, `INSERT INTO small SELECT g FROM generate_series(1, 10) g`,
		`CREATE TABLE wide (id int PRIMARY KEY, b bytea)`,
		`INSERT INTO wide SELECT g, decode(string_agg(md5((g * 1000 + i)::text), ''), 'hex') FROM generate_series(1, 200) g, generate_series(1, 200) i GROUP BY g`,
		`CREATE TABLE parted (id int, v text) PARTITION BY RANGE (id)`,
		`CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (1000)`,
		`CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (1000) TO (2000)`,
		`INSERT INTO parted SELECT g, repeat('x', 200) FROM generate_series(0, 1999) g`)
	db, err := s.Discover(context.Background(), schema.Filter{Include: []string{"small", "wide", "parted*"}})
	if err != nil {
		t.Fatal(err)
	}
	size := map[string]int64{}
	for _, tbl := range db.Tables {
		size[tbl.Source.Name] = tbl.SizeBytes
	}
	// 200 rows of 3.2 kB of incompressible bytea live in TOAST.
	if size["wide"] < 200*3200 {
		t.Errorf("wide: %d bytes, want at least its TOASTed bytea (640 kB)", size["wide"])
	}
	if size["small"] <= 0 || size["small"] >= size["wide"] {
		t.Errorf("small: %d bytes (wide %d)", size["small"], size["wide"])
	}
	if size["parted"] != 0 || size["parted_1"] < 1000*200 || size["parted_2"] < 1000*200 {
		t.Errorf("parted: %d bytes, partitions %d and %d: want 0 and at least 200 kB each", size["parted"], size["parted_1"], size["parted_2"])
	}
}
