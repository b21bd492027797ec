package mssql

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Key values take three forms: the driver's value of keyExpr (read from
// SQL Server), the bound text that travels in ChunkTask.Lo/Hi, and the
// query parameter paramExpr casts back to the column's type. keyText and
// paramFromText are inverses for every value they accept, and keyParam is
// their composition (or exact where text cannot be, for strings with
// unpaired surrogates).

var errUnrepresentable = errors.New("key value has no exact text form")

// keyText renders a key value as bound text.
func keyText(t sqlType, v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", fmt.Errorf("key column of type %s is NULL", t)
	case bool:
		if x {
			return "1", nil
		}
		return "0", nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		if t.Name == "real" {
			return strconv.FormatFloat(x, 'g', -1, 32), nil
		}
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case string:
		return x, nil // temporal (style 121 text), hierarchyid, and Babelfish's text
	case []byte:
		switch {
		case t.Name == "decimal" || t.Name == "numeric" || t.Name == "money" || t.Name == "smallmoney":
			return string(x), nil
		case t.isChar():
			s, bad, err := decodeUTF16(x)
			if err != nil {
				return "", err
			}
			if bad > 0 {
				return "", errUnrepresentable
			}
			return s, nil
		case t.Name == "uniqueidentifier":
			return guidText(x)
		default:
			return "0x" + strings.ToUpper(hex.EncodeToString(x)), nil
		}
	}
	return "", fmt.Errorf("key column of type %s: unexpected driver value %T", t, v)
}

// keyParam turns a key value read from SQL Server into the parameter that
// continues a keyset page after it.
func (d dialect) keyParam(t sqlType, v any) (any, error) {
	if b, ok := v.([]byte); ok && t.isChar() {
		return b, nil // exact UTF-16LE, whatever it holds
	}
	s, err := keyText(t, v)
	if err != nil {
		return nil, err
	}
	return d.paramFromText(t, s)
}

// paramFromText parses bound text into the parameter for paramExpr.
func (d dialect) paramFromText(t sqlType, s string) (any, error) {
	bad := func(err error) error { return fmt.Errorf("bound %q is not a %s: %v", s, t, err) }
	switch {
	case t.Name == "bit":
		switch s {
		case "0":
			return int64(0), nil
		case "1":
			return int64(1), nil
		}
		return nil, bad(errors.New("want 0 or 1"))
	case t.Name == "tinyint" || t.Name == "smallint" || t.Name == "int" || t.Name == "bigint":
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, bad(err)
		}
		return i, nil
	case t.Name == "decimal" || t.Name == "numeric" || t.Name == "money" || t.Name == "smallmoney":
		if _, _, _, err := decimalParts(s); err != nil {
			return nil, bad(err)
		}
		return s, nil
	case t.Name == "float" || t.Name == "real":
		bits := 64
		if t.Name == "real" {
			bits = 32
		}
		f, err := strconv.ParseFloat(s, bits)
		if err != nil {
			return nil, bad(err)
		}
		return f, nil
	case t.isChar():
		return d.charParam(s), nil
	case t.Name == "binary" || t.Name == "varbinary":
		if !strings.HasPrefix(s, "0x") {
			return nil, bad(errors.New("want 0x and hex digits"))
		}
		b, err := hex.DecodeString(s[2:])
		if err != nil {
			return nil, bad(err)
		}
		return b, nil
	case t.Name == "uniqueidentifier":
		if len(s) != 36 {
			return nil, bad(errors.New("want 36 characters"))
		}
		if _, err := hex.DecodeString(strings.ReplaceAll(s, "-", "")); err != nil {
			return nil, bad(err)
		}
		return s, nil
	case t.isTemporal() || t.Name == "hierarchyid":
		return s, nil
	}
	return nil, fmt.Errorf("type %s cannot be a range key", t)
}
