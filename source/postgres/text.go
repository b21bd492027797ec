package postgres

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/source"
)

// A database created with ENCODING 'SQL_ASCII' stores text as bytes,
// unchecked and never converted: old databases hold Latin-1 or Windows
// text there, or a mix. Every other server encoding guarantees valid text
// and PostgreSQL converts it to the client encoding (UTF8), so only
// SQL_ASCII sources need the policy below, and only they pay for it.

// Read options a run carries to every extractor in ChunkTask.Options, so
// that whichever extractor reads a chunk applies the run's choice.
const (
	// OptionSourceEncoding names the encoding of a SQL_ASCII source's text
	// (a PostgreSQL encoding name such as WIN1252, LATIN1, LATIN9); it is
	// converted to UTF-8 as it is read.
	OptionSourceEncoding = "source_encoding"
	// OptionInvalidText is what becomes of text that is not valid UTF-8 (or
	// holds bytes with no character in the source encoding):
	// InvalidTextFail or InvalidTextReplace.
	OptionInvalidText = "invalid_text"
)

// Invalid-text policies.
const (
	// InvalidTextFail fails the chunk at once, naming table, column, key
	// and the offending bytes (the default: values stay exact unless the
	// user says otherwise).
	InvalidTextFail = "fail"
	// InvalidTextReplace writes U+FFFD for each offending byte and warns,
	// naming table, column and keys.
	InvalidTextReplace = "replace"
)

// sqlASCII is the server_encoding of a database that does not check text.
const sqlASCII = "SQL_ASCII"

// charsets are the single-byte encodings a SQL_ASCII source's text may be
// declared in, by PostgreSQL's names and common aliases. Multi-byte ones
// (SJIS, BIG5, ...) are left out: their bytes can look like COPY's escapes.
var charsets = func() map[string]*charmap.Charmap {
	m := map[string]*charmap.Charmap{
		"LATIN1": charmap.ISO8859_1, "LATIN2": charmap.ISO8859_2, "LATIN3": charmap.ISO8859_3,
		"LATIN4": charmap.ISO8859_4, "LATIN5": charmap.ISO8859_9, "LATIN6": charmap.ISO8859_10,
		"LATIN7": charmap.ISO8859_13, "LATIN8": charmap.ISO8859_14, "LATIN9": charmap.ISO8859_15,
		"LATIN10": charmap.ISO8859_16, "ISO88595": charmap.ISO8859_5, "ISO88596": charmap.ISO8859_6,
		"ISO88597": charmap.ISO8859_7, "ISO88598": charmap.ISO8859_8, "WIN866": charmap.CodePage866,
		"WIN874": charmap.Windows874, "KOI8R": charmap.KOI8R, "KOI8U": charmap.KOI8U,
		"WIN1250": charmap.Windows1250, "WIN1251": charmap.Windows1251, "WIN1252": charmap.Windows1252,
		"WIN1253": charmap.Windows1253, "WIN1254": charmap.Windows1254, "WIN1255": charmap.Windows1255,
		"WIN1256": charmap.Windows1256, "WIN1257": charmap.Windows1257, "WIN1258": charmap.Windows1258,
		// aliases
		"ISO88591": charmap.ISO8859_1, "ISO88592": charmap.ISO8859_2, "ISO88593": charmap.ISO8859_3,
		"ISO88594": charmap.ISO8859_4, "ISO88599": charmap.ISO8859_9, "ISO885910": charmap.ISO8859_10,
		"ISO885913": charmap.ISO8859_13, "ISO885914": charmap.ISO8859_14, "ISO885915": charmap.ISO8859_15,
		"ISO885916": charmap.ISO8859_16, "CP866": charmap.CodePage866,
	}
	for _, n := range []string{"874", "1250", "1251", "1252", "1253", "1254", "1255", "1256", "1257", "1258"} {
		m["WINDOWS"+n], m["CP"+n] = m["WIN"+n], m["WIN"+n]
	}
	return m
}()

