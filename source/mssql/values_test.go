package mssql

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"
)

// The helpers below build the exact Go values go-mssqldb v1.11.2 returns
// from Rows.Scan into `any`, following its decoders in types.go, so these
// tests exercise the same shapes a server would produce.

// driverDateTime mirrors decodeDateTime: days since 1900-01-01 and 1/300 s
// ticks, the ticks rounded to milliseconds by
// threeHundredthsOfASecondToNanos (int(math.Trunc(ths/0.3+0.5)) * 1e6).
func driverDateTime(days int32, ticks uint32) time.Time {
	ns := int(math.Trunc(float64(ticks%300)/0.3+0.5)) * 1000000
	return time.Date(1900, 1, 1+int(days), 0, 0, int(ticks/300), ns, time.UTC)
}

// driverDTO mirrors decodeDateTimeOffset: the UTC wall fields plus the
// offset, in a FixedZone of that offset.
func driverDTO(y int, mo time.Month, d, h, mi, s, ns, offsetMin int) time.Time {
	return time.Date(y, mo, d, h, mi+offsetMin, s, ns, time.FixedZone("", offsetMin*60))
}

// utf16le is what CAST(CAST(col AS nvarchar) AS varbinary) returns.
func utf16le(units ...uint16) []byte {
	b := make([]byte, 2*len(units))
	for i, u := range units {
		binary.LittleEndian.PutUint16(b[2*i:], u)
	}
	return b
}

func utf16s(s string) []byte { return encodeUTF16(s) }

// wireGUID is SQL Server's wire order of the GUID whose text is given
// (decodeGuid returns it unchanged with guid conversion off).
func wireGUID(t *testing.T, text string) []byte {
	t.Helper()
	p, err := sqlServer.paramFromText(sqlType{Name: "uniqueidentifier"}, text)
	if err != nil {
		t.Fatal(err)
	}
	h := strings.ReplaceAll(p.(string), "-", "")
	var rfc [16]byte
	for i := range rfc {
		var v byte
		for _, c := range h[2*i : 2*i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			case c >= 'a' && c <= 'f':
				v |= byte(c-'a') + 10
			case c >= 'A' && c <= 'F':
				v |= byte(c-'A') + 10
			}
		}
		rfc[i] = v
	}
	w := make([]byte, 16)
	w[0], w[1], w[2], w[3] = rfc[3], rfc[2], rfc[1], rfc[0]
	w[4], w[5] = rfc[5], rfc[4]
	w[6], w[7] = rfc[7], rfc[6]
	copy(w[8:], rfc[8:])
	return w
}

type valueCase struct {
	name   string
	src    string // SQL Server type
	target string // PostgreSQL type; "" = default mapping
	raw    any
	base   string // sql_variant base type
	want   string
	opts   Options
}

func runValueCases(t *testing.T, cases []valueCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, err := parseSQLType(c.src)
			if err != nil {
				t.Fatal(err)
			}
			pg := c.target
			if pg == "" {
				pg = defaultPGType(st, c.opts.PostGIS)
			}
			k, err := parsePGType(pg)
			if err != nil {
				t.Fatal(err)
			}
			if !compatible(st, k) {
				t.Fatalf("%s -> %s not compatible", st, pg)
			}
			v, iss, err := decodeValue(st, k, c.raw, c.base)
			if err != nil {
				t.Fatal(err)
			}
			if iss.NUL != 0 || iss.Surrogates != 0 {
				t.Fatalf("unexpected issues %+v", iss)
			}
			got, err := printValue(v, k)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("%s as %s: got %q, want %q", c.src, pg, got, c.want)
			}
			if k.Name == "geometry" {
				return // the test database has no PostGIS
			}
			if back, ok := pgRoundTrip(t, pg, got); ok && back != got {
				t.Fatalf("PostgreSQL prints %q as %s back as %q", got, pg, back)
			}
			// date/time values must also be what PostgreSQL makes of SQL
			// Server's own full-precision text (but for the documented
			// clamping of the maximum; and an offset is not ignored, as
			// timestamp input would: caravan stores the UTC instant)
			instantAsLocal := v.kind == kInstant && k.Name != "timestamptz"
			if (v.kind == kTime || v.kind == kTimestamp || v.kind == kInstant) && !strings.Contains(c.name, "clamps") && !instantAsLocal {
				if fromPG, ok := pgRoundTrip(t, pg, naturalText(v)); ok && fromPG != got {
					t.Fatalf("PostgreSQL reads %q as %s and prints %q; caravan printed %q", naturalText(v), pg, fromPG, got)
				}
			}
		})
	}
}

