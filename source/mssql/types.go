package mssql

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// sqlType is one SQL Server column type, resolved to its base type (alias
// types are gone by the time a column gets here). Its String form is what
// schema.Column.SourceType and proto.ChunkTask.Types carry, and
// parseSQLType reads it back: an extractor has nothing but that text.
type sqlType struct {
	Name      string // base type, lower case; rowversion for timestamp
	Length    int    // characters (char types) or bytes (binary types); -1 = max; 0 = none
	Precision int    // decimal/numeric
	Scale     int    // decimal/numeric, time, datetime2, datetimeoffset
	// Collation of a character column. It travels in the type because a
	// key bound must be cast into the column's collation before SQL Server
	// compares it: otherwise a varchar key is compared as nvarchar, which
	// under SQL_* collations orders differently from ORDER BY on the column.
	Collation string
}

// Type families, so switch statements stay short.
func (t sqlType) isChar() bool {
	switch t.Name {
	case "char", "varchar", "text", "nchar", "nvarchar", "ntext":
		return true
	}
	return false
}

func (t sqlType) isUnicode() bool {
	return t.Name == "nchar" || t.Name == "nvarchar" || t.Name == "ntext"
}

func (t sqlType) isBinary() bool {
	switch t.Name {
	case "binary", "varbinary", "image", "rowversion":
		return true
	}
	return false
}

func (t sqlType) isTemporal() bool {
	switch t.Name {
	case "date", "time", "datetime", "datetime2", "smalldatetime", "datetimeoffset":
		return true
	}
	return false
}

// isInteger says whether the type is an exact whole number caravan can
// do arithmetic on (bit is a flag, not a range).
func (t sqlType) isInteger() bool {
	switch t.Name {
	case "tinyint", "smallint", "int", "bigint":
		return true
	}
	return false
}

func (t sqlType) isSpatial() bool { return t.Name == "geography" || t.Name == "geometry" }

// keyable says whether caravan can page on a key column of this type: it
// must be orderable by SQL Server and its values must survive a round trip
// through bound text and a query parameter.
func (t sqlType) keyable() bool {
	switch t.Name {
	case "bit", "tinyint", "smallint", "int", "bigint", "decimal", "numeric", "money", "smallmoney",
		"float", "real", "date", "time", "datetime", "datetime2", "smalldatetime", "datetimeoffset",
		"char", "varchar", "nchar", "nvarchar", "binary", "varbinary", "uniqueidentifier", "hierarchyid":
		return t.Length != -1
	}
	return false
}

// String spells the type the way SQL Server's DDL would.
func (t sqlType) String() string {
	var s string
	switch t.Name {
	case "decimal", "numeric":
		s = fmt.Sprintf("%s(%d,%d)", t.Name, t.Precision, t.Scale)
		if t.Precision == 0 {
			// Unconstrained (dialect.columns). Not T-SQL: bare "numeric"
			// means numeric(18,0) there, so the plan and the chunk tasks
			// spell it "numeric(max)", which parseSQLType reads back.
			s = t.Name + "(max)"
		}
	case "time", "datetime2", "datetimeoffset":
		s = fmt.Sprintf("%s(%d)", t.Name, t.Scale)
	case "char", "varchar", "nchar", "nvarchar", "binary", "varbinary":
		if t.Length == -1 {
			s = t.Name + "(max)"
		} else {
			s = fmt.Sprintf("%s(%d)", t.Name, t.Length)
		}
	default:
		s = t.Name
	}
	if t.Collation != "" && t.isChar() {
		s += " COLLATE " + t.Collation
	}
	return s
}

var (
	typeRE      = regexp.MustCompile(`^([a-z_0-9]+)(?:\(\s*(max|\d+)\s*(?:,\s*(\d+)\s*)?\))?(?:\s+collate\s+([A-Za-z0-9_]+))?$`)
	collationRE = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
)

