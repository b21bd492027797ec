package mssql

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Character data is read as the UTF-16LE bytes of its nvarchar form (see
// tsql.go), not as go-mssqldb strings: the driver decodes nvarchar with
// unicode/utf16.Decode (ucs22str.go), which turns an unpaired surrogate
// into U+FFFD without telling anyone, and decodes varchar through its own
// code-page tables keyed by LCID (internal/cp/charset.go), which ignore
// SQL Server 2019's UTF-8 collations. Converting to nvarchar on the server
// lets SQL Server, which knows every collation, do the code-page work, and
// decoding UTF-16 here lets caravan apply its surrogate policy.

// decodeUTF16 decodes UTF-16LE. Unpaired surrogates become U+FFFD and are
// counted; the caller applies the policy.
func decodeUTF16(b []byte) (string, int, error) {
	if len(b)%2 != 0 {
		return "", 0, fmt.Errorf("UTF-16 text of odd length %d", len(b))
	}
	var sb strings.Builder
	sb.Grow(len(b) / 2)
	bad := 0
	n := len(b) / 2
	for i := 0; i < n; i++ {
		u := rune(binary.LittleEndian.Uint16(b[2*i:]))
		switch {
		case u < 0xd800 || u > 0xdfff:
			sb.WriteRune(u)
		case u <= 0xdbff && i+1 < n:
			u2 := rune(binary.LittleEndian.Uint16(b[2*i+2:]))
			if u2 >= 0xdc00 && u2 <= 0xdfff {
				sb.WriteRune(utf16.DecodeRune(u, u2))
				i++
				continue
			}
			sb.WriteRune(utf8.RuneError)
			bad++
		default:
			sb.WriteRune(utf8.RuneError)
			bad++
		}
	}
	return sb.String(), bad, nil
}

// encodeUTF16 is the inverse for valid text, used to pass string key
// bounds back to SQL Server as exact bytes.
func encodeUTF16(s string) []byte {
	units := utf16.Encode([]rune(s))
	out := make([]byte, 2*len(units))
	for i, u := range units {
		binary.LittleEndian.PutUint16(out[2*i:], u)
	}
	return out
}
