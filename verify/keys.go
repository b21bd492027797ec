package verify

import (
	"fmt"

	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/schema"
)

// KeyReader returns what reads a row's key values (as COPY text, in key
// order) from a line of t's load columns: what a comparison by key matches
// a source row and a target row with. sync uses it to copy only the rows of
// a changed chunk that differ. It reuses one buffer across lines: one
// goroutine at a time.
func KeyReader(t *schema.Table) (func(line []byte) ([]string, error), error) {
	at, err := keyPositions(t)
	if err != nil {
		return nil, err
	}
	var fields []proto.Field
	return func(line []byte) ([]string, error) {
		var err error
		if fields, err = proto.SplitRow(fields[:0], line); err != nil {
			return nil, fmt.Errorf("verify %s: %w", t.ID(), err)
		}
		return keyOfFields(t, at, fields, line)
	}, nil
}
