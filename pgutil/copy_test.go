package pgutil

import (
	"reflect"
	"testing"

	"github.com/caravan-db/caravan/proto"
)

// COPY's stream may split or join rows anywhere; lines come out whole.
func TestLineWriterReassemblesRows(t *testing.T) {
	var got []string
	w := &lineWriter{emit: func(line []byte) error { got = append(got, string(line)); return nil }}
	for _, p := range []string{"a\tb\nc", "d\t", "e", "\nf\n", "g\nh\n"} {
		if n, err := w.Write([]byte(p)); err != nil || n != len(p) {
			t.Fatalf("write %q: %d, %v", p, n, err)
		}
	}
	if want := []string{"a\tb\n", "cd\te\n", "f\n", "g\n", "h\n"}; !reflect.DeepEqual(got, want) || len(w.partial) != 0 {
		t.Errorf("got %q (partial %q), want %q", got, w.partial, want)
	}
}

// A binary COPY stream split anywhere (inside the header, a length, a
// value) comes out as whole tuples, without header and trailer.
func TestTupleWriterReassemblesTuples(t *testing.T) {
	t1 := []byte{0, 2, 0, 0, 0, 1, 'a', 0xff, 0xff, 0xff, 0xff}
	t2 := []byte{0, 1, 0, 0, 0, 3, 'x', '\n', 'z'}
	stream := append(append(append(append([]byte{}, proto.BinaryHeader...), t1...), t2...), proto.BinaryTrailer...)
	for cut := 1; cut < len(stream); cut++ {
		var got [][]byte
		w := &tupleWriter{emit: func(row []byte) error { got = append(got, append([]byte{}, row...)); return nil }}
		for _, p := range [][]byte{stream[:cut], stream[cut:]} {
			if n, err := w.Write(p); err != nil || n != len(p) {
				t.Fatalf("cut %d: write: %d, %v", cut, n, err)
			}
		}
		if !w.ended || !reflect.DeepEqual(got, [][]byte{t1, t2}) || len(w.partial) != 0 {
			t.Errorf("cut %d: got %x (ended %v, partial %x)", cut, got, w.ended, w.partial)
		}
	}
	w := &tupleWriter{emit: func([]byte) error { return nil }}
	if _, err := w.Write([]byte("PGCOPY\nXXXXXXXXXXXXXXXXXXXX")); err == nil {
		t.Error("a stream with a wrong header was accepted")
	}
}