func TestValuesNumeric(t *testing.T) {
	runValueCases(t, []valueCase{
		{name: "bit true", src: "bit", raw: true, want: "t"},
		{name: "bit false", src: "bit", raw: false, want: "f"},
		{name: "tinyint min", src: "tinyint", raw: int64(0), want: "0"},
		{name: "tinyint max", src: "tinyint", raw: int64(255), want: "255"},
		{name: "smallint min", src: "smallint", raw: int64(math.MinInt16), want: "-32768"},
		{name: "smallint max", src: "smallint", raw: int64(math.MaxInt16), want: "32767"},
		{name: "int min", src: "int", raw: int64(math.MinInt32), want: "-2147483648"},
		{name: "int max", src: "int", raw: int64(math.MaxInt32), want: "2147483647"},
		{name: "bigint min", src: "bigint", raw: int64(math.MinInt64), want: "-9223372036854775808"},
		{name: "bigint max", src: "bigint", raw: int64(math.MaxInt64), want: "9223372036854775807"},
		// decodeDecimal returns []byte text with the column's scale
		{name: "decimal(38,0) max", src: "decimal(38,0)", raw: []byte("99999999999999999999999999999999999999"), want: "99999999999999999999999999999999999999"},
		{name: "decimal(38,0) min", src: "decimal(38,0)", raw: []byte("-99999999999999999999999999999999999999"), want: "-99999999999999999999999999999999999999"},
		{name: "decimal(38,38) max", src: "decimal(38,38)", raw: []byte("0.99999999999999999999999999999999999999"), want: "0.99999999999999999999999999999999999999"},
		{name: "decimal(38,38) tiny", src: "decimal(38,38)", raw: []byte("-0.00000000000000000000000000000000000001"), want: "-0.00000000000000000000000000000000000001"},
		{name: "numeric(19,4)", src: "numeric(19,4)", raw: []byte("12.3400"), want: "12.3400"},
		{name: "decimal zero", src: "decimal(5,2)", raw: []byte("0.00"), want: "0.00"},
		// decodeMoney: int64 / 10^4 through decimal.ScaleBytes
		{name: "money max", src: "money", raw: []byte("922337203685477.5807"), want: "922337203685477.5807"},
		{name: "money min", src: "money", raw: []byte("-922337203685477.5808"), want: "-922337203685477.5808"},
		{name: "money small", src: "money", raw: []byte("-0.0001"), want: "-0.0001"},
		{name: "smallmoney max", src: "smallmoney", raw: []byte("214748.3647"), want: "214748.3647"},
		{name: "smallmoney min", src: "smallmoney", raw: []byte("-214748.3648"), want: "-214748.3648"},
		// float: typeFltN size 8 -> float64; real: size 4 -> float64(float32)
		{name: "float max", src: "float", raw: math.MaxFloat64, want: "1.7976931348623157e+308"},
		{name: "float min", src: "float", raw: -math.MaxFloat64, want: "-1.7976931348623157e+308"},
		{name: "float smallest normal", src: "float", raw: 2.2250738585072014e-308, want: "2.2250738585072014e-308"},
		{name: "float zero", src: "float", raw: 0.0, want: "0"},
		{name: "float 15 digits", src: "float", raw: 123456789012345.0, want: "123456789012345"},
		{name: "float 1e15", src: "float", raw: 1e15, want: "1e+15"},
		{name: "float 1e-4", src: "float", raw: 0.0001, want: "0.0001"},
		{name: "float 1e-5", src: "float", raw: 0.00001, want: "1e-05"},
		{name: "float 0.1", src: "float", raw: 0.1, want: "0.1"},
		{name: "float(24) is real", src: "float(24)", raw: float64(float32(0.1)), want: "0.1"},
		{name: "real max", src: "real", raw: float64(float32(math.MaxFloat32)), want: "3.4028235e+38"},
		{name: "real min", src: "real", raw: float64(-float32(math.MaxFloat32)), want: "-3.4028235e+38"},
		{name: "real smallest normal", src: "real", raw: float64(float32(1.17549435e-38)), want: "1.1754944e-38"},
		{name: "real 1e6", src: "real", raw: float64(float32(1234567)), want: "1.234567e+06"},
		{name: "real 1e5", src: "real", raw: float64(float32(123456.7)), want: "123456.7"},
	})
}