// parseSQLType reads a type spelled by String (or by a user, in lower or
// upper case).
func parseSQLType(s string) (sqlType, error) {
	in := strings.TrimSpace(s)
	m := typeRE.FindStringSubmatch(strings.ToLower(in))
	if m == nil {
		return sqlType{}, fmt.Errorf("unsupported SQL Server type %q", s)
	}
	t := sqlType{Name: m[1]}
	if m[4] != "" {
		// keep the collation's own spelling: collation names are case
		// insensitive in SQL Server, but the plan shows them as written
		i := strings.LastIndex(strings.ToLower(in), " collate ")
		t.Collation = strings.TrimSpace(in[i+len(" collate "):])
	}
	arg := func(x string) int { n, _ := strconv.Atoi(x); return n }
	switch t.Name {
	case "timestamp":
		t.Name = "rowversion"
	case "decimal", "numeric":
		t.Precision, t.Scale = 18, 0
		if m[2] == "max" && m[3] == "" {
			return sqlType{Name: t.Name}, nil // unconstrained: see String
		}
		if m[2] != "" {
			t.Precision = arg(m[2])
		}
		if m[3] != "" {
			t.Scale = arg(m[3])
		}
		if t.Precision < 1 || t.Precision > 38 || t.Scale > t.Precision {
			return sqlType{}, fmt.Errorf("type %q: precision must be 1..38 and scale 0..precision", s)
		}
		return t, nil
	case "time", "datetime2", "datetimeoffset":
		t.Scale = 7
		if m[2] != "" {
			t.Scale = arg(m[2])
		}
		if t.Scale > 7 {
			return sqlType{}, fmt.Errorf("type %q: fractional precision must be 0..7", s)
		}
		return t, nil
	case "float":
		// float(1..24) is real: SQL Server itself stores and reports it so
		if m[2] != "" && arg(m[2]) <= 24 {
			t.Name = "real"
		}
		return t, nil
	case "char", "varchar", "nchar", "nvarchar", "binary", "varbinary":
		t.Length = 1
		switch m[2] {
		case "":
		case "max":
			if t.Name == "char" || t.Name == "nchar" || t.Name == "binary" {
				return sqlType{}, fmt.Errorf("type %q: max is only for varchar, nvarchar and varbinary", s)
			}
			t.Length = -1
		default:
			t.Length = arg(m[2])
		}
		return t, nil
	}
	if m[2] != "" {
		return sqlType{}, fmt.Errorf("type %q takes no length", s)
	}
	switch t.Name {
	case "bit", "tinyint", "smallint", "int", "bigint", "money", "smallmoney", "real",
		"date", "datetime", "smalldatetime", "text", "ntext", "image", "rowversion",
		"uniqueidentifier", "xml", "sql_variant", "hierarchyid", "geography", "geometry":
		return t, nil
	}
	return sqlType{}, fmt.Errorf("unsupported SQL Server type %q", s)
}

// typeFromCatalog builds a type from sys.columns: max_length is in bytes
// (so nchar/nvarchar hold max_length/2 characters) and -1 means max.
func typeFromCatalog(base string, maxLength, precision, scale int, collation string) (sqlType, error) {
	t := sqlType{Name: strings.ToLower(base)}
	switch t.Name {
	case "timestamp":
		t.Name = "rowversion"
	case "sysname":
		t = sqlType{Name: "nvarchar", Length: 128}
	case "decimal", "numeric":
		t.Precision, t.Scale = precision, scale
	case "time", "datetime2", "datetimeoffset":
		t.Scale = scale
	case "float":
		if precision <= 24 {
			t.Name = "real"
		}
	case "char", "varchar", "binary", "varbinary":
		t.Length = maxLength
	case "nchar", "nvarchar":
		t.Length = maxLength
		if maxLength > 0 {
			t.Length = maxLength / 2
		}
	}
	if t.isChar() {
		if collation != "" && !collationRE.MatchString(collation) {
			return sqlType{}, fmt.Errorf("collation %q: unexpected characters", collation)
		}
		t.Collation = collation
	}
	// parse what we built, so discovery refuses exactly what Read would
	if _, err := parseSQLType(t.String()); err != nil {
		return sqlType{}, err
	}
	return t, nil
}

// defaultPGType is the PostgreSQL type a SQL Server type becomes without an
// override. docs/TYPES.md gives the reason for each line.
func defaultPGType(t sqlType, postgis bool) string {
	switch t.Name {
	case "bit":
		return "boolean"
	case "tinyint", "smallint":
		return "smallint"
	case "int":
		return "integer"
	case "bigint":
		return "bigint"
	case "decimal", "numeric":
		if t.Precision == 0 {
			return "numeric" // unconstrained (dialect.columns)
		}
		return fmt.Sprintf("numeric(%d,%d)", t.Precision, t.Scale)
	case "money":
		return "numeric(19,4)"
	case "smallmoney":
		return "numeric(10,4)"
	case "real":
		return "real"
	case "float":
		return "double precision"
	case "date":
		return "date"
	case "time":
		return fmt.Sprintf("time(%d)", min(t.Scale, 6))
	case "datetime":
		return "timestamp(3)"
	case "smalldatetime":
		return "timestamp(0)"
	case "datetime2":
		return fmt.Sprintf("timestamp(%d)", min(t.Scale, 6))
	case "datetimeoffset":
		return fmt.Sprintf("timestamp(%d) with time zone", min(t.Scale, 6))
	case "char", "nchar":
		return fmt.Sprintf("character(%d)", t.Length)
	case "varchar", "nvarchar":
		if t.Length == -1 {
			return "text"
		}
		return fmt.Sprintf("character varying(%d)", t.Length)
	case "text", "ntext", "sql_variant", "hierarchyid":
		return "text"
	case "binary", "varbinary", "image", "rowversion":
		return "bytea"
	case "uniqueidentifier":
		return "uuid"
	case "xml":
		return "xml"
	case "geography", "geometry":
		if postgis {
			return "geometry"
		}
		return "text"
	}
	return "text"
}

