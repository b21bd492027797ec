package mssql

import (
	"strings"
	"testing"
)

// plan must say, before a run, whether the source has to be kept quiet.
func TestConsistencyTellsWhenTheSourceMustBeQuiet(t *testing.T) {
	for _, c := range []struct {
		s    *Source
		want string
	}{
		{&Source{}, "must be quiet"},
		{&Source{siOn: true}, "SNAPSHOT isolation"},
		{&Source{siOn: true, opts: Options{DatabaseSnapshot: true}}, "same point in time"},
	} {
		if got := c.s.Consistency(); !strings.Contains(got, c.want) {
			t.Errorf("Consistency() = %q, want it to say %q", got, c.want)
		}
	}
}
