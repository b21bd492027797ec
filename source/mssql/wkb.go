package mssql

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Spatial values for a PostGIS target are read as 4 bytes of SRID (big
// endian, CAST(col.STSrid AS binary(4))) followed by col.AsBinaryZM(): ISO
// WKB, which marks Z and M by adding 1000/2000/3000 to the type code.
// PostGIS prints a geometry as hex EWKB (upper case, little-endian, Z/M/SRID
// as flag bits 0x80000000/0x40000000/0x20000000, SRID only on the outermost
// geometry and only when not 0). isoToEWKB rewrites one into the other so
// the canonical text is what geometry_out prints.

const (
	ewkbZ    = 0x80000000
	ewkbM    = 0x40000000
	ewkbSRID = 0x20000000
)

// sridWKBToEWKB turns the 4-byte SRID + ISO WKB value into EWKB.
func sridWKBToEWKB(v []byte) ([]byte, error) {
	if len(v) < 4 {
		return nil, fmt.Errorf("spatial value: %d bytes, want SRID and WKB", len(v))
	}
	srid := binary.BigEndian.Uint32(v[:4])
	w := &wkbWalker{in: v[4:]}
	out, err := w.geometry(nil, int32(srid), true, 0)
	if err != nil {
		return nil, err
	}
	if w.pos != len(w.in) {
		return nil, fmt.Errorf("spatial value: %d trailing bytes after WKB", len(w.in)-w.pos)
	}
	return out, nil
}

type wkbWalker struct {
	in  []byte
	pos int
}

func (w *wkbWalker) need(n int) error {
	if w.pos+n > len(w.in) {
		return fmt.Errorf("WKB truncated at byte %d", w.pos)
	}
	return nil
}

func (w *wkbWalker) u32(bo binary.ByteOrder) (uint32, error) {
	if err := w.need(4); err != nil {
		return 0, err
	}
	v := bo.Uint32(w.in[w.pos:])
	w.pos += 4
	return v, nil
}

func (w *wkbWalker) geometry(out []byte, srid int32, top bool, depth int) ([]byte, error) {
	if depth > 32 {
		return nil, fmt.Errorf("WKB nested too deeply")
	}
	if err := w.need(1); err != nil {
		return nil, err
	}
	var bo binary.ByteOrder = binary.LittleEndian
	switch w.in[w.pos] {
	case 0:
		bo = binary.BigEndian
	case 1:
	default:
		return nil, fmt.Errorf("WKB byte order %d", w.in[w.pos])
	}
	w.pos++
	code, err := w.u32(bo)
	if err != nil {
		return nil, err
	}
	base := code % 1000
	var dims int
	var flags uint32
	switch code / 1000 {
	case 0:
		dims = 2
	case 1:
		dims, flags = 3, ewkbZ
	case 2:
		dims, flags = 3, ewkbM
	case 3:
		dims, flags = 4, ewkbZ|ewkbM
	default:
		return nil, fmt.Errorf("WKB type %d", code)
	}
	if top && srid != 0 {
		flags |= ewkbSRID
	}
	out = append(out, 1)
	out = binary.LittleEndian.AppendUint32(out, base|flags)
	if top && srid != 0 {
		out = binary.LittleEndian.AppendUint32(out, uint32(srid))
	}
	switch base {
	case 1: // point
		return w.coords(out, bo, dims, 1)
	case 2, 8: // linestring, circularstring
		n, err := w.u32(bo)
		if err != nil {
			return nil, err
		}
		out = binary.LittleEndian.AppendUint32(out, n)
		return w.coords(out, bo, dims, int(n))
	case 3: // polygon: rings of points
		rings, err := w.u32(bo)
		if err != nil {
			return nil, err
		}
		out = binary.LittleEndian.AppendUint32(out, rings)
		for r := uint32(0); r < rings; r++ {
			n, err := w.u32(bo)
			if err != nil {
				return nil, err
			}
			out = binary.LittleEndian.AppendUint32(out, n)
			if out, err = w.coords(out, bo, dims, int(n)); err != nil {
				return nil, err
			}
		}
		return out, nil
	case 4, 5, 6, 7, 9, 10, 11, 12: // multi*, collection, compound curve, curve polygon, multicurve, multisurface
		n, err := w.u32(bo)
		if err != nil {
			return nil, err
		}
		out = binary.LittleEndian.AppendUint32(out, n)
		for i := uint32(0); i < n; i++ {
			if out, err = w.geometry(out, srid, false, depth+1); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("WKB geometry type %d not supported", base)
}

func (w *wkbWalker) coords(out []byte, bo binary.ByteOrder, dims, n int) ([]byte, error) {
	if n < 0 || n > len(w.in) {
		return nil, fmt.Errorf("WKB point count %d", n)
	}
	if err := w.need(8 * dims * n); err != nil {
		return nil, err
	}
	for i := 0; i < dims*n; i++ {
		f := bo.Uint64(w.in[w.pos:])
		w.pos += 8
		out = binary.LittleEndian.AppendUint64(out, f)
	}
	return out, nil
}

// formatEWKB prints EWKB as PostGIS's geometry_out: upper-case hex.
func formatEWKB(b []byte) string {
	return strings.ToUpper(fmt.Sprintf("%x", b))
}