func TestValuesTemporal(t *testing.T) {
	runValueCases(t, []valueCase{
		// decodeDate: time.Date(1, 1, 1+days, ...)
		{name: "date min", src: "date", raw: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), want: "0001-01-01"},
		{name: "date max", src: "date", raw: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), want: "9999-12-31"},
		// decodeTime: time.Date(1, 1, 1, 0, 0, sec, ns, loc)
		{name: "time min", src: "time(7)", raw: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), want: "00:00:00"},
		{name: "time max clamps", src: "time(7)", raw: time.Date(1, 1, 1, 23, 59, 59, 999999900, time.UTC), want: "23:59:59.999999"},
		{name: "time tie to even down", src: "time(7)", raw: time.Date(1, 1, 1, 12, 34, 56, 123456500, time.UTC), want: "12:34:56.123456"},
		{name: "time tie to even up", src: "time(7)", raw: time.Date(1, 1, 1, 12, 34, 56, 123457500, time.UTC), want: "12:34:56.123458"},
		{name: "time(3)", src: "time(3)", raw: time.Date(1, 1, 1, 10, 0, 0, 500000000, time.UTC), want: "10:00:00.5"},
		{name: "time(0)", src: "time(0)", raw: time.Date(1, 1, 1, 10, 0, 1, 0, time.UTC), want: "10:00:01"},
		// decodeDateTime: 1753-01-01 is day -53690; 9999-12-31 is day 2958463
		{name: "datetime min", src: "datetime", raw: driverDateTime(-53690, 0), want: "1753-01-01 00:00:00"},
		{name: "datetime max", src: "datetime", raw: driverDateTime(2958463, 25919999), want: "9999-12-31 23:59:59.997"},
		{name: "datetime 1 tick", src: "datetime", raw: driverDateTime(0, 1), want: "1900-01-01 00:00:00.003"},
		{name: "datetime 2 ticks", src: "datetime", raw: driverDateTime(0, 2), want: "1900-01-01 00:00:00.007"},
		{name: "datetime half second", src: "datetime", raw: driverDateTime(43829, 150), want: "2020-01-01 00:00:00.5"},
		// decodeDateTim4: days since 1900 and minutes
		{name: "smalldatetime min", src: "smalldatetime", raw: time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), want: "1900-01-01 00:00:00"},
		{name: "smalldatetime max", src: "smalldatetime", raw: time.Date(1900, 1, 1+65535, 0, 1439, 0, 0, time.UTC), want: "2079-06-06 23:59:00"},
		// decodeDateTime2
		{name: "datetime2 min", src: "datetime2(7)", raw: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), want: "0001-01-01 00:00:00"},
		{name: "datetime2 max clamps", src: "datetime2(7)", raw: time.Date(9999, 12, 31, 23, 59, 59, 999999900, time.UTC), want: "9999-12-31 23:59:59.999999"},
		{name: "datetime2 rounds into next day", src: "datetime2(7)", raw: time.Date(2020, 1, 1, 23, 59, 59, 999999500, time.UTC), want: "2020-01-02 00:00:00"},
		{name: "datetime2(3)", src: "datetime2(3)", raw: time.Date(2020, 2, 29, 1, 2, 3, 450000000, time.UTC), want: "2020-02-29 01:02:03.45"},
		{name: "datetime2(0)", src: "datetime2(0)", raw: time.Date(2020, 2, 29, 1, 2, 3, 0, time.UTC), want: "2020-02-29 01:02:03"},
		// decodeDateTimeOffset: the same instant, printed in UTC
		{name: "dto positive offset", src: "datetimeoffset(7)", raw: driverDTO(2020, 1, 1, 4, 30, 0, 500000000, 330), want: "2020-01-01 04:30:00.5+00"},
		{name: "dto negative offset", src: "datetimeoffset(7)", raw: driverDTO(2020, 1, 1, 14, 0, 0, 0, -840), want: "2020-01-01 14:00:00+00"},
		{name: "dto min", src: "datetimeoffset(7)", raw: driverDTO(1, 1, 1, 0, 0, 0, 0, 0), want: "0001-01-01 00:00:00+00"},
		{name: "dto max clamps", src: "datetimeoffset(7)", raw: driverDTO(9999, 12, 31, 23, 59, 59, 999999900, 0), want: "9999-12-31 23:59:59.999999+00"},
	})
}

