package proto

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestPartsBoundsHoldTheirValues checks the one thing sync relies on: a
// value's part is the one whose bounds (as the target's predicate reads
// them) hold it, at the edges of each integer type too, for values inside
// the chunk as cut and for values added since.
func TestPartsBoundsHoldTheirValues(t *testing.T) {
	cases := []struct {
		kind     string
		min, max int64
	}{
		{"smallint", math.MinInt16, math.MaxInt16},
		{"integer", math.MinInt32, math.MaxInt32},
		{"bigint", math.MinInt64, math.MaxInt64},
		{"uuid", math.MinInt64, math.MaxInt64},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range cases {
		for _, rows := range []int{1, 2, 31, 33, 5000, 100_000} {
			var b PartsBuilder
			var sum Digest
			distinct := map[int64]bool{}
			lo := c.min + r.Int64N(100)
			if r.IntN(2) == 0 {
				lo = r.Int64N(1000)
			}
			span := uint64(c.max) - uint64(lo)
			if r.IntN(3) == 0 {
				span = min(span, uint64(rows)*3)
			}
			for i := range rows {
				v := int64(uint64(lo) + r.Uint64N(span))
				switch {
				case i == 0:
					v = lo
				case i == 1 && r.IntN(2) == 0:
					v = c.max // the whole range of the type
				}
				h := r.Uint64()
				distinct[v] = true
				b.Add(v, h)
				sum.Add(h)
			}
			p := b.Parts()
			if p == nil {
				t.Fatalf("%s %d rows: no parts", c.kind, rows)
			}
			var total Digest
			for i := range p.Len() {
				total.Merge(p.Digest(i))
			}
			if total != sum {
				t.Fatalf("%s %d rows: parts sum %v, rows %v", c.kind, rows, total, sum)
			}
			for i := range p.Len() {
				if each := (rows + p.Len() - 1) / p.Len(); len(distinct) == rows && int(p.Rows[i]) > 2*each+1 {
					t.Fatalf("%s %d rows: part %d of %d holds %d rows", c.kind, rows, i, p.Len(), p.Rows[i])
				}
			}
			for range 2000 {
				v := int64(uint64(c.min) + r.Uint64N(uint64(c.max)-uint64(c.min)))
				if r.IntN(4) == 0 {
					edges := []int64{c.min, c.max, lo, lo - 1}
					for _, b := range p.Bounds {
						edges = append(edges, b, b-1)
					}
					v = edges[r.IntN(len(edges))]
				}
				if v < c.min || v > c.max {
					continue
				}
				at := p.Part(v)
				lo, hi, ok := p.PartSpan(c.kind, at, at)
				if !ok || v < value(t, c.kind, lo) || v > value(t, c.kind, hi) {
					t.Fatalf("%s: value %d in part %d of span %s..%s (%v)", c.kind, v, at, lo, hi, ok)
				}
				// The span's ends are the part's own: no value of a
				// neighbour is selected with it.
				if p.Part(value(t, c.kind, lo)) != at || p.Part(value(t, c.kind, hi)) != at {
					t.Fatalf("%s: part %d's span %s..%s reaches into another part", c.kind, at, lo, hi)
				}
			}
		}
	}
}

func TestPartValueBothEncodings(t *testing.T) {
	for _, c := range []struct {
		kind string
		text string
		bin  []byte
		want int64
	}{
		{"smallint", "-2", []byte{0xff, 0xfe}, -2},
		{"integer", "258", []byte{0, 0, 1, 2}, 258},
		{"bigint", "-9223372036854775808", []byte{0x80, 0, 0, 0, 0, 0, 0, 0}, math.MinInt64},
		{"uuid", "00000000-0000-0001-ffff-ffffffffffff", []byte{0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, math.MinInt64 + 1},
		{"uuid", "FFFFFFFF-FFFF-FFFF-0000-000000000000", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0}, math.MaxInt64},
	} {
		got, ok := PartValue(EncodingCopyText, c.kind, Field{Value: []byte(c.text)})
		if !ok || got != c.want {
			t.Errorf("%s text %q: %d %v, want %d", c.kind, c.text, got, ok, c.want)
		}
		got, ok = PartValue(EncodingCopyBinary, c.kind, Field{Value: c.bin})
		if !ok || got != c.want {
			t.Errorf("%s binary %x: %d %v, want %d", c.kind, c.bin, got, ok, c.want)
		}
	}
	if _, ok := PartValue(EncodingCopyText, "integer", Field{Null: true}); ok {
		t.Error("a NULL has a part value")
	}
	if _, ok := PartValue(EncodingCopyBinary, "integer", Field{Value: []byte{1, 2}}); ok {
		t.Error("a 2-byte integer has a part value")
	}
}

// TestPartsUUIDBoundsOrderAsPostgreSQL: a uuid part bound is the part's
// first 8 bytes and zeros, so bytewise order (PostgreSQL's) agrees with
// the part values.
func TestPartsUUIDBoundsOrderAsPostgreSQL(t *testing.T) {
	var b PartsBuilder
	r := rand.New(rand.NewPCG(3, 4))
	for range 10_000 {
		b.Add(int64(r.Uint64()>>1), r.Uint64())
	}
	p := b.Parts()
	for i := 1; i < p.Len(); i++ {
		lo, _, ok := p.PartSpan("uuid", i, i)
		_, before, okBefore := p.PartSpan("uuid", i-1, i-1)
		if !ok || !okBefore {
			t.Fatalf("part %d or the one before has no span", i)
		}
		got, ok := PartValue(EncodingCopyText, "uuid", Field{Value: []byte(lo)})
		if !ok || p.Part(got) != i || p.Part(got-1) != i-1 {
			t.Fatalf("part %d: bound %s reads back as %d (part %d)", i, lo, got, p.Part(got))
		}
		// Lower-case hex sorts as PostgreSQL sorts uuids (bytewise): the
		// part before ends just before this one starts.
		if before >= lo {
			t.Fatalf("part %d starts at %s, the part before ends at %s", i, lo, before)
		}
	}
}

// TestPartsKeepARepeatedValueInOnePart: the first column of a composite
// key repeats; every row of one value must fall in one part, the target
// selecting parts by that column alone.
func TestPartsKeepARepeatedValueInOnePart(t *testing.T) {
	var b PartsBuilder
	for v := range 500 {
		for range 1 + v%70 {
			b.Add(int64(v), 1)
		}
	}
	p := b.Parts()
	if p.Len() < 100 {
		t.Fatalf("%d parts for %d rows", p.Len(), 500*35)
	}
	for i := 1; i < len(p.Bounds); i++ {
		if p.Bounds[i] <= p.Bounds[i-1] {
			t.Fatalf("bounds not increasing: %v", p.Bounds)
		}
	}
}

func TestPartsTooManyKeys(t *testing.T) {
	var b PartsBuilder
	for i := range maxPartKeys + 1 {
		b.Add(int64(i), 1)
	}
	if b.Parts() != nil {
		t.Fatal("parts kept past maxPartKeys")
	}
}

// value reads a bound back as the target would compare it.
func value(t *testing.T, kind, s string) int64 {
	n, ok := PartValue(EncodingCopyText, kind, Field{Value: []byte(s)})
	if !ok {
		t.Fatalf("%s bound %q does not read back", kind, s)
	}
	return n
}
