package proto

import (
	"encoding/binary"
	"encoding/hex"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Parts split a chunk's digest by the value of the table's first key
// column into ranges of about PartsRows rows each, recorded with the chunk
// when it is extracted. A later sync finds which parts of a changed chunk
// changed and reads only those ranges on the target: 0.1% of rows changed
// at random touch every chunk but only a few of its parts. A part is a
// range of VALUES (not of row positions), so the target can select it with
// a key predicate (PartSpan) and the same value falls in the same part
// on both sides; its bounds are values the chunk held (quantiles), so
// outliers and gaps in the keys do not crowd rows into one part.
//
// Only key columns of an integer type or uuid have parts (PartKind); uuid
// is ranged by its first 8 bytes, PostgreSQL ordering uuids bytewise.
type Parts struct {
	// Bounds[i] is where part i+1 starts, increasing: part 0 holds every
	// value below Bounds[0] and the last part every value from the last
	// bound on, so a chunk's every value has a part whatever was inserted
	// since.
	Bounds []int64  `msgpack:"bounds"`
	Sums   []uint64 `msgpack:"sums"`
	Rows   []uint32 `msgpack:"rows"`
}

// PartsRows is how many rows of a chunk a part holds at most on average:
// few enough that a sync of a slightly changed chunk reads little of it.
const PartsRows = 32

// MaxParts bounds a chunk's parts (about 12 bytes each, recorded with the
// chunk).
const MaxParts = 1024

// maxPartKeys bounds the keys a chunk keeps to cut its parts (16 bytes
// each): a chunk of more rows (a very large --chunk-rows) has no parts, and
// its syncs read its whole range on the target.
const maxPartKeys = 1 << 20

// PartKind is how a key column of target type typ is turned into a part
// value: "" for the types that have no parts (text, whose order is the
// collation's; numeric; dates; ...).
func PartKind(typ string) string {
	switch typ {
	case "smallint", "integer", "bigint", "uuid":
		return typ
	}
	return ""
}

// PartValue is a key field's part value in row encoding enc; ok is false
// for a NULL, a kind PartKind does not know or a value that does not
// parse.
func PartValue(enc, kind string, f Field) (int64, bool) {
	if f.Null {
		return 0, false
	}
	v := f.Value
	if enc == EncodingCopyBinary {
		switch {
		case kind == "smallint" && len(v) == 2:
			return int64(int16(binary.BigEndian.Uint16(v))), true
		case kind == "integer" && len(v) == 4:
			return int64(int32(binary.BigEndian.Uint32(v))), true
		case kind == "bigint" && len(v) == 8:
			return int64(binary.BigEndian.Uint64(v)), true
		case kind == "uuid" && len(v) == 16:
			return uuidValue(v), true
		}
		return 0, false
	}
	switch kind {
	case "smallint", "integer", "bigint":
		n, err := strconv.ParseInt(string(v), 10, 64)
		return n, err == nil
	case "uuid":
		var b [16]byte
		s := strings.ReplaceAll(string(v), "-", "")
		if len(s) != 32 {
			return 0, false
		}
		if _, err := hex.Decode(b[:], []byte(s)); err != nil {
			return 0, false
		}
		return uuidValue(b[:]), true
	}
	return 0, false
}

// uuidValue orders uuids as int64s: their first 8 bytes, unsigned, moved
// to the signed range.
func uuidValue(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ 1<<63) }

// PartsBuilder gathers a chunk's rows (part value and hash) and cuts them
// into parts once the chunk's values are known.
type PartsBuilder struct {
	values []int64
	hashes []uint64
	over   bool
}

// Grow makes room for n more rows.
func (b *PartsBuilder) Grow(n int) {
	b.values, b.hashes = slices.Grow(b.values, n), slices.Grow(b.hashes, n)
}

// Add adds one row.
func (b *PartsBuilder) Add(v int64, h uint64) {
	if b.over {
		return
	}
	if len(b.values) == maxPartKeys {
		b.over, b.values, b.hashes = true, nil, nil
		return
	}
	b.values, b.hashes = append(b.values, v), append(b.hashes, h)
}

