package mssql

import (
	"bytes"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// The functions in this file print values exactly as PostgreSQL's output
// functions do under caravan's session settings (DateStyle ISO, TimeZone
// UTC, extra_float_digits 1, bytea_output hex): that text is what the
// loader COPYs and what the validator recomputes digests from on the target.

// formatFloat prints like float8out/float4out with extra_float_digits > 0
// (PostgreSQL 12+, Ryu): the shortest text that reads back to the same
// value, in exponent form when the decimal exponent is < -4 or >= 15
// (float8) or >= 6 (float4), as in src/common/d2s.c and f2s.c. Go's 'e'
// format writes the exponent with a sign and at least two digits, like
// PostgreSQL. See shortestDigits for the one place Go and Ryu differ.
func formatFloat(f float64, bits int) string { return string(appendFloat(nil, f, bits)) }

// appendFloat appends formatFloat's text to dst.
func appendFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	case f == 0:
		if math.Signbit(f) {
			return append(dst, "-0"...)
		}
		return append(dst, '0')
	}
	lo, hi := 1e-4, 1e15
	if bits == 32 {
		lo, hi = float64(float32(1e-4)), 1e6
	}
	if a := math.Abs(f); a >= lo && a < hi {
		// the shortest text's exponent is in [-4, limit) exactly when the
		// value is: no shorter text can read back across these bounds
		return strconv.AppendFloat(dst, f, 'f', -1, bits)
	}
	start := len(dst)
	if f < 0 {
		dst = append(dst, '-')
	}
	dst = appendShortestDigits(dst, math.Abs(f), bits)
	exp := 0
	i := bytes.LastIndexByte(dst[start:], 'e') + start
	neg := dst[i+1] == '-'
	for _, c := range dst[i+2:] {
		exp = exp*10 + int(c-'0')
	}
	if neg {
		exp = -exp
	}
	limit := 15
	if bits == 32 {
		limit = 6
	}
	if exp < -4 || exp >= limit {
		return dst
	}
	// fixed notation only happens below 1e15 (1e6 for float4), where
	// shortestDigits is Go's own shortest: 'f' prints the same digits
	return strconv.AppendFloat(dst[:start], f, 'f', -1, bits)
}

// appendShortestDigits appends shortestDigits(f, bits), without a string
// where Go's shortest is Ryu's.
func appendShortestDigits(dst []byte, f float64, bits int) []byte {
	limit := 1 << 53
	if bits == 32 {
		limit = 1 << 24
	}
	if f < float64(limit) {
		return strconv.AppendFloat(dst, f, 'e', -1, bits)
	}
	return append(dst, shortestDigits(f, bits)...)
}

// shortestDigits is the shortest round-trip 'e' text of f > 0 as Ryu prints
// it. Go's shortest formatting accepts a decimal lying exactly on the
// rounding boundary halfway to the neighbouring value (when the mantissa
// is even, since round-half-even input reads it back to f); PostgreSQL's
// Ryu does not, and prints one digit more. Boundaries can only be short
// decimals where the float's spacing is at least 2 (|f| >= 2^24 for float4,
// 2^53 for float8), so only there is the exact check made. Verified
// against PostgreSQL 15 on thousands of random values (pgtext_test.go).
func shortestDigits(f float64, bits int) string {
	e := strconv.FormatFloat(f, 'e', -1, bits)
	limit, maxDigits := 1<<53, 17
	if bits == 32 {
		limit, maxDigits = 1<<24, 9
	}
	if f < float64(limit) {
		return e
	}
	lo, hi := roundingBounds(f, bits)
	m, _, _ := strings.Cut(e, "e")
	for p := len(strings.Replace(m, ".", "", 1)); p <= maxDigits; p++ {
		c := trimMantissa(strconv.FormatFloat(f, 'e', p-1, bits))
		r, _ := new(big.Rat).SetString(c)
		if r.Cmp(lo) > 0 && r.Cmp(hi) < 0 {
			return c
		}
	}
	return e
}

// roundingBounds are the midpoints between f and its neighbours.
func roundingBounds(f float64, bits int) (lo, hi *big.Rat) {
	var next, prev float64
	if bits == 32 {
		next = float64(math.Nextafter32(float32(f), float32(math.Inf(1))))
		prev = float64(math.Nextafter32(float32(f), 0))
	} else {
		next = math.Nextafter(f, math.Inf(1))
		prev = math.Nextafter(f, 0)
	}
	x := new(big.Rat).SetFloat64(f)
	half := big.NewRat(1, 2)
	below := new(big.Rat).Sub(x, new(big.Rat).SetFloat64(prev))
	above := below // the largest finite value: same spacing above
	if !math.IsInf(next, 1) {
		above = new(big.Rat).Sub(new(big.Rat).SetFloat64(next), x)
	}
	lo = new(big.Rat).Sub(x, new(big.Rat).Mul(below, half))
	hi = new(big.Rat).Add(x, new(big.Rat).Mul(above, half))
	return lo, hi
}

