package proto

import (
	"bytes"
	"testing"
)

func tuple(fields ...[]byte) []byte {
	out := []byte{0, byte(len(fields))}
	for _, f := range fields {
		if f == nil {
			out = append(out, 0xff, 0xff, 0xff, 0xff)
			continue
		}
		out = append(out, 0, 0, byte(len(f)>>8), byte(len(f)))
		out = append(out, f...)
	}
	return out
}

// Binary tuples are framed, split and hashed so that NULL, an empty value
// and field boundaries all count, as in text.
func TestBinaryTuples(t *testing.T) {
	a := tuple([]byte{0, 0, 0, 1}, nil, []byte{})
	b := tuple([]byte("x\\y\tz"), []byte{0xff, 0x00})
	data := append(append([]byte{}, a...), b...)
	if n, err := TupleLen(data); err != nil || n != len(a) {
		t.Fatalf("TupleLen = %d, %v; want %d", n, err, len(a))
	}
	if n, err := TupleLen(data[:len(a)-1]); err != nil || n != 0 {
		t.Errorf("TupleLen of a cut tuple = %d, %v; want 0", n, err)
	}
	if n, _ := TupleLen(BinaryTrailer); n != 2 || !IsTrailer(BinaryTrailer) {
		t.Errorf("trailer: %d", n)
	}
	fields, err := SplitRowAs(EncodingCopyBinary, nil, a)
	if err != nil || len(fields) != 3 || fields[0].Null || !fields[1].Null || fields[2].Null || len(fields[2].Value) != 0 {
		t.Fatalf("split %v: %+v", err, fields)
	}
	if _, err := SplitTuple(nil, a[:len(a)-1]); err == nil {
		t.Error("a cut tuple split without error")
	}
	if _, err := SplitTuple(nil, append(append([]byte{}, a...), 0)); err == nil {
		t.Error("a tuple with a trailing byte split without error")
	}
	if got := NthRow(EncodingCopyBinary, data, 2); !bytes.Equal(got, b) {
		t.Errorf("NthRow 2 = %x", got)
	}
	if got := NthRow(EncodingCopyBinary, data, 3); got != nil {
		t.Errorf("NthRow 3 = %x", got)
	}
	if got := string(RowText(EncodingCopyBinary, b)); got != `x\\y\x09z`+"\t"+`\xff\x00` {
		t.Errorf("RowText = %q", got)
	}
	// The row text decodes back to the field bytes.
	back, err := SplitRow(nil, RowText(EncodingCopyBinary, b))
	if err != nil || string(back[0].Value) != "x\\y\tz" || !bytes.Equal(back[1].Value, []byte{0xff, 0}) {
		t.Errorf("RowText does not decode to the fields: %v %+v", err, back)
	}
	hash := func(row []byte) uint64 {
		f, err := SplitTuple(nil, row)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := RowHash(f, nil)
		return h
	}
	// NULL, empty and moved boundaries hash differently.
	seen := map[uint64]string{}
	for name, row := range map[string][]byte{
		"null": tuple(nil), "empty": tuple([]byte{}), "ab|c": tuple([]byte("ab"), []byte("c")), "a|bc": tuple([]byte("a"), []byte("bc")),
	} {
		h := hash(row)
		if other, dup := seen[h]; dup {
			t.Errorf("%s and %s hash alike", name, other)
		}
		seen[h] = name
	}
}