func TestValuesText(t *testing.T) {
	runValueCases(t, []valueCase{
		{name: "char pads", src: "char(10) COLLATE Latin1_General_CI_AS", raw: utf16s("abc       "), want: "abc       "},
		{name: "char DBCS pads to characters", src: "char(10) COLLATE Japanese_CI_AS", raw: utf16s("日本      "), want: "日本        "},
		{name: "nchar beyond BMP", src: "nchar(5) COLLATE Latin1_General_CI_AS", raw: utf16s("😀   "), want: "😀    "},
		{name: "varchar latin", src: "varchar(50) COLLATE Latin1_General_CI_AS", raw: utf16s("héllo"), want: "héllo"},
		{name: "varchar empty", src: "varchar(50) COLLATE Latin1_General_CI_AS", raw: []byte{}, want: ""},
		{name: "varchar max", src: "varchar(max) COLLATE Latin1_General_100_CI_AS_SC_UTF8", raw: utf16s("€ and ∑"), want: "€ and ∑"},
		{name: "nvarchar surrogate pair", src: "nvarchar(20) COLLATE Latin1_General_CI_AS", raw: utf16le(0xd834, 0xdd1e, 0x41), want: "𝄞A"},
		{name: "nvarchar max", src: "nvarchar(max) COLLATE Latin1_General_CI_AS", raw: utf16s("tab\tnewline\nbackslash\\"), want: "tab\tnewline\nbackslash\\"},
		{name: "text", src: "text COLLATE Latin1_General_CI_AS", raw: utf16s("legacy"), want: "legacy"},
		{name: "ntext", src: "ntext COLLATE Latin1_General_CI_AS", raw: utf16s("légacy 😀"), want: "légacy 😀"},
		{name: "xml", src: "xml", raw: "<a x=\"1\">é</a>", want: "<a x=\"1\">é</a>"},
		{name: "hierarchyid root", src: "hierarchyid", raw: "/", want: "/"},
		{name: "hierarchyid path", src: "hierarchyid", raw: "/1/2.5/-3/", want: "/1/2.5/-3/"},
		{name: "geography WKT", src: "geography", raw: "POINT (-122.35 47.65)", want: "POINT (-122.35 47.65)"},
	})
}

func TestValuesBinaryAndGUID(t *testing.T) {
	runValueCases(t, []valueCase{
		{name: "binary", src: "binary(4)", raw: []byte{0, 1, 0xfe, 0xff}, want: `\x0001feff`},
		{name: "varbinary empty", src: "varbinary(max)", raw: []byte{}, want: `\x`},
		{name: "image", src: "image", raw: []byte("GIF89a"), want: `\x474946383961`},
		{name: "rowversion", src: "rowversion", raw: []byte{0, 0, 0, 0, 0, 0, 0x07, 0xd1}, want: `\x00000000000007d1`},
		// SQL Server's text of this GUID is 6F9619FF-8B86-D011-B42D-00C04FC964FF;
		// on the wire its first three groups are little-endian
		{name: "uniqueidentifier", src: "uniqueidentifier", raw: []byte{0xff, 0x19, 0x96, 0x6f, 0x86, 0x8b, 0x11, 0xd0, 0xb4, 0x2d, 0x00, 0xc0, 0x4f, 0xc9, 0x64, 0xff}, want: "6f9619ff-8b86-d011-b42d-00c04fc964ff"},
		{name: "uniqueidentifier zero", src: "uniqueidentifier", raw: make([]byte, 16), want: "00000000-0000-0000-0000-000000000000"},
		{name: "uniqueidentifier max", src: "uniqueidentifier", raw: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, want: "ffffffff-ffff-ffff-ffff-ffffffffffff"},
	})
}

