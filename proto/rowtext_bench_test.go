package proto_test

import (
	"strconv"
	"testing"

	"github.com/caravan-db/caravan/proto"
)

// benchRows are COPY text lines shaped like the bench dataset's: a
// pgbench_accounts row (narrow, blank-padded filler) and bench_wide rows
// with escapes, multi-byte UTF-8, JSON, bytea hex, arrays and NULLs.
func benchRows() map[string][][]byte {
	var rb proto.RowBuilder
	accounts := make([][]byte, 0, 1000)
	wide := make([][]byte, 0, 1000)
	for i := range 1000 {
		rb.Reset()
		rb.String(strconv.Itoa(i + 1))
		rb.String("1")
		rb.String("0")
		rb.String("                                                                                    ")
		accounts = append(accounts, append([]byte(nil), rb.Line()...))

		rb.Reset()
		rb.String(strconv.Itoa(i + 1))
		if i%17 == 0 {
			rb.Null()
		} else {
			rb.String(strconv.Itoa(i*7919%1000000 - 500000))
		}
		rb.String("-4999895.2710")
		rb.String("841470.9848078965")
		switch i % 4 {
		case 0:
			rb.Null()
		case 1:
			rb.String("Zürich ☃ 東京 🚀 " + strconv.Itoa(i))
		case 2:
			rb.String("tab\there\nnewline \\ back " + strconv.Itoa(i))
		default:
			rb.String("c4ca4238a0b923820dcc509a6f75849bc4ca4238a0b923820dcc509a6f75849b")
		}
		rb.String("C-9e3779b1")
		rb.String("t")
		rb.String("2000-01-02")
		rb.String("2020-01-01 00:00:01.234567+00")
		rb.String("c4ca4238-a0b9-2382-0dcc-509a6f75849b")
		rb.String(`{"id": 1, "tags": [1, 1], "name": "item 1", "nested": {"v": 0.33333333333333333333, "ok": false}}`)
		rb.String(`\xc4ca4238a0b923820dcc509a6f75849bc4ca4238a0b923820dcc509a6f75849b`)
		rb.String("{1,1,1,-1}")
		wide = append(wide, append([]byte(nil), rb.Line()...))
	}
	return map[string][][]byte{"accounts": accounts, "wide": wide}
}

// BenchmarkSplitRowHash is the extractor's per-row work besides reading:
// decode the line into fields and hash them for the chunk digest.
func BenchmarkSplitRowHash(b *testing.B) {
	for _, name := range []string{"accounts", "wide"} {
		rows := benchRows()[name]
		var size int64
		for _, r := range rows {
			size += int64(len(r))
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size / int64(len(rows)))
			b.ReportAllocs()
			var (
				fields  []proto.Field
				scratch []byte
				d       proto.Digest
				err     error
				i       int
			)
			for b.Loop() {
				fields, err = proto.SplitRow(fields[:0], rows[i%len(rows)])
				if err != nil {
					b.Fatal(err)
				}
				var h uint64
				h, scratch = proto.RowHash(fields, scratch)
				d.Add(h)
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
