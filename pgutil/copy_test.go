package pgutil

import (
	"reflect"
	"testing"
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
