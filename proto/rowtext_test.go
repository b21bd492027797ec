package proto

import (
	"bytes"
	"testing"
)

func TestFieldRoundTrip(t *testing.T) {
	values := [][]byte{
		[]byte(""), []byte("plain"), []byte("tab\there"), []byte("new\nline"), []byte("cr\rret"), []byte(`back\slash`),
		[]byte(`\N`), []byte("😀 𝄞 ünï"), {0xff, 0x01, 0x7f}, []byte(`\\x00ff`),
	}
	var b RowBuilder
	b.Reset()
	for _, v := range values {
		b.Value(v)
	}
	b.Null()
	fields, err := SplitRow(nil, b.Line())
	if err != nil {
		t.Fatal(err)
	}
	if len(fields) != len(values)+1 {
		t.Fatalf("%d fields, want %d", len(fields), len(values)+1)
	}
	for i, v := range values {
		if fields[i].Null || !bytes.Equal(fields[i].Value, v) {
			t.Errorf("field %d = %q (null %v), want %q", i, fields[i].Value, fields[i].Null, v)
		}
	}
	if !fields[len(values)].Null {
		t.Error("last field should be NULL")
	}
}

// PostgreSQL's COPY accepts escapes it never prints; a row read from
// elsewhere may carry them.
func TestSplitRowAcceptsEveryCopyEscape(t *testing.T) {
	fields, err := SplitRow(nil, []byte(`\b\f\v\x41\101\q`+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(fields[0].Value); got != "\b\f\vAAq" {
		t.Errorf("got %q", got)
	}
	if _, err := SplitRow(nil, []byte(`bad\`)); err == nil {
		t.Error("a trailing backslash must be an error")
	}
}

func FuzzFieldRoundTrip(f *testing.F) {
	f.Add([]byte("a\tb\\c\nd"), []byte(`\N`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var rb RowBuilder
		rb.Reset()
		rb.Value(a)
		rb.Value(b)
		fields, err := SplitRow(nil, rb.Line())
		if err != nil {
			t.Fatal(err)
		}
		if len(fields) != 2 || !bytes.Equal(fields[0].Value, a) || !bytes.Equal(fields[1].Value, b) || fields[0].Null || fields[1].Null {
			t.Fatalf("round trip of %q, %q gave %+v", a, b, fields)
		}
	})
}

func TestDigestIsOrderIndependentAndDistinguishesNull(t *testing.T) {
	rows := [][]Field{
		{{Value: []byte("1")}, {Null: true}},
		{{Value: []byte("2")}, {Value: []byte("")}},
		{{Value: []byte("3")}, {Value: []byte("N")}},
	}
	var fwd, rev Digest
	var scratch []byte
	var h uint64
	for i := range rows {
		h, scratch = RowHash(rows[i], scratch)
		fwd.Add(h)
		h, scratch = RowHash(rows[len(rows)-1-i], scratch)
		rev.Add(h)
	}
	if fwd != rev {
		t.Errorf("digest depends on order: %v vs %v", fwd, rev)
	}
	a, _ := RowHash([]Field{{Null: true}}, nil)
	b, _ := RowHash([]Field{{Value: []byte("")}}, nil)
	c, _ := RowHash([]Field{{Value: []byte("N")}}, nil)
	if a == b || a == c || b == c {
		t.Error("NULL, empty string and 'N' must hash differently")
	}
	// Field boundaries count: ("ab","c") is not ("a","bc").
	x, _ := RowHash([]Field{{Value: []byte("ab")}, {Value: []byte("c")}}, nil)
	y, _ := RowHash([]Field{{Value: []byte("a")}, {Value: []byte("bc")}}, nil)
	if x == y {
		t.Error("field boundaries must matter")
	}
	parsed, err := ParseDigest(fwd.String())
	if err != nil || parsed != fwd.Sum {
		t.Errorf("ParseDigest(%s) = %x, %v", fwd, parsed, err)
	}
}

func TestUnmarshalRefusesOtherVersions(t *testing.T) {
	data, err := Marshal(&RowBatch{V: Version + 1, Run: "r"})
	if err != nil {
		t.Fatal(err)
	}
	var b RowBatch
	if err := Unmarshal(data, &b); err == nil {
		t.Error("a batch of another protocol version was accepted")
	}
	data, _ = Marshal(&RowBatch{V: Version, Run: "r", Data: []byte("x\n"), Rows: 1})
	if err := Unmarshal(data, &b); err != nil || b.Rows != 1 || string(b.Data) != "x\n" {
		t.Errorf("round trip: %+v, %v", b, err)
	}
}

// Invalid bytes become COPY's \xNN escape, so an escaped line stays valid
// UTF-8 and still decodes to exactly the original bytes.
func TestEscapeInvalidUTF8(t *testing.T) {
	line := []byte("1\tcaf\xe9 \\\\x41 \xef\xbf\xbd ok\t\xff\xfe")
	esc := EscapeInvalidUTF8(line)
	if want := "1\tcaf\\xe9 \\\\x41 \ufffd ok\t\\xff\\xfe"; esc != want {
		t.Fatalf("escaped %q, want %q", esc, want)
	}
	orig, err := SplitRow(nil, line)
	if err != nil {
		t.Fatal(err)
	}
	back, err := SplitRow(nil, []byte(esc))
	if err != nil {
		t.Fatal(err)
	}
	for i := range orig {
		if !bytes.Equal(orig[i].Value, back[i].Value) {
			t.Errorf("field %d: %q decodes back as %q", i, orig[i].Value, back[i].Value)
		}
	}
	if s := EscapeInvalidUTF8([]byte("plain é")); s != "plain é" {
		t.Errorf("valid text changed: %q", s)
	}
}
