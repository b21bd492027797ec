package mssql

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Values go through two steps: decodeValue turns what go-mssqldb's
// Rows.Scan into `any` yields for a SQL Server type (the Go types are those
// of go-mssqldb's types.go readers, cited below) into a neutral value;
// printValue prints that value as PostgreSQL prints the target type.

type valKind uint8

const (
	kBool valKind = iota + 1
	kInt
	kDec   // exact decimal text
	kFloat // f, with f32 for values of a real
	kDate  // ts: date
	kTime  // ts.Nanos: time of day
	kTimestamp
	kInstant // ts: UTC wall time; offset: the source's offset in minutes
	kText
	kBytes
	kUUID // u: RFC 4122 order
	kGeo  // b: EWKB
)

type value struct {
	kind   valKind
	i      int64
	f      float64
	f32    bool
	s      string
	b      []byte
	u      [16]byte
	ts     wallTime
	offset int // minutes east of UTC (datetimeoffset)
	digits int // the source's fractional-second digits, for natural text
}

// textIssues counts what the value policy changed in one value.
type textIssues struct {
	NUL        int
	Surrogates int
}

// decodeValue converts one non-NULL driver value. raw is the column's
// first select expression; variantBase is SQL_VARIANT_PROPERTY(col,
// 'BaseType') for sql_variant columns.
func decodeValue(t sqlType, k pgKind, raw any, variantBase string) (value, textIssues, error) {
	var v value
	iss, err := decodeInto(&v, &t, &k, raw, variantBase)
	return v, iss, err
}

// decodeInto is decodeValue into *v, which it overwrites whole. The
// extractor decodes every value of every row into the one value it
// reuses: a value is some 150 bytes, and copying it in and out of each
// call was a tenth of the extractor's CPU.
func decodeInto(v *value, t *sqlType, k *pgKind, raw any, variantBase string) (textIssues, error) {
	var iss textIssues
	*v = value{}
	switch t.Name {
	case "bit":
		b, ok := raw.(bool) // readFixedType/typeBitN: buf[0] != 0
		if !ok {
			return iss, typeErr(*t, raw)
		}
		v.kind = kBool
		if b {
			v.i = 1
		}
		return iss, nil
	case "tinyint", "smallint", "int", "bigint":
		i, ok := raw.(int64) // every integer width is returned as int64
		if !ok {
			return iss, typeErr(*t, raw)
		}
		v.kind, v.i = kInt, i
		return iss, nil
	case "decimal", "numeric", "money", "smallmoney":
		// decodeDecimal and decodeMoney/decodeMoney4 return []byte decimal
		// text with exactly the column's scale (4 for money): exact, never
		// through float64.
		switch x := raw.(type) {
		case []byte:
			v.s = string(x)
		case string:
			if t.Precision != 0 {
				return iss, typeErr(*t, raw)
			}
			v.s = x // an unconstrained numeric, read as its text (selectExprs)
		default:
			return iss, typeErr(*t, raw)
		}
		if _, _, _, err := decimalParts(v.s); err != nil {
			return iss, err
		}
		v.kind = kDec
		return iss, nil
	case "float", "real":
		f, ok := raw.(float64) // real arrives as float64(float32) (typeFltN, size 4)
		if !ok {
			return iss, typeErr(*t, raw)
		}
		v.kind, v.f, v.f32 = kFloat, f, t.Name == "real"
		return iss, nil
	case "date", "time", "datetime", "datetime2", "smalldatetime", "datetimeoffset":
		tm, ok := raw.(time.Time)
		if !ok {
			return iss, typeErr(*t, raw)
		}
		*v = decodeTime(*t, tm)
		return iss, nil
	case "char", "varchar", "text", "nchar", "nvarchar", "ntext":
		var s string
		switch x := raw.(type) {
		case []byte: // CAST(CAST(col AS nvarchar) AS varbinary): UTF-16LE (SQL Server)
			var bad int
			var err error
			if s, bad, err = decodeUTF16(x); err != nil {
				return iss, err
			}
			iss.Surrogates = bad
		case string: // CAST(col AS nvarchar), decoded by the driver (Babelfish: dialect.go)
			s = x
		default:
			return iss, typeErr(*t, raw)
		}
		iss.NUL = strings.Count(s, "\x00")
		v.kind, v.s = kText, s
		return iss, nil
	case "binary", "varbinary", "image", "rowversion":
		b, ok := raw.([]byte) // a copy (readShortLenType copies; PLP buffers are fresh)
		if !ok {
			return iss, typeErr(*t, raw)
		}
		v.kind, v.b = kBytes, b
		return iss, nil
	case "uniqueidentifier":
		b, ok := raw.([]byte) // decodeGuid: wire (mixed-endian) order
		if !ok {
			return iss, typeErr(*t, raw)
		}
		u, err := guidToRFC(b)
		if err != nil {
			return iss, err
		}
		v.kind, v.u = kUUID, u
		return iss, nil
	case "xml", "hierarchyid":
		s, ok := raw.(string) // decodeXml; hierarchyid is read as col.ToString()
		if !ok {
			return iss, typeErr(*t, raw)
		}
		iss.NUL = strings.Count(s, "\x00")
		v.kind, v.s = kText, s
		return iss, nil
	case "geography", "geometry":
		if k.Name == "geometry" {
			b, ok := raw.([]byte)
			if !ok {
				return iss, typeErr(*t, raw)
			}
			e, err := sridWKBToEWKB(b)
			if err != nil {
				return iss, err
			}
			v.kind, v.b = kGeo, e
			return iss, nil
		}
		s, ok := raw.(string) // col.AsTextZM(): WKT with Z and M
		if !ok {
			return iss, typeErr(*t, raw)
		}
		v.kind, v.s = kText, s
		return iss, nil
	case "sql_variant":
		var err error
		*v, iss, err = decodeVariant(raw, variantBase)
		return iss, err
	}
	return iss, fmt.Errorf("type %s: no value conversion", *t)
}

