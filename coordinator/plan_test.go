package coordinator

import (
	"testing"

	"github.com/caravan-db/caravan/schema"
)

func TestLargestFirst(t *testing.T) {
	tp := func(name string, size, rows int64) *TablePlan {
		return &TablePlan{Table: &schema.Table{Source: schema.Name{Name: name}, SizeBytes: size, RowEstimate: rows}}
	}
	p := &Plan{Tables: []*TablePlan{tp("a_small", 10, 1000), tp("b_wide", 900, 10), tp("c_unknown1", 0, 50), tp("d_mid", 300, 5), tp("e_unknown2", 0, 70)}}
	var got []string
	for _, x := range p.LargestFirst() {
		got = append(got, x.Table.Source.Name)
	}
	want := []string{"b_wide", "d_mid", "a_small", "e_unknown2", "c_unknown1"}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
	if p.Tables[0].Table.Source.Name != "a_small" {
		t.Fatal("LargestFirst reordered the plan itself")
	}
}

func TestRowsPerChunkBoundsBytes(t *testing.T) {
	for _, c := range []struct {
		size, est, rows, want int64
	}{
		{0, 0, 100_000, 100_000},                       // nothing known: rows
		{100 << 20, 1_000_000, 100_000, 100_000},       // narrow rows: rows bind
		{1024 * 1_000_000, 1_000_000, 100_000, 65_536}, // 1 KiB rows: 64 MiB chunks
		{1 << 40, 1_000_000, 100_000, 1000},            // huge rows: never tiny chunks
	} {
		got := rowsPerChunk(&schema.Table{SizeBytes: c.size, RowEstimate: c.est}, c.rows)
		if got != c.want {
			t.Errorf("size %d, %d rows: %d rows per chunk, want %d", c.size, c.est, got, c.want)
		}
	}
}