// Parts are the rows' parts, nil for no rows or too many.
func (b *PartsBuilder) Parts() *Parts {
	if b.over || len(b.values) == 0 {
		return nil
	}
	sorted := slices.Clone(b.values)
	slices.Sort(sorted)
	n := min(MaxParts, (len(sorted)+PartsRows-1)/PartsRows)
	p := &Parts{}
	for i := 1; i < n; i++ {
		// A value repeated (the first of a composite key) stays in one
		// part: a bound is only taken past the previous one.
		if v := sorted[i*len(sorted)/n]; len(p.Bounds) == 0 || v > p.Bounds[len(p.Bounds)-1] {
			if v > sorted[0] {
				p.Bounds = append(p.Bounds, v)
			}
		}
	}
	p.Sums, p.Rows = make([]uint64, len(p.Bounds)+1), make([]uint32, len(p.Bounds)+1)
	for i, v := range b.values {
		p.Add(v, b.hashes[i])
	}
	return p
}

// Len is how many parts there are.
func (p *Parts) Len() int { return len(p.Sums) }

// Part is the part a value falls in.
func (p *Parts) Part(v int64) int {
	at, _ := slices.BinarySearch(p.Bounds, v)
	if at < len(p.Bounds) && p.Bounds[at] == v {
		at++ // a bound starts its part
	}
	return at
}

// Digest is part i's digest.
func (p *Parts) Digest(i int) Digest { return Digest{Sum: p.Sums[i], Rows: int64(p.Rows[i])} }

// Same says whether q cuts values as p does.
func (p *Parts) Same(q *Parts) bool {
	return q != nil && len(p.Sums) == len(q.Sums) && slices.Equal(p.Bounds, q.Bounds)
}

// Like returns empty parts cut as p's, to fill with Add.
func (p *Parts) Like() *Parts {
	return &Parts{Bounds: p.Bounds, Sums: make([]uint64, len(p.Sums)), Rows: make([]uint32, len(p.Sums))}
}

// Add adds a row of value v and hash h.
func (p *Parts) Add(v int64, h uint64) {
	at := p.Part(v)
	p.Sums[at] += h
	p.Rows[at]++
}

// PartSpan is the span of values of parts first to last as an inclusive
// [lo, hi], in kind's text: an open end is the least or greatest value of
// the kind's range (int64 for the integer kinds, whose columns compare
// with bigint; the nil and the all-ones uuid), so every span is a closed
// range an index scan bounds on both sides. ok is false for a span that
// holds no value.
func (p *Parts) PartSpan(kind string, first, last int) (lo, hi string, ok bool) {
	from, to := int64(math.MinInt64), int64(math.MaxInt64)
	if first > 0 {
		from = p.Bounds[first-1]
	}
	if last < len(p.Bounds) {
		if p.Bounds[last] == math.MinInt64 {
			return "", "", false
		}
		to = p.Bounds[last] - 1
	}
	if from > to {
		return "", "", false
	}
	return valueText(kind, from, false), valueText(kind, to, true), true
}

// valueText is a part value as kind's text; for a uuid, whose part value
// is its first 8 bytes, the least uuid of those bytes or, last, the
// greatest.
func valueText(kind string, v int64, last bool) string {
	if kind != "uuid" {
		return strconv.FormatInt(v, 10)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(v)^1<<63)
	if last {
		binary.BigEndian.PutUint64(b[8:], math.MaxUint64)
	}
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// PartSQLType is the type a part span's text is compared as: bigint for
// the integer kinds (a smallint or integer column compares with it by
// index), uuid for uuid.
func PartSQLType(kind string) string {
	if kind == "uuid" {
		return "uuid"
	}
	return "bigint"
}

// PartKey is the column a task's chunk is cut into parts by: the position
// of its first key column among Cols and that column's kind; at < 0 when
// the chunk has no parts (not a key range, or a key of another type).
func (t *ChunkTask) PartKey() (at int, kind string) {
	if t.Range != RangeKey || len(t.Key) == 0 {
		return -1, ""
	}
	for i, c := range t.Cols {
		if c == t.Key[0] && i < len(t.TargetTypes) {
			if kind = PartKind(t.TargetTypes[i]); kind != "" {
				return i, kind
			}
		}
	}
	return -1, ""
}