func TestValuesVariant(t *testing.T) {
	// readVariantType returns each base type's usual Go value
	runValueCases(t, []valueCase{
		{name: "int", src: "sql_variant", raw: int64(42), base: "int", want: "42"},
		{name: "bit", src: "sql_variant", raw: true, base: "bit", want: "1"},
		{name: "decimal", src: "sql_variant", raw: []byte("12.50"), base: "decimal", want: "12.50"},
		{name: "money", src: "sql_variant", raw: []byte("1.0000"), base: "money", want: "1.0000"},
		{name: "float", src: "sql_variant", raw: 0.1, base: "float", want: "0.1"},
		{name: "real", src: "sql_variant", raw: float64(float32(0.1)), base: "real", want: "0.1"},
		{name: "nvarchar", src: "sql_variant", raw: "abc 😀", base: "nvarchar", want: "abc 😀"},
		{name: "varbinary", src: "sql_variant", raw: []byte{1, 2}, base: "varbinary", want: "0x0102"},
		{name: "uniqueidentifier", src: "sql_variant", raw: wireGUID(t, "6F9619FF-8B86-D011-B42D-00C04FC964FF"), base: "uniqueidentifier", want: "6F9619FF-8B86-D011-B42D-00C04FC964FF"},
		{name: "datetime", src: "sql_variant", raw: driverDateTime(43829, 1), base: "datetime", want: "2020-01-01 00:00:00.003"},
		{name: "datetime2", src: "sql_variant", raw: time.Date(2020, 1, 1, 10, 0, 0, 123456700, time.UTC), base: "datetime2", want: "2020-01-01 10:00:00.1234567"},
		{name: "datetime2 whole", src: "sql_variant", raw: time.Date(2020, 1, 1, 10, 0, 0, 0, time.UTC), base: "datetime2", want: "2020-01-01 10:00:00"},
		{name: "datetimeoffset", src: "sql_variant", raw: driverDTO(2020, 1, 1, 4, 30, 0, 0, 330), base: "datetimeoffset", want: "2020-01-01 10:00:00 +05:30"},
		{name: "date", src: "sql_variant", raw: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), base: "date", want: "2020-01-01"},
	})
}

func TestValuesOverrides(t *testing.T) {
	runValueCases(t, []valueCase{
		{name: "datetimeoffset as text keeps offset", src: "datetimeoffset(7)", target: "text", raw: driverDTO(2020, 1, 1, 4, 30, 0, 500000000, 330), want: "2020-01-01 10:00:00.5000000 +05:30"},
		{name: "datetime2 as timestamptz", src: "datetime2(7)", target: "timestamptz", raw: time.Date(2020, 1, 1, 10, 0, 0, 0, time.UTC), want: "2020-01-01 10:00:00+00"},
		{name: "datetimeoffset as timestamp", src: "datetimeoffset(3)", target: "timestamp", raw: driverDTO(2020, 1, 1, 4, 30, 0, 0, 330), want: "2020-01-01 04:30:00"},
		{name: "datetime2 as date", src: "datetime2(7)", target: "date", raw: time.Date(2020, 1, 1, 23, 0, 0, 0, time.UTC), want: "2020-01-01"},
		{name: "typmod rounding after 2000", src: "datetime2(7)", target: "timestamp(0)", raw: time.Date(2000, 1, 1, 0, 0, 0, 500000000, time.UTC), want: "2000-01-01 00:00:01"},
		{name: "typmod rounding before 2000", src: "datetime2(7)", target: "timestamp(0)", raw: time.Date(1999, 12, 31, 23, 59, 59, 500000000, time.UTC), want: "1999-12-31 23:59:59"},
		{name: "time typmod", src: "time(7)", target: "time(2)", raw: time.Date(1, 1, 1, 10, 0, 0, 125000000, time.UTC), want: "10:00:00.13"},
		{name: "decimal rescale half away", src: "decimal(10,2)", target: "numeric(10,1)", raw: []byte("-12.35"), want: "-12.4"},
		{name: "decimal unconstrained keeps scale", src: "decimal(10,4)", target: "numeric", raw: []byte("12.3400"), want: "12.3400"},
		{name: "decimal as float8", src: "decimal(38,20)", target: "double precision", raw: []byte("0.10000000000000000000"), want: "0.1"},
		{name: "decimal as bigint", src: "decimal(18,0)", target: "bigint", raw: []byte("-123456789012345678"), want: "-123456789012345678"},
		{name: "int as numeric", src: "int", target: "numeric(12,2)", raw: int64(5), want: "5.00"},
		{name: "bigint as float8", src: "bigint", target: "float8", raw: int64(math.MaxInt64), want: "9.223372036854776e+18"},
		{name: "bigint as float4", src: "bigint", target: "real", raw: int64(16777217), want: "1.6777216e+07"},
		{name: "float as real", src: "float", target: "real", raw: 0.1, want: "0.1"},
		{name: "real as float8", src: "real", target: "float8", raw: float64(float32(0.1)), want: "0.10000000149011612"},
		{name: "float as numeric", src: "float", target: "numeric", raw: 1e20, want: "100000000000000000000"},
		{name: "bit as int", src: "bit", target: "integer", raw: true, want: "1"},
		{name: "uuid as text", src: "uniqueidentifier", target: "text", raw: wireGUID(t, "6F9619FF-8B86-D011-B42D-00C04FC964FF"), want: "6F9619FF-8B86-D011-B42D-00C04FC964FF"},
		{name: "binary as text", src: "varbinary(10)", target: "text", raw: []byte{0xab}, want: "0xAB"},
		{name: "nvarchar as char", src: "nvarchar(3) COLLATE Latin1_General_CI_AS", target: "character(5)", raw: utf16s("ab"), want: "ab   "},
		{name: "varchar as varchar drops trailing spaces", src: "varchar(10) COLLATE Latin1_General_CI_AS", target: "varchar(3)", raw: utf16s("ab    "), want: "ab "},
		{name: "datetime2 as text", src: "datetime2(7)", target: "text", raw: time.Date(2020, 1, 1, 10, 0, 0, 100, time.UTC), want: "2020-01-01 10:00:00.0000001"},
		{name: "time as text", src: "time(3)", target: "text", raw: time.Date(1, 1, 1, 10, 0, 0, 0, time.UTC), want: "10:00:00.000"},
		{name: "bit as text", src: "bit", target: "text", raw: false, want: "0"},
		{name: "nvarchar as xml", src: "nvarchar(max) COLLATE Latin1_General_CI_AS", target: "xml", raw: utf16s("<a/>"), want: "<a/>"},
	})
}