func typeErr(t sqlType, raw any) error {
	return fmt.Errorf("type %s: driver returned %T, not the expected Go type", t, raw)
}

// decodeTime reads the time.Time values of go-mssqldb. They are built with
// time.Date from the wire fields in the connection's time zone (decodeDate,
// decodeTime, decodeDateTime2, decodeDateTime, decodeDateTim4), so their
// wall clock IS the SQL Server value; Open pins that zone to UTC so no
// daylight-saving gap can move a wall clock. datetime's 1/300 s ticks are
// already rounded by the driver to the millisecond SQL Server displays
// (.000/.003/.007: threeHundredthsOfASecondToNanos), which is how SQL
// Server itself presents and converts them. datetimeoffset comes in a
// FixedZone of its offset (decodeDateTimeOffset): the instant is exact.
func decodeTime(t sqlType, tm time.Time) value {
	wall := func(x time.Time) wallTime {
		return wallTime{Year: x.Year(), Month: int(x.Month()), Day: x.Day(),
			Nanos: int64(x.Hour())*3600e9 + int64(x.Minute())*60e9 + int64(x.Second())*1e9 + int64(x.Nanosecond())}
	}
	switch t.Name {
	case "date":
		return value{kind: kDate, ts: wall(tm)}
	case "time":
		w := wall(tm)
		if tm.Year() == 1 && tm.Month() == 1 && tm.Day() == 2 {
			// Babelfish keeps time as PostgreSQL's, whose end of day is
			// 24:00:00 (time(7) 23:59:59.9999999 rounds to it); go-mssqldb
			// hands that over as midnight of the next day
			w.Nanos += 86400e9
		}
		return value{kind: kTime, ts: w, digits: t.Scale}
	case "datetime":
		return value{kind: kTimestamp, ts: wall(tm), digits: 3}
	case "smalldatetime":
		return value{kind: kTimestamp, ts: wall(tm), digits: 0}
	case "datetime2":
		return value{kind: kTimestamp, ts: wall(tm), digits: t.Scale}
	}
	_, off := tm.Zone()
	return value{kind: kInstant, ts: wall(tm.UTC()), offset: off / 60, digits: t.Scale}
}

// decodeVariant reads a sql_variant by its base type (readVariantType in
// go-mssqldb returns the base type's usual Go value) and keeps it as its
// natural text: the column becomes text.
func decodeVariant(raw any, base string) (value, textIssues, error) {
	var iss textIssues
	bt := strings.ToLower(base)
	switch bt {
	case "nchar", "nvarchar", "char", "varchar":
		// the driver decodes these itself (decodeChar/decodeNChar): caravan
		// cannot see unpaired surrogates inside a variant
		s, ok := raw.(string)
		if !ok {
			return value{}, iss, fmt.Errorf("sql_variant of %s: driver returned %T", base, raw)
		}
		iss.NUL = strings.Count(s, "\x00")
		return value{kind: kText, s: s}, iss, nil
	case "time", "datetime2", "datetimeoffset":
		bt += "(7)"
	case "decimal", "numeric":
		bt += "(38,0)" // precision and scale do not matter: the text is exact
	case "binary", "varbinary":
		bt += "(8000)"
	}
	t, err := parseSQLType(bt)
	if err != nil {
		return value{}, iss, fmt.Errorf("sql_variant: base type %q: %w", base, err)
	}
	v, iss, err := decodeValue(t, pgKind{Name: "text"}, raw, "")
	if err != nil {
		return value{}, iss, fmt.Errorf("sql_variant of %s: %w", base, err)
	}
	if v.kind == kTime || v.kind == kTimestamp || v.kind == kInstant {
		v.digits = trimDigits(v.ts.Nanos, v.digits)
	}
	return value{kind: kText, s: naturalText(v)}, iss, nil
}