// trimMantissa drops trailing zeros of an 'e' text's mantissa.
func trimMantissa(s string) string {
	m, exp, _ := strings.Cut(s, "e")
	if strings.Contains(m, ".") {
		m = strings.TrimSuffix(strings.TrimRight(m, "0"), ".")
	}
	return m + "e" + exp
}

// decimalParts splits decimal text ("-123.4500") into sign, integer digits
// and fraction digits, refusing anything else.
func decimalParts(s string) (neg bool, ip, fp string, err error) {
	if s == "" {
		return false, "", "", fmt.Errorf("empty decimal")
	}
	if s[0] == '-' || s[0] == '+' {
		neg = s[0] == '-'
		s = s[1:]
	}
	ip, fp, _ = strings.Cut(s, ".")
	if ip == "" {
		ip = "0"
	}
	if !allDigits(ip) || !allDigits(fp) {
		return false, "", "", fmt.Errorf("invalid decimal %q", s)
	}
	ip = strings.TrimLeft(ip, "0")
	if ip == "" {
		ip = "0"
	}
	return neg, ip, fp, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// formatNumeric prints decimal text as numeric_out does for a column of
// the given typmod: with a typmod the value is rounded half away from zero
// to the scale (numeric's rounding) and padded to it; without one
// PostgreSQL keeps the scale it was given. Overflow of the precision is an
// error, as it would be on COPY.
func formatNumeric(s string, k pgKind) (string, error) {
	b, err := appendNumeric(nil, s, k)
	return string(b), err
}

// appendNumeric appends formatNumeric's text to dst.
func appendNumeric(dst []byte, s string, k pgKind) ([]byte, error) {
	neg, ip, fp, err := decimalParts(s)
	if err != nil {
		return dst, err
	}
	pad := 0
	if k.HasMod {
		if len(fp) > k.Scale {
			round := fp[k.Scale] >= '5'
			fp = fp[:k.Scale]
			if round {
				ip, fp = incrementDecimal(ip, fp)
			}
		}
		pad = k.Scale - len(fp)
		if ip != "0" && len(ip) > k.Mod-k.Scale {
			return dst, fmt.Errorf("numeric field overflow: %s does not fit numeric(%d,%d)", s, k.Mod, k.Scale)
		}
	}
	if neg && (ip != "0" || strings.Trim(fp, "0") != "") {
		dst = append(dst, '-') // numeric has no negative zero
	}
	dst = append(dst, ip...)
	if fp != "" || pad > 0 {
		dst = append(dst, '.')
		dst = append(dst, fp...)
		for ; pad > 0; pad-- {
			dst = append(dst, '0')
		}
	}
	return dst, nil
}

// incrementDecimal adds one unit in the last place of ip.fp.
func incrementDecimal(ip, fp string) (string, string) {
	digits := []byte(ip + fp)
	i := len(digits) - 1
	for ; i >= 0; i-- {
		if digits[i] == '9' {
			digits[i] = '0'
			continue
		}
		digits[i]++
		break
	}
	if i < 0 {
		digits = append([]byte{'1'}, digits...)
	}
	n := len(digits) - len(fp)
	return string(digits[:n]), string(digits[n:])
}

// wallTime is a civil date and a time of day; instants are kept as their
// UTC wall time.
type wallTime struct {
	Year, Month, Day int
	Nanos            int64 // since midnight
}

const (
	nsPerUs  = 1000
	usPerDay = 86400 * 1000000
)

// daysFromCivil counts days from 1970-01-01 in the proleptic Gregorian
// calendar (Howard Hinnant's algorithm), valid for years <= 0 too.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

func civilFromDays(z int64) (y, m, d int) {
	z += 719468
	era := z
	if era < 0 {
		era -= 146096
	}
	era /= 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	yy := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	m = int(mp + 3)
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		yy++
	}
	return int(yy), m, d
}

// roundNanosToMicros rounds half to even, as PostgreSQL's input does
// (rint() of the fraction in microseconds): a tie needs the 7th digit of
// SQL Server's 100 ns ticks to be exactly 5.
func roundNanosToMicros(ns int64) int64 {
	us, rem := ns/nsPerUs, ns%nsPerUs
	if rem > 500 || (rem == 500 && us%2 == 1) {
		us++
	}
	return us
}

var typmodScale = [7]int64{1000000, 100000, 10000, 1000, 100, 10, 1}

// pgEpochDays is 2000-01-01, PostgreSQL's timestamp epoch.
var pgEpochDays = daysFromCivil(2000, 1, 1)

// timestampMicros converts a wall time to PostgreSQL's internal
// microseconds since 2000-01-01, rounded as PostgreSQL would on input and
// then to the typmod (AdjustTimestampForTypmod rounds half away from the
// epoch, so before 2000 a tie goes to the earlier time).
func timestampMicros(w wallTime, prec int) int64 {
	ts := (daysFromCivil(w.Year, w.Month, w.Day)-pgEpochDays)*usPerDay + roundNanosToMicros(w.Nanos)
	if prec >= 0 && prec < 6 {
		sc := typmodScale[prec]
		off := sc / 2
		if ts >= 0 {
			ts = (ts + off) / sc * sc
		} else {
			ts = -((-ts + off) / sc * sc)
		}
	}
	return ts
}