func TestValuesPostGIS(t *testing.T) {
	// CAST(col.STSrid AS binary(4)) + col.AsBinaryZM() of POINT(1 2) SRID 4326;
	// PostGIS prints ST_GeomFromEWKT('SRID=4326;POINT(1 2)') as below
	wkb := []byte{0, 0, 0x10, 0xe6, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0x40}
	runValueCases(t, []valueCase{
		{name: "point", src: "geography", raw: wkb, want: "0101000020E6100000000000000000F03F0000000000000040", opts: Options{PostGIS: true}},
	})
}

func TestValueErrors(t *testing.T) {
	cases := []struct {
		src, target string
		raw         any
	}{
		{"int", "smallint", int64(40000)},
		{"decimal(10,2)", "integer", []byte("1.50")},
		{"decimal(10,2)", "numeric(3,2)", []byte("12.00")},
		{"float", "real", 1e300},
		{"nvarchar(10) COLLATE Latin1_General_CI_AS", "character(2)", utf16s("abc")},
		{"int", "integer", "not an int64"},
		{"uniqueidentifier", "uuid", []byte{1, 2, 3}},
		{"nvarchar(10) COLLATE Latin1_General_CI_AS", "text", []byte{1}},
	}
	for _, c := range cases {
		st, _ := parseSQLType(c.src)
		k, _ := parsePGType(c.target)
		v, _, err := decodeValue(st, k, c.raw, "")
		if err == nil {
			_, err = printValue(v, k)
		}
		if err == nil {
			t.Errorf("%s -> %s of %v: no error", c.src, c.target, c.raw)
		}
	}
}

func TestTextIssues(t *testing.T) {
	st, _ := parseSQLType("nvarchar(10) COLLATE Latin1_General_CI_AS")
	k, _ := parsePGType("text")
	v, iss, err := decodeValue(st, k, utf16le('a', 0, 'b', 0xd800, 'c', 0xdc00), "")
	if err != nil {
		t.Fatal(err)
	}
	if iss.NUL != 1 || iss.Surrogates != 2 {
		t.Fatalf("issues %+v", iss)
	}
	if v.s != "a\x00b\uFFFDc\uFFFD" {
		t.Fatalf("decoded %q", v.s)
	}
}
