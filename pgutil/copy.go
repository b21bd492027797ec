package pgutil

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// CopyRows streams the rows of query with COPY (query) TO STDOUT, calling
// emit with each line (its newline included; the slice is only valid during
// the call). PostgreSQL's text output under the session settings of this
// package is caravan's canonical row form, already escaped for COPY, and
// COPY costs the server less than row-by-row results; the source reader
// and the validator read chunks this one way.
//
// COPY takes no bind parameters, so args are bound to transaction-local
// settings first (set_config with $n) and query reads the n-th back with
// BoundSetting(n, type): no value is ever spliced into SQL text. That is
// why CopyRows needs a transaction. A []string argument is bound as a text
// array, which the server renders as an array literal: read it back with
// BoundSetting(n, type+"[]").
func CopyRows(ctx context.Context, tx pgx.Tx, query string, args []any, emit func(line []byte) error) error {
	if len(args) > 0 {
		sets := make([]string, len(args))
		for i, a := range args {
			param := fmt.Sprintf("$%d", i+1)
			if _, isArray := a.([]string); isArray {
				param += "::text[]::text"
			}
			sets[i] = fmt.Sprintf("set_config('caravan.bound_%d', %s, true)", i+1, param)
		}
		if _, err := tx.Exec(ctx, "SELECT "+strings.Join(sets, ", "), args...); err != nil {
			return fmt.Errorf("bind bounds: %w", err)
		}
	}
	lines := &lineWriter{emit: emit}
	if _, err := tx.Conn().PgConn().CopyTo(ctx, lines, "COPY ("+query+") TO STDOUT"); err != nil {
		return err
	}
	if len(lines.partial) > 0 {
		return fmt.Errorf("COPY ended inside a row")
	}
	return nil
}

// BoundSetting reads the n-th argument of CopyRows (from 1) back from its
// setting, cast to typ, as the server would cast a bind parameter. Pass it
// to RangePredicateWith.
func BoundSetting(n int, typ string) string {
	return fmt.Sprintf("current_setting('caravan.bound_%d')::%s", n, typ)
}

// lineWriter turns COPY's output stream into rows. PostgreSQL sends one
// row per message, but only the newline (never raw inside a value: COPY
// escapes it) is relied on.
type lineWriter struct {
	emit    func([]byte) error
	partial []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	if len(w.partial) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.partial = append(w.partial, p...)
			return n, nil
		}
		w.partial = append(w.partial, p[:i+1]...)
		if err := w.emit(w.partial); err != nil {
			return 0, err
		}
		w.partial = w.partial[:0]
		p = p[i+1:]
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.partial = append(w.partial, p...)
			break
		}
		if err := w.emit(p[:i+1]); err != nil {
			return 0, err
		}
		p = p[i+1:]
	}
	return n, nil
}
