package proto

import (
	"bytes"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/zeebo/xxh3"
)

// Rows travel as PostgreSQL COPY text lines (tab-separated, \N for NULL,
// backslash escapes, '\n' after every row). Each value is in its canonical
// form: the text PostgreSQL's output function prints for the value of the
// TARGET column's type, under the session settings of pgutil (DateStyle ISO,
// IntervalStyle postgres, TimeZone UTC, extra_float_digits 1, bytea_output
// hex). One form serves three purposes: the loader streams it to COPY as is,
// the extractor digests it while reading, and the validator reads it back
// from the target with the same COPY and digests it with the same code. A
// source other than PostgreSQL must therefore print its values exactly as
// PostgreSQL would print them.

// AppendField appends one COPY text field (escaped), or \N for a nil value
// when null is true.
func AppendField(dst []byte, val []byte, null bool) []byte {
	if null {
		return append(dst, '\\', 'N')
	}
	// most values hold nothing to escape (numbers, timestamps, uuids):
	// they are copied whole, runs between escapes likewise
	for {
		i := 0
		for i < len(val) && !copyEscaped[val[i]] {
			i++
		}
		dst = append(dst, val[:i]...)
		if i == len(val) {
			return dst
		}
		switch val[i] {
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		}
		val = val[i+1:]
	}
}

// copyEscaped marks the bytes AppendField escapes.
var copyEscaped = [256]bool{'\\': true, '\n': true, '\r': true, '\t': true}

// RowBuilder assembles one COPY text line from canonical values.
type RowBuilder struct {
	buf []byte
	n   int
}

// Reset starts a new row.
func (b *RowBuilder) Reset() { b.buf = b.buf[:0]; b.n = 0 }

// Null appends a NULL field.
func (b *RowBuilder) Null() { b.sep(); b.buf = AppendField(b.buf, nil, true) }

// Value appends a non-NULL field.
func (b *RowBuilder) Value(v []byte) { b.sep(); b.buf = AppendField(b.buf, v, false) }

// String appends a non-NULL field.
func (b *RowBuilder) String(v string) {
	b.sep()
	b.buf = AppendField(b.buf, []byte(v), false)
}

// Line returns the row with its terminating newline. It stays valid until
// the next Reset.
func (b *RowBuilder) Line() []byte { return append(b.buf, '\n') }

func (b *RowBuilder) sep() {
	if b.n > 0 {
		b.buf = append(b.buf, '\t')
	}
	b.n++
}

// Field is one decoded value of a row; Null marks SQL NULL.
type Field struct {
	Value []byte
	Null  bool
}

// SplitRow decodes one COPY text line (with or without its newline) into
// fields, appending to dst. Values are unescaped; a value without a
// backslash aliases line.
func SplitRow(dst []Field, line []byte) ([]Field, error) {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	for {
		i := bytes.IndexByte(line, '\t')
		raw := line
		if i >= 0 {
			raw = line[:i]
		}
		f, err := decodeField(raw)
		if err != nil {
			return dst, err
		}
		dst = append(dst, f)
		if i < 0 {
			return dst, nil
		}
		line = line[i+1:]
	}
}

func decodeField(raw []byte) (Field, error) {
	if len(raw) == 2 && raw[0] == '\\' && raw[1] == 'N' {
		return Field{Null: true}, nil
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return Field{Value: raw}, nil
	}
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		// Copy the run up to the next backslash at once: a bytea value is
		// one escape ("\\x") and then kilobytes of plain hex digits.
		j := bytes.IndexByte(raw[i:], '\\')
		if j < 0 {
			return Field{Value: append(out, raw[i:]...)}, nil
		}
		out = append(out, raw[i:i+j]...)
		i += j + 1
		if i == len(raw) {
			return Field{}, fmt.Errorf("copy text: trailing backslash")
		}
		switch c := raw[i]; c {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'v':
			out = append(out, '\v')
		case 'x':
			// \xh or \xhh
			j := i + 1
			for j < len(raw) && j < i+3 && isHex(raw[j]) {
				j++
			}
			if j == i+1 {
				out = append(out, 'x')
				continue
			}
			v, _ := strconv.ParseUint(string(raw[i+1:j]), 16, 8)
			out = append(out, byte(v))
			i = j - 1
		case '0', '1', '2', '3', '4', '5', '6', '7':
			j := i
			for j < len(raw) && j < i+3 && raw[j] >= '0' && raw[j] <= '7' {
				j++
			}
			v, _ := strconv.ParseUint(string(raw[i:j]), 8, 16)
			out = append(out, byte(v))
			i = j - 1
		default:
			out = append(out, c)
		}
	}
	return Field{Value: out}, nil
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// Digest is an order-independent digest of a set of rows: the sum, modulo
// 2^64, of each row's hash. Sums of chunks add up to the table's, and the
// validator computes the same sum over the target's rows (target.ReadDigest).
type Digest struct {
	Sum  uint64
	Rows int64
}

// RowHash hashes one row's fields: XXH3-64 over, per field, "N" for NULL or
// "V<len>:<bytes>" otherwise. It is the digest of both encodings: the
// fields are the unescaped values of a COPY text line (SplitRow) or the
// send-format bytes of a binary tuple (SplitTuple), so the same row hashes
// differently in each, and a digest is only compared with one taken in the
// same encoding (the table's, recorded in the run's model). The digest guards against loss
// and corruption, not against an attacker, so a fast non-cryptographic
// hash does (md5 cost more CPU than the rest of the digest on both sides).
func RowHash(fields []Field, scratch []byte) (uint64, []byte) {
	scratch = scratch[:0]
	for _, f := range fields {
		if f.Null {
			scratch = append(scratch, 'N')
			continue
		}
		scratch = append(scratch, 'V')
		scratch = strconv.AppendInt(scratch, int64(len(f.Value)), 10)
		scratch = append(scratch, ':')
		scratch = append(scratch, f.Value...)
	}
	return xxh3.Hash(scratch), scratch
}

// Add adds one row's hash.
func (d *Digest) Add(h uint64) { d.Sum += h; d.Rows++ }

// Remove takes one row's hash out again: sync proves a chunk it changed
// from the digest read before, less the rows it replaced, plus those it
// wrote.
func (d *Digest) Remove(h uint64) { d.Sum -= h; d.Rows-- }

// Merge adds another digest.
func (d *Digest) Merge(o Digest) { d.Sum += o.Sum; d.Rows += o.Rows }

// String renders the sum as 16 hex digits.
func (d Digest) String() string { return fmt.Sprintf("%016x", d.Sum) }

// ParseDigest reads a digest sum rendered by String.
func ParseDigest(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	return strconv.ParseUint(s, 16, 64)
}

// EscapeInvalidUTF8 returns b as text, every byte that is not part of valid
// UTF-8 written as COPY's own escape \xNN. A COPY line escaped so is still a
// COPY line, and decodes to exactly the original bytes (its backslashes are
// already escaped); elsewhere (a key, a message) it shows the bytes a
// PostgreSQL text column could not hold. Valid text comes back unchanged.
func EscapeInvalidUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	out := make([]byte, 0, len(b)+8)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n <= 1 {
			out = append(out, '\\', 'x', hexDigits[b[0]>>4], hexDigits[b[0]&0xf])
			b = b[1:]
			continue
		}
		out = append(out, b[:n]...)
		b = b[n:]
	}
	return string(out)
}

const hexDigits = "0123456789abcdef"