// trimDigits drops trailing zero digits of a fraction: a variant does not
// say its scale, so its text shows what the value needs.
func trimDigits(nanos int64, digits int) int {
	frac := nanos % 1e9
	for digits > 0 && frac%int64(math.Pow10(10-digits)) == 0 {
		digits--
	}
	return digits
}

// naturalText is a value's text for text targets and sql_variant: SQL
// Server's own rendering (CONVERT style 121 for date/time, 0x hex for
// binary, upper-case GUIDs, 1/0 for bit), full source precision, the
// datetimeoffset's offset kept. A text column holds what the user saw.
func naturalText(v value) string {
	switch v.kind {
	case kBool, kInt:
		return strconv.FormatInt(v.i, 10)
	case kDec, kText:
		return v.s
	case kFloat:
		if v.f32 {
			return formatFloat(v.f, 32)
		}
		return formatFloat(v.f, 64)
	case kDate:
		return fmt.Sprintf("%04d-%02d-%02d", v.ts.Year, v.ts.Month, v.ts.Day)
	case kTime:
		return clockDigits(v.ts.Nanos, v.digits)
	case kTimestamp:
		return fmt.Sprintf("%04d-%02d-%02d %s", v.ts.Year, v.ts.Month, v.ts.Day, clockDigits(v.ts.Nanos, v.digits))
	case kInstant:
		l := localWall(v.ts, v.offset)
		sign, off := '+', v.offset
		if off < 0 {
			sign, off = '-', -off
		}
		return fmt.Sprintf("%04d-%02d-%02d %s %c%02d:%02d", l.Year, l.Month, l.Day, clockDigits(l.Nanos, v.digits), sign, off/60, off%60)
	case kBytes:
		return "0x" + strings.ToUpper(fmt.Sprintf("%x", v.b))
	case kUUID:
		return strings.ToUpper(formatUUID(v.u))
	case kGeo:
		return formatEWKB(v.b)
	}
	return ""
}

// clockDigits prints hh:mm:ss with exactly digits fraction digits.
func clockDigits(nanos int64, digits int) string {
	s := nanos / 1e9
	out := fmt.Sprintf("%02d:%02d:%02d", s/3600, s/60%60, s%60)
	if digits > 0 {
		out += "." + fmt.Sprintf("%09d", nanos%1e9)[:digits]
	}
	return out
}

// localWall moves a UTC wall time by offset minutes.
func localWall(w wallTime, offset int) wallTime {
	ns := w.Nanos + int64(offset)*60e9
	days := daysFromCivil(w.Year, w.Month, w.Day)
	for ns < 0 {
		ns += 86400e9
		days--
	}
	for ns >= 86400e9 {
		ns -= 86400e9
		days++
	}
	y, m, d := civilFromDays(days)
	return wallTime{Year: y, Month: m, Day: d, Nanos: ns}
}

// printValue prints a value as PostgreSQL prints the target type k.
func printValue(v value, k pgKind) (string, error) {
	b, err := appendValue(nil, &v, &k)
	return string(b), err
}