// charsetKey folds a name the way charsets is keyed: upper case, without
// dashes and underscores ("iso-8859-1" and "ISO_8859_1" alike).
func charsetKey(name string) string {
	return strings.ToUpper(strings.NewReplacer("-", "", "_", "").Replace(name))
}

// TextOptions checks a run's text choices and returns them as task
// options (only those given).
func TextOptions(encoding, invalid string) (map[string]string, error) {
	opts := map[string]string{}
	if encoding != "" {
		if charsets[charsetKey(encoding)] == nil {
			return nil, fmt.Errorf("source encoding %q: want a single-byte encoding: LATIN1 to LATIN10, WIN1250 to WIN1258, WIN866, WIN874, ISO_8859_5 to ISO_8859_8, KOI8R or KOI8U", encoding)
		}
		opts[OptionSourceEncoding] = strings.ToUpper(encoding)
	}
	switch invalid {
	case "":
	case InvalidTextFail, InvalidTextReplace:
		opts[OptionInvalidText] = invalid
	default:
		return nil, fmt.Errorf("invalid-text policy %q: want %s or %s", invalid, InvalidTextFail, InvalidTextReplace)
	}
	return opts, nil
}

// textCheck applies a run's text policy to the COPY lines of a SQL_ASCII
// source before the extractor digests them, so the digest covers the text
// that is loaded.
type textCheck struct {
	table    string
	chunk    int
	cols     []string
	key      []int // positions of the key columns in cols
	charset  *charmap.Charmap
	encoding string
	replace  bool

	rows     int64
	fields   []proto.Field
	value    []byte
	row      proto.RowBuilder
	replaced map[int]*replacedText
}

// replacedText is what the replace policy did to one column in a chunk.
type replacedText struct {
	values int
	keys   []string // the first few
}

const keysPerWarning = 5

// newTextCheck returns the check for a chunk, or nil when the source's text
// needs none.
func (s *Source) newTextCheck(task *proto.ChunkTask, serverEncoding string) (*textCheck, error) {
	enc, policy := task.Options[OptionSourceEncoding], task.Options[OptionInvalidText]
	if serverEncoding != sqlASCII {
		if enc != "" {
			s.ignoredEncoding.Do(func() {
				s.log.Warn("postgres source: the source encoding option applies to SQL_ASCII databases only; PostgreSQL converts this one's text itself",
					"server_encoding", serverEncoding, "source_encoding", enc)
			})
		}
		return nil, nil
	}
	c := &textCheck{table: task.Source.String(), chunk: task.Chunk, cols: task.Cols, encoding: "UTF-8", replace: policy == InvalidTextReplace,
		replaced: map[int]*replacedText{}}
	switch policy {
	case "", InvalidTextFail, InvalidTextReplace:
	default:
		return nil, fmt.Errorf("invalid-text policy %q: want %s or %s", policy, InvalidTextFail, InvalidTextReplace)
	}
	if enc != "" {
		if c.charset = charsets[charsetKey(enc)]; c.charset == nil {
			return nil, fmt.Errorf("source encoding %q: not a single-byte encoding caravan knows", enc)
		}
		c.encoding = enc
	}
	for _, k := range task.Key {
		for i, col := range task.Cols {
			if col == k {
				c.key = append(c.key, i)
			}
		}
	}
	return c, nil
}

// line returns the row as it is to be loaded: unchanged when its text is
// fine (the common case costs one scan of the line), else converted or
// repaired field by field.
func (c *textCheck) line(line []byte) ([]byte, error) {
	c.rows++
	if c.charset == nil && utf8.Valid(line) || c.charset != nil && isASCII(line) {
		return line, nil
	}
	var err error
	if c.fields, err = proto.SplitRow(c.fields[:0], line); err != nil {
		return nil, err
	}
	c.row.Reset()
	for i, f := range c.fields {
		if f.Null {
			c.row.Null()
			continue
		}
		v, bad := c.convert(f.Value)
		if len(bad) > 0 {
			if !c.replace {
				return nil, source.Permanent(c.invalid(i, f.Value, bad))
			}
			c.note(i)
		}
		c.row.Value(v)
	}
	return c.row.Line(), nil
}