// pgKind is the PostgreSQL type a value is printed for: the family of its
// output function and the typmod that changes what it prints.
type pgKind struct {
	Name   string // bool, int2, int4, int8, numeric, float4, float8, date, time, timestamp, timestamptz, bpchar, text, bytea, uuid, xml, geometry
	Mod    int    // numeric precision, time/timestamp precision, bpchar length; -1 = none
	Scale  int    // numeric scale
	HasMod bool
}

var pgTypeRE = regexp.MustCompile(`^([a-z][a-z0-9_ ]*?)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*(with time zone|without time zone)?$`)

// parsePGType reads the PostgreSQL type text of a target column into the
// printer caravan uses for it. Types whose output function rewrites its
// input in ways caravan does not reproduce (jsonb, arrays, ranges...) are
// refused, so an override cannot silently break the digest.
func parsePGType(s string) (pgKind, error) {
	m := pgTypeRE.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return pgKind{}, fmt.Errorf("PostgreSQL type %q: not supported for SQL Server values", s)
	}
	k := pgKind{Mod: -1}
	if m[2] != "" {
		k.HasMod = true
		k.Mod, _ = strconv.Atoi(m[2])
	}
	if m[3] != "" {
		k.Scale, _ = strconv.Atoi(m[3])
	}
	name := m[1]
	tz := m[4] == "with time zone"
	switch name {
	case "boolean", "bool":
		k.Name = "bool"
	case "smallint", "int2":
		k.Name = "int2"
	case "integer", "int", "int4":
		k.Name = "int4"
	case "bigint", "int8":
		k.Name = "int8"
	case "numeric", "decimal":
		k.Name = "numeric"
	case "real", "float4":
		k.Name = "float4"
	case "double precision", "float8":
		k.Name = "float8"
	case "date":
		k.Name = "date"
	case "time":
		k.Name = "time"
		if tz {
			return pgKind{}, fmt.Errorf("PostgreSQL type %q: time with time zone is not supported", s)
		}
	case "timestamp":
		k.Name = "timestamp"
		if tz {
			k.Name = "timestamptz"
		}
	case "timestamptz":
		k.Name = "timestamptz"
	case "character", "char", "bpchar":
		k.Name = "bpchar"
		if !k.HasMod && name != "bpchar" {
			k.HasMod, k.Mod = true, 1
		}
	case "character varying", "varchar", "text", "citext", "json":
		k.Name = "text"
	case "bytea":
		k.Name = "bytea"
	case "uuid":
		k.Name = "uuid"
	case "xml":
		k.Name = "xml"
	case "geometry":
		k.Name = "geometry"
	default:
		return pgKind{}, fmt.Errorf("PostgreSQL type %q: not supported for SQL Server values", s)
	}
	if m[4] != "" && k.Name != "timestamptz" && k.Name != "timestamp" && k.Name != "time" {
		return pgKind{}, fmt.Errorf("PostgreSQL type %q: not supported", s)
	}
	if (k.Name == "time" || k.Name == "timestamp" || k.Name == "timestamptz") && k.HasMod && k.Mod > 6 {
		k.Mod = 6 // PostgreSQL itself reduces larger precisions to 6, with a warning
	}
	return k, nil
}

// compatible says whether caravan can print values of a SQL Server type for
// a PostgreSQL type: the pairs below are the default mapping and the
// overrides docs/TYPES.md lists.
func compatible(t sqlType, k pgKind) bool {
	if k.Name == "text" || k.Name == "bpchar" {
		return true // every value has a natural text
	}
	switch t.Name {
	case "bit":
		return k.Name == "bool" || k.Name == "int2" || k.Name == "int4" || k.Name == "int8"
	case "tinyint", "smallint", "int", "bigint":
		return k.Name == "int2" || k.Name == "int4" || k.Name == "int8" || k.Name == "numeric" || k.Name == "float4" || k.Name == "float8"
	case "decimal", "numeric", "money", "smallmoney":
		return k.Name == "numeric" || k.Name == "float4" || k.Name == "float8" ||
			(t.Scale == 0 && t.Name != "money" && t.Name != "smallmoney" && (k.Name == "int2" || k.Name == "int4" || k.Name == "int8"))
	case "real", "float":
		return k.Name == "float4" || k.Name == "float8" || k.Name == "numeric"
	case "date":
		return k.Name == "date" || k.Name == "timestamp" || k.Name == "timestamptz"
	case "time":
		return k.Name == "time"
	case "datetime", "datetime2", "smalldatetime", "datetimeoffset":
		return k.Name == "timestamp" || k.Name == "timestamptz" || k.Name == "date"
	case "char", "varchar", "text", "nchar", "nvarchar", "ntext", "hierarchyid", "sql_variant":
		return k.Name == "xml" && t.Name != "sql_variant" && t.Name != "hierarchyid"
	case "binary", "varbinary", "image", "rowversion":
		return k.Name == "bytea"
	case "uniqueidentifier":
		return k.Name == "uuid"
	case "xml":
		return k.Name == "xml"
	case "geography", "geometry":
		return k.Name == "geometry"
	}
	return false
}
