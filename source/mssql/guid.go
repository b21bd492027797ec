package mssql

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// uniqueidentifier values arrive from go-mssqldb as the 16 bytes SQL Server
// sends on the wire: Data1 (4 bytes), Data2 and Data3 (2 bytes each)
// little-endian, then Data4's 8 bytes as they are (decodeGuid in
// go-mssqldb's types.go only swaps them when the "guid conversion"
// connection parameter is set; Open forces it off so the order is always
// this one). RFC 4122 order, which PostgreSQL's uuid and every text form
// use, has the first three fields big-endian.

// guidToRFC returns the RFC 4122 byte order of a wire-order GUID.
func guidToRFC(wire []byte) ([16]byte, error) {
	var u [16]byte
	if len(wire) != 16 {
		return u, fmt.Errorf("uniqueidentifier: %d bytes, want 16", len(wire))
	}
	u[0], u[1], u[2], u[3] = wire[3], wire[2], wire[1], wire[0]
	u[4], u[5] = wire[5], wire[4]
	u[6], u[7] = wire[7], wire[6]
	copy(u[8:], wire[8:])
	return u, nil
}

// formatUUID prints RFC-order bytes as uuid_out does: lower-case hex,
// 8-4-4-4-12.
func formatUUID(u [16]byte) string { return string(appendUUID(make([]byte, 0, 36), u)) }

func appendUUID(dst []byte, u [16]byte) []byte {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], u[10:16])
	return append(dst, b[:]...)
}

// guidText is the text SQL Server prints and parses for a uniqueidentifier
// (upper case); bounds and natural text use it.
func guidText(wire []byte) (string, error) {
	u, err := guidToRFC(wire)
	if err != nil {
		return "", err
	}
	return strings.ToUpper(formatUUID(u)), nil
}