// appendValue appends to dst what printValue prints. The extractor calls
// it for every value of every row, into one buffer it reuses: the usual
// kinds (integers, numeric, float, timestamps, uuid, bytea) are printed
// without building a string per value.
func appendValue(dst []byte, v *value, k *pgKind) ([]byte, error) {
	switch k.Name {
	case "bool":
		if v.kind == kBool {
			if v.i != 0 {
				return append(dst, 't'), nil
			}
			return append(dst, 'f'), nil
		}
	case "int2", "int4", "int8":
		return appendInt(dst, v, k)
	case "numeric":
		switch v.kind {
		case kInt:
			return appendNumeric(dst, strconv.FormatInt(v.i, 10), *k)
		case kDec:
			return appendNumeric(dst, v.s, *k)
		case kFloat:
			if math.IsNaN(v.f) || math.IsInf(v.f, 0) {
				return dst, fmt.Errorf("%v does not fit numeric", v.f)
			}
			bits := 64
			if v.f32 {
				bits = 32
			}
			return appendNumeric(dst, strconv.FormatFloat(v.f, 'f', -1, bits), *k)
		}
	case "float4", "float8":
		return appendFloatValue(dst, v, k)
	case "date":
		switch v.kind {
		case kDate, kTimestamp, kInstant:
			return appendDate(dst, v.ts), nil
		}
	case "time":
		if v.kind == kTime {
			return appendTime(dst, clampToDomain(v.ts, true).Nanos, k.Mod), nil
		}
	case "timestamp", "timestamptz":
		switch v.kind {
		case kDate, kTimestamp, kInstant:
			return appendTimestamp(dst, clampToDomain(v.ts, false), k.Mod, k.Name == "timestamptz"), nil
		}
	case "bpchar":
		s := naturalText(*v)
		if !k.HasMod {
			return append(dst, s...), nil
		}
		s, err := padBpchar(s, k.Mod)
		return append(dst, s...), err
	case "text":
		s := naturalText(*v)
		if !k.HasMod {
			return append(dst, s...), nil
		}
		s, err := fitVarchar(s, k.Mod)
		return append(dst, s...), err
	case "xml":
		if v.kind == kText {
			return append(dst, v.s...), nil
		}
	case "bytea":
		if v.kind == kBytes {
			return appendBytea(dst, v.b), nil
		}
	case "uuid":
		if v.kind == kUUID {
			return appendUUID(dst, v.u), nil
		}
	case "geometry":
		if v.kind == kGeo {
			return append(dst, formatEWKB(v.b)...), nil
		}
	}
	return dst, fmt.Errorf("cannot print this value as %s", k.Name)
}

// lastMicro is 23:59:59.999999 in nanoseconds.
const lastMicro = 86399999999000

// clampToDomain keeps microsecond rounding inside SQL Server's domain: the
// maximum time(7) 23:59:59.9999999 and datetime2(7) 9999-12-31
// 23:59:59.9999999 (the usual "end of time" sentinels) would round half to
// even to 24:00:00 and 10000-01-01. They become 23:59:59.999999 and
// 9999-12-31 23:59:59.999999 instead, so the maximum stays the maximum;
// every other value rounds to the nearest microsecond.
func clampToDomain(w wallTime, timeOnly bool) wallTime {
	if w.Nanos > lastMicro && w.Nanos%nsPerUs != 0 && roundNanosToMicros(w.Nanos)*nsPerUs >= 86400e9 &&
		(timeOnly || (w.Year == 9999 && w.Month == 12 && w.Day == 31)) {
		w.Nanos = lastMicro
	}
	return w
}

// intRange is the range of a PostgreSQL integer type.
func intRange(name string) (lo, hi int64) {
	switch name {
	case "int2":
		return math.MinInt16, math.MaxInt16
	case "int4":
		return math.MinInt32, math.MaxInt32
	}
	return math.MinInt64, math.MaxInt64
}

func appendInt(dst []byte, v *value, k *pgKind) ([]byte, error) {
	var i int64
	switch v.kind {
	case kBool, kInt:
		i = v.i
	case kDec:
		neg, ip, fp, err := decimalParts(v.s)
		if err != nil {
			return dst, err
		}
		if strings.Trim(fp, "0") != "" {
			return dst, fmt.Errorf("%s is not an integer", v.s)
		}
		if neg {
			ip = "-" + ip
		}
		if i, err = strconv.ParseInt(ip, 10, 64); err != nil {
			return dst, fmt.Errorf("%s is out of range for %s", v.s, k.Name)
		}
	default:
		return dst, fmt.Errorf("cannot print this value as %s", k.Name)
	}
	if lo, hi := intRange(k.Name); i < lo || i > hi {
		return dst, fmt.Errorf("%d is out of range for %s", i, k.Name)
	}
	return strconv.AppendInt(dst, i, 10), nil
}

func appendFloatValue(dst []byte, v *value, k *pgKind) ([]byte, error) {
	bits := 64
	if k.Name == "float4" {
		bits = 32
	}
	var f float64
	switch v.kind {
	case kInt:
		f = float64(v.i)
		if bits == 32 {
			f = float64(float32(v.i)) // one rounding, as strtof of the text
		}
	case kDec:
		var err error
		if f, err = strconv.ParseFloat(v.s, bits); err != nil {
			return dst, fmt.Errorf("%s is out of range for %s", v.s, k.Name)
		}
	case kFloat:
		f = v.f
	default:
		return dst, fmt.Errorf("cannot print this value as %s", k.Name)
	}
	if bits == 32 {
		// float4in rounds the text to the nearest float32 (strtof), as does
		// Go's conversion; out of range is an error on COPY
		f32 := float32(f)
		if math.IsInf(float64(f32), 0) && !math.IsInf(f, 0) {
			return dst, fmt.Errorf("%v is out of range for real", f)
		}
		f = float64(f32)
	}
	return appendFloat(dst, f, bits), nil
}
