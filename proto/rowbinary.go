package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Rows in EncodingCopyBinary are PostgreSQL binary COPY tuples: a 16-bit
// field count, then per field a 32-bit length (-1 for NULL) and that many
// bytes, each value in its type's send format (big-endian integers, raw
// bytea, text in the client encoding). A batch holds tuples only; the
// stream's 19-byte header and 2-byte trailer are added by whoever feeds a
// COPY FROM (the loader, sync), since the batch is no stream of its own.
// The binary send format of a built-in type is the same in every
// PostgreSQL database and version that has the type, and the row hash
// (RowHash) is taken over these field bytes: what travels is what is
// digested, at the source and when read back from the target.

// BinaryHeader starts every binary COPY stream: the signature, no flags,
// no header extension.
var BinaryHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// BinaryTrailer ends a binary COPY stream: a field count of -1.
var BinaryTrailer = []byte{0xff, 0xff}

// errShortTuple is a tuple cut short, inside a batch where it must be whole.
var errShortTuple = errors.New("binary copy: tuple cut short")

// TupleLen returns the length of the binary tuple that starts p, or 0 when
// p holds only part of it. The trailer (field count -1) is 2 bytes long.
func TupleLen(p []byte) (int, error) {
	if len(p) < 2 {
		return 0, nil
	}
	n := int(int16(binary.BigEndian.Uint16(p)))
	if n == -1 {
		return 2, nil
	}
	if n < 0 {
		return 0, fmt.Errorf("binary copy: field count %d", n)
	}
	at := 2
	for range n {
		if len(p) < at+4 {
			return 0, nil
		}
		size := int(int32(binary.BigEndian.Uint32(p[at:])))
		at += 4
		if size < -1 {
			return 0, fmt.Errorf("binary copy: field length %d", size)
		}
		if size > 0 {
			at += size
		}
	}
	if len(p) < at {
		return 0, nil
	}
	return at, nil
}

// IsTrailer says whether a tuple is the stream's trailer.
func IsTrailer(tuple []byte) bool {
	return len(tuple) == 2 && tuple[0] == 0xff && tuple[1] == 0xff
}

// SplitTuple decodes one binary tuple into fields, appending to dst.
// Values alias tuple.
func SplitTuple(dst []Field, tuple []byte) ([]Field, error) {
	if len(tuple) < 2 {
		return dst, errShortTuple
	}
	n := int(int16(binary.BigEndian.Uint16(tuple)))
	if n < 0 {
		return dst, fmt.Errorf("binary copy: field count %d", n)
	}
	p := tuple[2:]
	for range n {
		if len(p) < 4 {
			return dst, errShortTuple
		}
		size := int(int32(binary.BigEndian.Uint32(p)))
		p = p[4:]
		if size == -1 {
			dst = append(dst, Field{Null: true})
			continue
		}
		if size < 0 || size > len(p) {
			return dst, errShortTuple
		}
		dst = append(dst, Field{Value: p[:size:size]})
		p = p[size:]
	}
	if len(p) != 0 {
		return dst, fmt.Errorf("binary copy: %d bytes after the last field", len(p))
	}
	return dst, nil
}

// SplitRowAs decodes one row of encoding enc into fields, appending to dst:
// the one place that knows how either encoding frames its values, so the
// extractor, the validator, verify and sync split rows alike.
func SplitRowAs(enc string, dst []Field, row []byte) ([]Field, error) {
	if enc == EncodingCopyBinary {
		return SplitTuple(dst, row)
	}
	return SplitRow(dst, row)
}

// NthRow returns the n-th row (from 1) of a batch's data in encoding enc,
// nil when there is none: what PostgreSQL's "COPY t, line n" names, in
// either format.
func NthRow(enc string, data []byte, n int) []byte {
	if enc != EncodingCopyBinary {
		return nthLine(data, n)
	}
	for i := 1; len(data) > 0; i++ {
		size, err := TupleLen(data)
		if err != nil || size == 0 {
			return nil
		}
		if i == n {
			return data[:size]
		}
		data = data[size:]
	}
	return nil
}

// RowText renders a row of encoding enc as one COPY text line (without its
// newline): a text row as it is; a binary tuple as a line of its fields'
// send-format bytes, each byte that is not printable UTF-8 (NUL, controls,
// invalid sequences) written as COPY's \xNN escape, so a rejected binary
// row can be stored in a text column and shown, and still decodes, as COPY
// text, to the exact field bytes.
func RowText(enc string, row []byte) []byte {
	if enc != EncodingCopyBinary {
		if n := len(row); n > 0 && row[n-1] == '\n' {
			return row[:n-1]
		}
		return row
	}
	fields, err := SplitTuple(nil, row)
	if err != nil {
		return []byte(EscapeInvalidUTF8(row))
	}
	var out []byte
	for i, f := range fields {
		if i > 0 {
			out = append(out, '\t')
		}
		if f.Null {
			out = append(out, '\\', 'N')
			continue
		}
		for v := f.Value; len(v) > 0; {
			r, n := utf8.DecodeRune(v)
			switch {
			case r == '\\':
				out = append(out, '\\', '\\')
			case (r == utf8.RuneError && n <= 1) || r < 0x20 || r == 0x7f:
				out = append(out, '\\', 'x', hexDigits[v[0]>>4], hexDigits[v[0]&0xf])
				n = 1
			default:
				out = append(out, v[:n]...)
			}
			v = v[n:]
		}
	}
	return out
}

func nthLine(data []byte, n int) []byte {
	for i := 1; len(data) > 0; i++ {
		end := bytes.IndexByte(data, '\n')
		if end < 0 {
			end = len(data)
		}
		if i == n {
			return data[:end]
		}
		if end == len(data) {
			break
		}
		data = data[end+1:]
	}
	return nil
}