func splitMicros(ts int64) (days, us int64) {
	days = ts / usPerDay
	us = ts % usPerDay
	if us < 0 {
		us += usPerDay
		days--
	}
	return days, us
}

// appendYMD prints a date as PostgreSQL does: at least four year digits,
// and years <= 0 as 1-year with " BC" added by the caller at the end.
func appendYMD(dst []byte, y, m, d int) ([]byte, bool) {
	bc := y <= 0
	if bc {
		y = 1 - y
	}
	dst = appendPadded(dst, int64(y), 4)
	dst = append(dst, '-')
	dst = appendPadded(dst, int64(m), 2)
	dst = append(dst, '-')
	dst = appendPadded(dst, int64(d), 2)
	return dst, bc
}

// appendClock prints hh:mm:ss and the fraction without trailing zeros.
// Every timestamp of a chunk passes here: no fmt, no allocation.
func appendClock(dst []byte, us int64) []byte {
	s := us / 1000000
	frac := us % 1000000
	dst = appendPadded(dst, s/3600, 2)
	dst = append(dst, ':')
	dst = appendPadded(dst, s/60%60, 2)
	dst = append(dst, ':')
	dst = appendPadded(dst, s%60, 2)
	if frac != 0 {
		digits := 6
		for frac%10 == 0 {
			frac /= 10
			digits--
		}
		dst = append(dst, '.')
		dst = appendPadded(dst, frac, digits)
	}
	return dst
}

// appendPadded appends a non-negative n with at least width digits.
func appendPadded(dst []byte, n int64, width int) []byte {
	var buf [20]byte
	i := len(buf)
	for n >= 10 || width > 1 {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
		width--
	}
	i--
	buf[i] = byte('0' + n)
	return append(dst, buf[i:]...)
}

// formatTimestamp prints timestamp (tz=false) or timestamptz in UTC (tz=true).
func formatTimestamp(w wallTime, prec int, tz bool) string {
	return string(appendTimestamp(make([]byte, 0, 40), w, prec, tz))
}

func appendTimestamp(dst []byte, w wallTime, prec int, tz bool) []byte {
	days, us := splitMicros(timestampMicros(w, prec))
	y, m, d := civilFromDays(days + pgEpochDays)
	dst, bc := appendYMD(dst, y, m, d)
	dst = append(dst, ' ')
	dst = appendClock(dst, us)
	if tz {
		dst = append(dst, "+00"...)
	}
	if bc {
		dst = append(dst, " BC"...)
	}
	return dst
}

// formatDate prints a date (a timestamp's date part, when a timestamp is
// stored in a date column: date_in ignores the time of day).
func formatDate(w wallTime) string { return string(appendDate(nil, w)) }

func appendDate(dst []byte, w wallTime) []byte {
	dst, bc := appendYMD(dst, w.Year, w.Month, w.Day)
	if bc {
		dst = append(dst, " BC"...)
	}
	return dst
}

// formatTime prints time(prec): microseconds rounded half to even, then
// AdjustTimeForTypmod (half up); 24:00:00 is a valid PostgreSQL time and is
// what 23:59:59.9999995 becomes.
func formatTime(nanos int64, prec int) string { return string(appendTime(nil, nanos, prec)) }

func appendTime(dst []byte, nanos int64, prec int) []byte {
	us := roundNanosToMicros(nanos)
	if prec >= 0 && prec < 6 {
		sc := typmodScale[prec]
		us = (us + sc/2) / sc * sc
	}
	return appendClock(dst, us)
}

// formatBytea prints bytea in hex output format.
func formatBytea(b []byte) string { return string(appendBytea(make([]byte, 0, 2+2*len(b)), b)) }

func appendBytea(dst []byte, b []byte) []byte {
	const hexdigits = "0123456789abcdef"
	dst = append(dst, '\\', 'x')
	for _, c := range b {
		dst = append(dst, hexdigits[c>>4], hexdigits[c&15])
	}
	return dst
}

// padBpchar applies character(n): pad with spaces to n characters; longer
// values lose trailing spaces beyond n (bpchar's input rule) or are refused.
func padBpchar(s string, n int) (string, error) {
	runes := []rune(s)
	if len(runes) > n {
		if strings.TrimRight(string(runes[n:]), " ") != "" {
			return "", fmt.Errorf("value too long for type character(%d)", n)
		}
		return string(runes[:n]), nil
	}
	if len(runes) < n {
		s += strings.Repeat(" ", n-len(runes))
	}
	return s, nil
}

// fitVarchar applies character varying(n): trailing spaces beyond n are
// dropped, anything else longer is refused.
func fitVarchar(s string, n int) (string, error) {
	runes := []rune(s)
	if len(runes) <= n {
		return s, nil
	}
	if strings.TrimRight(string(runes[n:]), " ") != "" {
		return "", fmt.Errorf("value too long for type character varying(%d)", n)
	}
	return string(runes[:n]), nil
}
