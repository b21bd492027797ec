package pgutil

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/caravan-db/caravan/proto"
)

// CopyRows streams the rows of query with COPY (query) TO STDOUT in row
// encoding enc, calling emit with each row (the slice is only valid during
// the call): in proto.EncodingCopyText a line, its newline included; in
// proto.EncodingCopyBinary a tuple, without the stream's header and
// trailer. PostgreSQL's text output under the session settings of this
// package is caravan's canonical row form, already escaped for COPY; its
// binary output is each value's send format, no printing at all. COPY
// costs the server less than row-by-row results; the source reader, the
// validator, verify and sync read chunks this one way.
//
// COPY takes no bind parameters, so args are bound to transaction-local
// settings first (set_config with $n) and query reads the n-th back with
// BoundSetting(n, type): no value is ever spliced into SQL text. That is
// why CopyRows needs a transaction. A []string argument is bound as a text
// array, which the server renders as an array literal: read it back with
// BoundSetting(n, type+"[]").
func CopyRows(ctx context.Context, tx pgx.Tx, enc, query string, args []any, emit func(row []byte) error) error {
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
	if enc == proto.EncodingCopyBinary {
		tuples := &tupleWriter{emit: emit}
		if _, err := tx.Conn().PgConn().CopyTo(ctx, tuples, "COPY ("+query+") TO STDOUT (FORMAT binary)"); err != nil {
			return err
		}
		if !tuples.ended {
			return fmt.Errorf("binary COPY ended without its trailer")
		}
		return nil
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

// tupleWriter turns a binary COPY stream into tuples: it checks and skips
// the header, emits each tuple whole, and stops at the trailer. PostgreSQL
// sends one tuple per message (the header with the first), but only the
// framing inside the stream is relied on.
type tupleWriter struct {
	emit    func([]byte) error
	partial []byte
	started bool // the header was read
	ended   bool // the trailer was read
}

func (w *tupleWriter) Write(p []byte) (int, error) {
	n := len(p)
	if len(w.partial) > 0 {
		// Complete the pending tuple (or header) first, then go on in p.
		w.partial = append(w.partial, p...)
		rest, err := w.consume(w.partial)
		if err != nil {
			return 0, err
		}
		w.partial = append(w.partial[:0], rest...)
		return n, nil
	}
	rest, err := w.consume(p)
	if err != nil {
		return 0, err
	}
	w.partial = append(w.partial, rest...)
	return n, nil
}

// consume emits every whole tuple of p and returns what is left over.
func (w *tupleWriter) consume(p []byte) ([]byte, error) {
	if !w.started {
		if len(p) < len(proto.BinaryHeader) {
			return p, nil
		}
		if !bytes.Equal(p[:len(proto.BinaryHeader)], proto.BinaryHeader) {
			return nil, fmt.Errorf("binary COPY: unexpected header % x", p[:len(proto.BinaryHeader)])
		}
		w.started, p = true, p[len(proto.BinaryHeader):]
	}
	for len(p) > 0 {
		if w.ended {
			return nil, fmt.Errorf("binary COPY: %d bytes after the trailer", len(p))
		}
		size, err := proto.TupleLen(p)
		if err != nil {
			return nil, err
		}
		if size == 0 {
			return p, nil
		}
		if proto.IsTrailer(p[:size]) {
			w.ended = true
		} else if err := w.emit(p[:size]); err != nil {
			return nil, err
		}
		p = p[size:]
	}
	return nil, nil
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
