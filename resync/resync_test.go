package resync

import (
	"strconv"
	"strings"
	"testing"

	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
)

func table(name string, key []string, cols ...string) *schema.Table {
	t := &schema.Table{Source: schema.Name{Schema: "public", Name: name}, Target: schema.Name{Schema: "public", Name: name}, PrimaryKey: key}
	for _, c := range cols {
		n, typ, _ := strings.Cut(c, " ")
		t.Columns = append(t.Columns, &schema.Column{Name: n, TargetName: n, SourceType: typ, Type: typ})
	}
	return t
}

// TestDrift names every change of schema between a run and the source now.
func TestDrift(t *testing.T) {
	was := &schema.Database{Tables: []*schema.Table{
		table("items", []string{"id"}, "id integer", "name text", "price numeric"),
		table("gone", []string{"id"}, "id integer"),
		table("same", nil, "n integer"),
	}}
	now := &schema.Database{Tables: []*schema.Table{
		table("items", []string{"id", "name"}, "id integer", "name varchar(10)", "extra integer"),
		table("fresh", []string{"id"}, "id integer"),
		table("same", nil, "n integer"),
	}}
	got := Drift(was, now)
	want := []string{
		"table public.items: column name changed type from text to varchar(10)",
		"table public.items: column price was dropped",
		"table public.items: column extra was added (integer)",
		"table public.items: primary key changed from (id) to (id, name)",
		"table public.gone is gone from the source",
		"table public.fresh is new on the source",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("drift:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if d := Drift(was, was); len(d) != 0 {
		t.Errorf("a schema drifts from itself: %v", d)
	}
}

// TestKeyerSplitsOnlyUpToTheKey: a row's key id is the same whether the
// row was split whole or only up to its last key column, with escapes
// undone and key columns anywhere among the columns.
func TestKeyerSplitsOnlyUpToTheKey(t *testing.T) {
	tbl := table("t", []string{"b", "a"}, "a integer", "note text", "b text", "tail text")
	k, err := newKeyer(tbl, proto.EncodingCopyText)
	if err != nil {
		t.Fatal(err)
	}
	line := []byte("7\tx\\ty\tp\\\\q\\tr\tlong tail\n")
	fields, err := proto.SplitRow(nil, line)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := k.id(line, fields)
	if err != nil {
		t.Fatal(err)
	}
	wholeID := string(whole)
	prefix, err := k.id(line, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "p\\q\tr\x007"; wholeID != want || string(prefix) != want {
		t.Errorf("key ids %q (whole row), %q (prefix), want %q", wholeID, prefix, want)
	}
	if got := keysOf([]string{wholeID}); len(got) != 1 || len(got[0]) != 2 || got[0][0] != "p\\q\tr" || got[0][1] != "7" {
		t.Errorf("keysOf gave %q", got)
	}
	if _, err := k.id([]byte("7\tx\t\\N\tz\n"), nil); err == nil {
		t.Error("a NULL key was accepted")
	}
}

// TestBinaryKeys: a binary row's key id is its key fields' bytes, and it
// turns back into the key values' text for the key types sync decodes.
func TestBinaryKeys(t *testing.T) {
	tbl := table("t", []string{"u", "a", "s", "b"}, "a bigint", "note text", "b character varying(10)", "u uuid", "s smallint")
	k, err := newKeyer(tbl, proto.EncodingCopyBinary)
	if err != nil {
		t.Fatal(err)
	}
	if !binaryKeys(tbl) {
		t.Fatal("integer, text and uuid keys are not decodable")
	}
	be := func(n int, v int64) []byte {
		out := make([]byte, n)
		for i := n - 1; i >= 0; i-- {
			out[i], v = byte(v), v>>8
		}
		return out
	}
	uuid := []byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0, 1, 2, 3, 4, 5, 6, 7}
	var tuple []byte
	tuple = append(tuple, 0, 5)
	for _, f := range [][]byte{be(8, -42), []byte("x\ty"), []byte("tab\there"), uuid, be(2, 7)} {
		tuple = append(binary32(tuple, len(f)), f...)
	}
	fields, err := proto.SplitTuple(nil, tuple)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := k.id(tuple, fields)
	if err != nil {
		t.Fatal(err)
	}
	wholeID := string(whole)
	split, err := k.id(tuple, nil)
	if err != nil {
		t.Fatal(err)
	}
	if wholeID != string(split) {
		t.Errorf("key ids %x (split by the caller), %x (split here)", wholeID, split)
	}
	keys, err := k.keys([]string{wholeID})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"12345678-9abc-def0-0001-020304050607", "-42", "7", "tab\there"}
	if len(keys) != 1 || strings.Join(keys[0], "|") != strings.Join(want, "|") {
		t.Errorf("keys %q, want %q", keys, want)
	}
	for _, typ := range []string{"numeric", "date", "bytea", "timestamp without time zone"} {
		if binaryKeys(table("t", []string{"k"}, "k "+typ)) {
			t.Errorf("a %s key is taken as decodable", typ)
		}
	}
	if _, ok := binaryKeyText("integer", []byte{1, 2}); ok {
		t.Error("a 2-byte integer was decoded")
	}
}

// TestChunkRowsFindsEveryKey: rows are found by key id once indexed, a
// key twice is refused, every row keeps its own key id, and only the rows
// of the changed parts are indexed when parts are compared.
func TestChunkRowsFindsEveryKey(t *testing.T) {
	c := &chunkRows{}
	for i := range 1000 {
		c.push([]byte(strconv.Itoa(i)), sourceRow{hash: uint64(i), part: int32(i % 4)})
	}
	if id, twice := c.indexRows(nil); twice {
		t.Fatalf("key %s twice", id)
	}
	for i := range 1000 {
		at, ok := c.find([]byte(strconv.Itoa(i)))
		if !ok || c.rows[at].hash != uint64(i) || string(c.key(at)) != strconv.Itoa(i) {
			t.Fatalf("key %d: found %v at %d", i, ok, at)
		}
	}
	if _, ok := c.find([]byte("1000")); ok {
		t.Error("a key never added was found")
	}
	if _, twice := c.indexRows([]bool{false, true, false, false}); twice {
		t.Fatal("a key twice in part 1")
	}
	for i := range 1000 {
		if _, ok := c.find([]byte(strconv.Itoa(i))); ok != (i%4 == 1) {
			t.Fatalf("key %d (part %d) found %v", i, i%4, ok)
		}
	}
	c.push([]byte("7"), sourceRow{part: 2})
	if _, twice := c.indexRows([]bool{false, true, false, false}); twice {
		t.Error("a key twice across parts not compared was refused")
	}
	if id, twice := c.indexRows(nil); !twice || string(id) != "7" {
		t.Errorf("a key added twice: %q %v", id, twice)
	}
}
