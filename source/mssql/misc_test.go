package mssql

import (
	"bytes"
	"database/sql/driver"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caravan-db/caravan/proto"
	"github.com/caravan-db/caravan/source"
)

func TestParseSQLTypeRoundTrip(t *testing.T) {
	for _, s := range []string{
		"bit", "tinyint", "smallint", "int", "bigint", "decimal(38,38)", "numeric(1,0)", "money", "smallmoney",
		"float", "real", "date", "time(0)", "time(7)", "datetime", "datetime2(3)", "smalldatetime", "datetimeoffset(7)",
		"char(1) COLLATE Latin1_General_CI_AS", "varchar(max) COLLATE Latin1_General_100_CI_AS_SC_UTF8",
		"nchar(4000) COLLATE Japanese_CI_AS", "nvarchar(max) COLLATE Latin1_General_CI_AS", "text COLLATE SQL_Latin1_General_CP1_CI_AS",
		"ntext COLLATE Latin1_General_CI_AS", "binary(8000)", "varbinary(max)", "image", "uniqueidentifier", "xml",
		"sql_variant", "hierarchyid", "geography", "geometry", "rowversion",
	} {
		st, err := parseSQLType(s)
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if st.String() != s {
			t.Errorf("%s -> %s", s, st.String())
		}
	}
	for s, want := range map[string]string{"timestamp": "rowversion", "float(10)": "real", "float(53)": "float", "DECIMAL": "decimal(18,0)", "varchar": "varchar(1)"} {
		if st, err := parseSQLType(s); err != nil || st.String() != want {
			t.Errorf("%s -> %v %v, want %s", s, st, err, want)
		}
	}
	for _, bad := range []string{"varchar(10) COLLATE x;drop", "decimal(39,0)", "time(8)", "int(4)", "char(max)", "mytype", "nvarchar(10) collate"} {
		if _, err := parseSQLType(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParsePGType(t *testing.T) {
	for s, want := range map[string]pgKind{
		"timestamp(3)":                {Name: "timestamp", Mod: 3, HasMod: true},
		"timestamp(6) with time zone": {Name: "timestamptz", Mod: 6, HasMod: true},
		"timestamp with time zone":    {Name: "timestamptz", Mod: -1},
		"character varying(20)":       {Name: "text", Mod: 20, HasMod: true},
		"character":                   {Name: "bpchar", Mod: 1, HasMod: true},
		"numeric(10,2)":               {Name: "numeric", Mod: 10, Scale: 2, HasMod: true},
		"double precision":            {Name: "float8", Mod: -1},
		"time(9)":                     {Name: "time", Mod: 6, HasMod: true},
	} {
		got, err := parsePGType(s)
		if err != nil || got != want {
			t.Errorf("%s: %+v %v, want %+v", s, got, err, want)
		}
	}
	for _, bad := range []string{"jsonb", "integer[]", "time with time zone", "int4range"} {
		if _, err := parsePGType(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestKeyTextRoundTrip(t *testing.T) {
	guid := []byte{0xff, 0x19, 0x96, 0x6f, 0x86, 0x8b, 0x11, 0xd0, 0xb4, 0x2d, 0x00, 0xc0, 0x4f, 0xc9, 0x64, 0xff}
	cases := []struct {
		typ  string
		v    any
		text string
		prm  any
	}{
		{"bit", true, "1", int64(1)},
		{"bigint", int64(-9223372036854775808), "-9223372036854775808", int64(-9223372036854775808)},
		{"decimal(38,4)", []byte("-12.3400"), "-12.3400", "-12.3400"},
		{"float", 0.1, "0.1", 0.1},
		{"real", float64(float32(0.1)), "0.1", float64(float32(0.1))},
		{"datetime2(7)", "2020-01-01 10:00:00.1234567", "2020-01-01 10:00:00.1234567", "2020-01-01 10:00:00.1234567"},
		{"nvarchar(10) COLLATE Latin1_General_CI_AS", encodeUTF16("ä😀"), "ä😀", encodeUTF16("ä😀")},
		{"binary(2)", []byte{0xab, 0x01}, "0xAB01", []byte{0xab, 0x01}},
		{"uniqueidentifier", guid, "6F9619FF-8B86-D011-B42D-00C04FC964FF", "6F9619FF-8B86-D011-B42D-00C04FC964FF"},
		{"hierarchyid", "/1/3/", "/1/3/", "/1/3/"},
	}
	for _, c := range cases {
		st := mustType(t, c.typ)
		txt, err := keyText(st, c.v)
		if err != nil || txt != c.text {
			t.Errorf("%s: keyText %q %v, want %q", c.typ, txt, err, c.text)
			continue
		}
		p, err := sqlServer.paramFromText(st, txt)
		if err != nil {
			t.Errorf("%s: %v", c.typ, err)
			continue
		}
		if b, ok := c.prm.([]byte); ok {
			if !bytes.Equal(p.([]byte), b) {
				t.Errorf("%s: param %v", c.typ, p)
			}
		} else if p != c.prm {
			t.Errorf("%s: param %#v, want %#v", c.typ, p, c.prm)
		}
		kp, err := sqlServer.keyParam(st, c.v)
		if err != nil {
			t.Errorf("%s: keyParam %v", c.typ, err)
		} else if _, isBytes := kp.([]byte); !isBytes && kp != p {
			t.Errorf("%s: keyParam %#v != %#v", c.typ, kp, p)
		}
	}
	// a key with an unpaired surrogate has no text, but still continues a page exactly
	st := mustType(t, "nvarchar(10) COLLATE Latin1_General_CI_AS")
	raw := utf16le('a', 0xd800)
	if _, err := keyText(st, raw); !errors.Is(err, errUnrepresentable) {
		t.Errorf("surrogate key text: %v", err)
	}
	if p, err := sqlServer.keyParam(st, raw); err != nil || !bytes.Equal(p.([]byte), raw) {
		t.Errorf("surrogate key param: %v %v", p, err)
	}
	for typ, bad := range map[string]string{"int": "1.5", "bit": "2", "binary(2)": "AB", "uniqueidentifier": "x", "decimal(5,2)": "1e5", "xml": "<a/>"} {
		if _, err := sqlServer.paramFromText(mustType(t, typ), bad); err == nil {
			t.Errorf("%s accepted %q", typ, bad)
		}
	}
}

func TestGUIDOrder(t *testing.T) {
	wire := []byte{0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	u, err := guidToRFC(wire)
	if err != nil {
		t.Fatal(err)
	}
	if got := formatUUID(u); got != "00112233-4455-6677-8899-aabbccddeeff" {
		t.Fatal(got)
	}
}

func TestWKBToEWKB(t *testing.T) {
	le := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	u32 := func(v uint32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }
	one := []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f}
	two := []byte{0, 0, 0, 0, 0, 0, 0, 0x40}
	three := []byte{0, 0, 0, 0, 0, 0, 0x08, 0x40}
	srid := func(s uint32) []byte { return []byte{byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s)} }
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		// PostGIS: SELECT ST_GeomFromEWKT('SRID=4326;POINT Z (1 2 3)')
		{"point z", le(srid(4326), []byte{1}, u32(1001), one, two, three), "01010000A0E6100000000000000000F03F00000000000000400000000000000840"},
		// SRID 0 is PostGIS's unknown SRID: no flag, no SRID
		{"point srid 0", le(srid(0), []byte{1}, u32(1), one, two), "0101000000000000000000F03F0000000000000040"},
		// big-endian input is rewritten little-endian
		{"point xdr", le(srid(4326), []byte{0, 0, 0, 0, 1}, []byte{0x3f, 0xf0, 0, 0, 0, 0, 0, 0}, []byte{0x40, 0, 0, 0, 0, 0, 0, 0}), "0101000020E6100000000000000000F03F0000000000000040"},
		// SELECT ST_GeomFromEWKT('SRID=4326;MULTIPOINT(1 2)'): SRID only at the top
		{"multipoint", le(srid(4326), []byte{1}, u32(4), u32(1), []byte{1}, u32(1), one, two), "0104000020E6100000010000000101000000000000000000F03F0000000000000040"},
	}
	for _, c := range cases {
		got, err := sridWKBToEWKB(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if formatEWKB(got) != c.want {
			t.Errorf("%s: got %s, want %s", c.name, formatEWKB(got), c.want)
		}
	}
	for _, bad := range [][]byte{{0, 0}, le(srid(1), []byte{1}, u32(1), one), le(srid(1), []byte{1}, u32(99))} {
		if _, err := sridWKBToEWKB(bad); err == nil {
			t.Errorf("%x accepted", bad)
		}
	}
}

func TestTranslateDefault(t *testing.T) {
	cases := []struct {
		def, typ, pg, want string
		ok                 bool
	}{
		{"((0))", "bit", "boolean", "false", true},
		{"((1))", "int", "integer", "1", true},
		{"((-1.5))", "decimal(5,2)", "numeric(5,2)", "-1.5", true},
		{"(N'it''s')", "nvarchar(10)", "text", "'it''s'", true},
		{"('2000-01-01')", "date", "date", "'2000-01-01'", true},
		{"(getdate())", "datetime", "timestamp(3)", "LOCALTIMESTAMP", true},
		{"(getdate())", "date", "date", "CURRENT_DATE", true},
		{"(sysdatetimeoffset())", "datetimeoffset(7)", "timestamptz", "now()", true},
		{"(getutcdate())", "datetime", "timestamp(3)", "(now() AT TIME ZONE 'UTC')", true},
		{"(newid())", "uniqueidentifier", "uuid", "gen_random_uuid()", true},
		{"(CONVERT([bit],(1)))", "bit", "boolean", "true", true},
		{"(NULL)", "int", "integer", "", true},
		{"((0))", "varchar(5)", "character varying(5)", "'0'", true},
		{"(user_name())", "nvarchar(10)", "text", "", false},
	}
	for _, c := range cases {
		k, _ := parsePGType(c.pg)
		got, _, ok := translateDefault(c.def, mustType(t, c.typ), k)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: got %q %v, want %q %v", c.def, got, ok, c.want, c.ok)
		}
	}
}

func TestTranslateExpr(t *testing.T) {
	tr := &exprTranslator{policy: (*Source)(nil).DefaultNames(), cols: map[string]*columnInfo{
		"Qty": {Name: "Qty", Type: mustType(t, "int")}, "Name": {Name: "Name", Type: mustType(t, "varchar(10)")},
		"Flag": {Name: "Flag", Type: mustType(t, "bit")}, "Odd]Col": {Name: "Odd]Col", Type: mustType(t, "int")},
	}}
	ok := map[string]string{
		"[Qty]>=(0) AND [Qty]!>(10)":           `"qty" >= (0) AND "qty" <= (10)`,
		"[Name] IN ('a', N'b''c')":             `"name" IN ('a', 'b''c')`,
		"[Name] like 'x%' OR [Name] IS NULL":   `"name" LIKE 'x%' OR "name" IS NULL`,
		"[Odd]]Col]<>(1.5e3)":                  `"odd]col" <> (1.5e3)`,
		"abs([Qty])<(5)":                       `abs("qty") < (5)`,
		"[Qty] BETWEEN (1) AND (2)":            `"qty" BETWEEN (1) AND (2)`,
		"lower([Name])=N'x'":                   `lower("name") = 'x'`,
		"CASE WHEN [Qty]>(1) THEN (1) END=(1)": `CASE WHEN "qty" > (1) THEN (1) END = (1)`,
		// the one T-SQL lexer: comments go, a name or string holding -- stays
		"[Qty]>(0) -- positive\n":     `"qty" > (0)`,
		"[Qty] /* not [Name] */ <(3)": `"qty" < (3)`,
		"[Name]<>N'a--b'":             `"name" <> 'a--b'`,
	}
	for in, want := range ok {
		got, err := tr.translate(in)
		if err != nil || got != want {
			t.Errorf("%s: got %q %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"len([Name])>(0)", "[Flag]=(1)", "[Name]+'x'='ax'", "[Nope]>(1)", "[Qty]>@x", "'open",
		`"Qty">(1)`, "[Qty]&(1)=(1)", "[Qty]>0x1F", "[Qty]>(1) /* open"} {
		if got, err := tr.translate(bad); err == nil {
			t.Errorf("%s translated to %q", bad, got)
		}
	}
}

func TestRedact(t *testing.T) {
	cases := map[string]string{
		"sqlserver://sa:S3cret!pw@db:1433?database=shop":             "sqlserver://sa:xxxxx@db:1433?database=shop",
		"sqlserver://db?user+id=sa&password=S3cret!pw&database=shop": "S3cret",
		"server=db;user id=sa;password=S3cret!pw;database=shop":      "server=db;user id=sa;password=xxxxx;database=shop",
		"odbc:server=db;uid=sa;pwd={S3cret;!pw}":                     "odbc:server=db;uid=sa;pwd=xxxxx",
	}
	for in, want := range cases {
		got := redactURL(in)
		if strings.Contains(got, "S3cret") {
			t.Errorf("%s: password kept in %s", in, got)
		}
		if want != "S3cret" && got != want {
			t.Errorf("%s: got %s, want %s", in, got, want)
		}
	}
	err := scrub(errors.New("login failed for sa with S3cret!pw"), secretsOf("sqlserver://sa:S3cret!pw@db"))
	if strings.Contains(err.Error(), "S3cret") {
		t.Fatal(err)
	}
	if _, err := Open(t.Context(), "sqlserver://sa:S3cret!pw@db?dial+timeout=x&guid+conversion=maybe", Options{}); err == nil || strings.Contains(err.Error(), "S3cret") {
		t.Fatalf("Open error: %v", err)
	}
}

func TestPickStepsAndChunks(t *testing.T) {
	steps := []histStep{{1, 100}, {2, 100}, {3, 100}, {4, 100}, {5, 100}}
	if got := pickSteps(steps, 200); len(got) != 2 || got[0] != 2 || got[1] != 4 {
		t.Fatalf("%v", got)
	}
	if got := pickSteps(steps, 1000); len(got) != 0 {
		t.Fatalf("%v", got)
	}
	bounds := dedupeBounds([][]string{{"1", "a"}, {"1", "a"}, {"5", "b"}})
	chunks := chunksFromBounds(bounds, 300)
	want := []source.Chunk{
		{Range: proto.RangeKey, Hi: []string{"1", "a"}, EstRows: 100},
		{Range: proto.RangeKey, Lo: []string{"1", "a"}, Hi: []string{"5", "b"}, EstRows: 100},
		{Range: proto.RangeKey, Lo: []string{"5", "b"}, EstRows: 100},
	}
	if len(chunks) != 3 {
		t.Fatalf("%+v", chunks)
	}
	for i := range want {
		if !equalTuple(chunks[i].Lo, want[i].Lo) || !equalTuple(chunks[i].Hi, want[i].Hi) || (chunks[i].Lo == nil) != (want[i].Lo == nil) || (chunks[i].Hi == nil) != (want[i].Hi == nil) {
			t.Errorf("chunk %d: %+v, want %+v", i, chunks[i], want[i])
		}
	}
}

// TestRowConverter runs Read's row path without a server: scanned values
// in, COPY text out, with the value policies.
func TestRowConverter(t *testing.T) {
	task := &proto.ChunkTask{
		Source: proto.TableRef{Schema: "dbo", Name: "T"},
		Cols:   []string{"id", "name", "at", "v", "blob"},
		Types:  []string{"int", "nvarchar(20) COLLATE Latin1_General_CI_AS", "datetime", "sql_variant", "varbinary(max)"},
	}
	s := &Source{opts: Options{}}
	conv, err := s.newRowConverter(task)
	if err != nil {
		t.Fatal(err)
	}
	if conv.width != 6 {
		t.Fatalf("width %d", conv.width)
	}
	key := func() string { return "(id=7)" }
	line, err := conv.line([]driver.Value{int64(7), utf16s("a\tb\\c"), driverDateTime(0, 1), int64(3), "int", nil}, key)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(line); got != "7\ta\\tb\\\\c\t1900-01-01 00:00:00.003\t3\t\\N\n" {
		t.Fatalf("%q", got)
	}
	fields, _ := proto.SplitRow(nil, line)
	if string(fields[1].Value) != "a\tb\\c" || !fields[4].Null {
		t.Fatalf("%+v", fields)
	}
	_, err = conv.line([]driver.Value{int64(7), utf16le('a', 0), nil, nil, nil, nil}, key)
	if err == nil || !strings.Contains(err.Error(), `table dbo.T column "name" key (id=7)`) || !errors.Is(err, errNUL) {
		t.Fatalf("NUL policy fail: %v", err)
	}
	_, err = conv.line([]driver.Value{int64(7), utf16le(0xdc00), nil, nil, nil, nil}, key)
	if !errors.Is(err, errSurrogate) {
		t.Fatalf("surrogate policy fail: %v", err)
	}

	s.opts = Options{NUL: PolicyStrip, Surrogates: PolicyReplace}
	conv, _ = s.newRowConverter(task)
	line, err = conv.line([]driver.Value{int64(8), utf16le('a', 0, 'b', 0xdc00), time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), nil, nil, []byte{}}, key)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(line); got != "8\tab\uFFFD\t2020-01-01 00:00:00\t\\N\t\\\\x\n" {
		t.Fatalf("%q", got)
	}
	if ic := conv.issues["name"]; ic == nil || ic.NUL != 1 || ic.Surrogates != 1 || ic.FirstKey != "(id=7)" {
		t.Fatalf("%+v", ic)
	}

	task.Options = map[string]string{"type.at": "text"}
	conv, _ = s.newRowConverter(task)
	line, _ = conv.line([]driver.Value{int64(1), nil, driverDateTime(0, 2), nil, nil, nil}, key)
	if !strings.Contains(string(line), "1900-01-01 00:00:00.007") {
		t.Fatalf("%q", line)
	}
	task.Options = map[string]string{"type.at": "uuid"}
	if _, err := s.newRowConverter(task); err == nil {
		t.Fatal("incompatible task type accepted")
	}
}

func TestDescribeKey(t *testing.T) {
	keys := []keyCol{{Ref: "[a]", Type: mustType(t, "int")}, {Ref: "[b]", Type: mustType(t, "uniqueidentifier")}}
	got := describeKey([]string{"a", "b"}, keys, []any{int64(1), make([]byte, 16)})
	if got != "(a=1, b=00000000-0000-0000-0000-000000000000)" {
		t.Fatal(got)
	}
}

func TestBabelfishDefaults(t *testing.T) {
	k, _ := parsePGType("character varying(10)")
	pg, note, ok := translateDefault("(CAST(('x') AS nvarchar(1)))", mustType(t, "nvarchar(10)"), k)
	if !ok || note != "" || pg != "'x'" {
		t.Fatalf("%q %q %v", pg, note, ok)
	}
	pg, _, ok = translateDefault("(CAST(('it''s AS x') AS varchar(max)))", mustType(t, "varchar(max)"), k)
	if !ok || pg != "'it''s AS x'" {
		t.Fatalf("%q %v", pg, ok)
	}
}

func TestEnoughBounds(t *testing.T) {
	if !enoughBounds(9, 10) || !enoughBounds(8, 10) || enoughBounds(7, 10) || !enoughBounds(0, 1) {
		t.Fatal("enoughBounds")
	}
}
