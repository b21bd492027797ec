package mssql

import (
	"context"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

func TestFormatFloat(t *testing.T) {
	// expected texts are PostgreSQL 15's, with extra_float_digits 1
	cases := []struct {
		f    float64
		bits int
		want string
	}{
		{1e20, 64, "1e+20"}, {1.5e-7, 64, "1.5e-07"}, {123456789012345, 64, "123456789012345"},
		{1234567890123456, 64, "1.234567890123456e+15"}, {0.0001, 64, "0.0001"}, {0.00001, 64, "1e-05"},
		{100000, 32, "100000"}, {1000000, 32, "1e+06"}, {1e-5, 32, "1e-05"},
		{math.NaN(), 64, "NaN"}, {math.Inf(-1), 32, "-Infinity"}, {math.Inf(1), 64, "Infinity"},
		{math.Copysign(0, -1), 64, "-0"}, {5e-324, 64, "5e-324"}, {1e22, 64, "1e+22"},
		{9007199254740993, 64, "9.007199254740992e+15"}, {float64(float32(1e-45)), 32, "1e-45"},
	}
	for _, c := range cases {
		if got := formatFloat(c.f, c.bits); got != c.want {
			t.Errorf("formatFloat(%v, %d) = %q, want %q", c.f, c.bits, got, c.want)
		}
	}
}

// TestFormatFloatNotationBounds checks the fixed-notation shortcut of
// appendFloat next to its bounds against the rule it stands for: the
// exponent of the shortest 'e' text decides the notation.
func TestFormatFloatNotationBounds(t *testing.T) {
	byExponent := func(f float64, bits int) string {
		e := strconv.FormatFloat(f, 'e', -1, bits)
		exp, _ := strconv.Atoi(e[strings.LastIndexByte(e, 'e')+1:])
		if limit := map[int]int{32: 6, 64: 15}[bits]; exp < -4 || exp >= limit {
			return e
		}
		return strconv.FormatFloat(f, 'f', -1, bits)
	}
	for _, bound := range []float64{1e-4, 1e15, 1e6} {
		for _, bits := range []int{32, 64} {
			f := bound
			if bits == 32 {
				f = float64(float32(bound))
			}
			for _, sign := range []float64{1, -1} {
				x := f
				for i := 0; i < 3; i++ {
					x = math.Nextafter(x, 0)
				}
				for i := 0; i < 6; i++ {
					if bits == 32 {
						x = float64(math.Nextafter32(float32(x), float32(math.Inf(1))))
					} else {
						x = math.Nextafter(x, math.Inf(1))
					}
					if got, want := formatFloat(sign*x, bits), byExponent(sign*x, bits); got != want {
						t.Errorf("formatFloat(%v, %d) = %q, want %q", sign*x, bits, got, want)
					}
				}
			}
		}
	}
}

// TestFormatFloatMatchesPostgres compares random doubles and floats with
// PostgreSQL's float8out/float4out, when a PostgreSQL is configured.
func TestFormatFloatMatchesPostgres(t *testing.T) {
	pool := testPG(t)
	if pool == nil {
		t.Skip("CARAVAN_TEST_PG_URL not set: float output not compared with PostgreSQL")
	}
	r := rand.New(rand.NewPCG(1, 2))
	var f8, f4 []string
	var w8, w4 []string
	for i := 0; i < 2000; i++ {
		// spread over magnitudes, including the exponent thresholds
		f := math.Float64frombits(r.Uint64())
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		switch i % 3 {
		case 0:
			f = (r.Float64() - 0.5) * math.Pow10(r.IntN(40)-20)
		case 1:
			// large values, where Go's and Ryu's shortest forms can differ
			f = (r.Float64() - 0.5) * math.Pow10(r.IntN(10)+15)
		}
		f8 = append(f8, strconv.FormatFloat(f, 'g', -1, 64))
		w8 = append(w8, formatFloat(f, 64))
		g := float64(float32((r.Float64() - 0.5) * math.Pow10(r.IntN(20)-10)))
		if i%2 == 1 {
			g = float64(float32((r.Float64() - 0.5) * math.Pow10(r.IntN(30)+7)))
		}
		f4 = append(f4, strconv.FormatFloat(g, 'g', -1, 32))
		w4 = append(w4, formatFloat(g, 32))
	}
	check := func(typ string, in, want []string) {
		rows, err := pool.Query(context.Background(), "SELECT concat(x::"+typ+") FROM unnest($1::text[]) WITH ORDINALITY AS u(x, n) ORDER BY n", in)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		i := 0
		for rows.Next() {
			var got string
			if err := rows.Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != want[i] {
				t.Errorf("%s %s: PostgreSQL prints %q, caravan %q", typ, in[i], got, want[i])
			}
			i++
		}
		if i != len(want) {
			t.Fatalf("%d rows, want %d", i, len(want))
		}
	}
	check("float8", f8, w8)
	check("float4", f4, w4)
}

func TestFormatNumeric(t *testing.T) {
	cases := []struct {
		in, typ, want string
	}{
		{"12.34", "numeric(19,4)", "12.3400"},
		{"12.345", "numeric(10,2)", "12.35"},
		{"-12.345", "numeric(10,2)", "-12.35"},
		{"9.995", "numeric(10,2)", "10.00"},
		{"-0.004", "numeric(10,2)", "0.00"},
		{"0.5", "numeric(1,0)", "1"},
		{"007.10", "numeric", "7.10"},
		{"-0.00", "numeric", "0.00"},
		{"99.995", "numeric(5,2)", "100.00"},
		{"999.995", "numeric(5,2)", ""}, // overflow
	}
	for _, c := range cases {
		k, err := parsePGType(c.typ)
		if err != nil {
			t.Fatal(err)
		}
		got, err := formatNumeric(c.in, k)
		if c.want == "" {
			if err == nil {
				t.Errorf("%s as %s: want overflow error, got %q", c.in, c.typ, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s as %s = %q, %v; want %q", c.in, c.typ, got, err, c.want)
		}
		if back, ok := pgRoundTrip(t, c.typ, c.in); ok && back != got {
			t.Errorf("PostgreSQL makes %s of %s as %s, caravan %s", back, c.in, c.typ, got)
		}
	}
}

func TestCivilDays(t *testing.T) {
	for _, d := range []int64{-800000, -719162, -1, 0, 1, 10957, 2932896} {
		y, m, dd := civilFromDays(d)
		if back := daysFromCivil(y, m, dd); back != d {
			t.Errorf("day %d -> %d-%d-%d -> %d", d, y, m, dd, back)
		}
	}
	if d := daysFromCivil(2000, 1, 1); d != 10957 {
		t.Errorf("2000-01-01 = day %d", d)
	}
}

func TestFormatTimestampBC(t *testing.T) {
	// a datetimeoffset of 0001-01-01 00:00 +14:00 is 10:00 on 31 December
	// of year 0 in UTC, which PostgreSQL prints as 1 BC
	w := localWall(wallTime{Year: 1, Month: 1, Day: 1}, -14*60)
	if got := formatTimestamp(w, -1, true); got != "0001-12-31 10:00:00+00 BC" {
		t.Fatalf("got %q", got)
	}
	if got := formatDate(w); got != "0001-12-31 BC" {
		t.Fatalf("got %q", got)
	}
	if back, ok := pgRoundTrip(t, "timestamptz", "0001-01-01 00:00:00+14"); ok && back != "0001-12-31 10:00:00+00 BC" {
		t.Fatalf("PostgreSQL prints %q", back)
	}
}

func TestPadBpchar(t *testing.T) {
	if s, _ := padBpchar("ab", 4); s != "ab  " {
		t.Errorf("%q", s)
	}
	if s, _ := padBpchar("ab    ", 3); s != "ab " {
		t.Errorf("%q", s)
	}
	if _, err := padBpchar("abcd", 3); err == nil {
		t.Error("no error")
	}
}

func TestAppendClockAndYMD(t *testing.T) {
	for us, want := range map[int64]string{
		0: "00:00:00", 1: "00:00:00.000001", 100000: "00:00:00.1", 45296123456: "12:34:56.123456",
		86399999999: "23:59:59.999999", 86400000000: "24:00:00", 3600000010: "01:00:00.00001",
	} {
		if got := string(appendClock(nil, us)); got != want {
			t.Errorf("%d: %q, want %q", us, got, want)
		}
	}
	if got, bc := appendYMD(nil, 1, 2, 3); string(got) != "0001-02-03" || bc {
		t.Errorf("%q %v", got, bc)
	}
	if got, bc := appendYMD(nil, 12345, 12, 31); string(got) != "12345-12-31" || bc {
		t.Errorf("%q %v", got, bc)
	}
	if got, bc := appendYMD(nil, 0, 1, 1); string(got) != "0001-01-01" || !bc {
		t.Errorf("%q %v", got, bc)
	}
}