// convert returns a value as UTF-8, with U+FFFD for each byte that is not
// valid UTF-8 (or has no character in the source encoding), and those bytes.
func (c *textCheck) convert(v []byte) (out []byte, bad []byte) {
	out = c.value[:0]
	if c.charset != nil {
		for _, b := range v {
			if b < utf8.RuneSelf {
				out = append(out, b)
				continue
			}
			r := c.charset.DecodeByte(b)
			if r == utf8.RuneError {
				bad = append(bad, b)
			}
			out = utf8.AppendRune(out, r)
		}
		c.value = out
		return out, bad
	}
	if utf8.Valid(v) {
		return v, nil
	}
	for len(v) > 0 {
		r, n := utf8.DecodeRune(v)
		if r == utf8.RuneError && n == 1 {
			bad = append(bad, v[0])
		}
		out = utf8.AppendRune(out, r)
		v = v[n:]
	}
	c.value = out
	return out, bad
}

func (c *textCheck) invalid(col int, value, bad []byte) error {
	hex := make([]string, len(bad))
	for i, b := range bad {
		hex[i] = fmt.Sprintf("0x%02x", b)
	}
	what := "is not valid UTF-8"
	hint := "say which encoding it is in with --source-encoding (e.g. WIN1252), or replace such bytes with --invalid-text replace"
	if c.charset != nil {
		what = "holds bytes with no character in " + c.encoding
		hint = "check --source-encoding, or replace such bytes with --invalid-text replace"
	}
	return fmt.Errorf("table %s column %s key %s: text %s (bytes %s in %s); the source database is SQL_ASCII, which stores text unchecked: %s",
		c.table, c.colName(col), c.describeKey(), what, strings.Join(hex, " "), excerpt(value), hint)
}

func (c *textCheck) colName(i int) string {
	if i < len(c.cols) {
		return c.cols[i]
	}
	return fmt.Sprintf("#%d", i+1)
}

// describeKey names the current row by its key, or by its place in the
// chunk when the table has none.
func (c *textCheck) describeKey() string {
	if len(c.key) == 0 {
		return fmt.Sprintf("(no key; row %d of chunk %d)", c.rows, c.chunk)
	}
	parts := make([]string, 0, len(c.key))
	for _, k := range c.key {
		v := "NULL"
		if k < len(c.fields) && !c.fields[k].Null {
			v = proto.EscapeInvalidUTF8(c.fields[k].Value)
		}
		parts = append(parts, c.cols[k]+"="+v)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func (c *textCheck) note(col int) {
	r := c.replaced[col]
	if r == nil {
		r = &replacedText{}
		c.replaced[col] = r
	}
	r.values++
	if len(r.keys) < keysPerWarning {
		r.keys = append(r.keys, c.describeKey())
	}
}

// report warns once per column the replace policy changed in the chunk.
func (c *textCheck) report(log *slog.Logger) {
	cols := make([]int, 0, len(c.replaced))
	for i := range c.replaced {
		cols = append(cols, i)
	}
	sort.Ints(cols)
	for _, i := range cols {
		r := c.replaced[i]
		log.Warn("postgres source: invalid text replaced by U+FFFD", "table", c.table, "column", c.colName(i), "chunk", c.chunk,
			"values", r.values, "keys", strings.Join(r.keys, " "), "encoding", c.encoding)
	}
}

// excerpt shows a value with its invalid bytes as \xNN, cut short around
// the first of them when the value is long.
func excerpt(v []byte) string {
	const room = 80
	if len(v) <= 2*room {
		return proto.EscapeInvalidUTF8(v)
	}
	first := 0
	for first < len(v) && v[first] < utf8.RuneSelf {
		first++
	}
	start := max(first-room/2, 0)
	end := min(start+room, len(v))
	out := proto.EscapeInvalidUTF8(v[start:end])
	if start > 0 {
		out = "..." + out
	}
	if end < len(v) {
		out += "..."
	}
	return out
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
