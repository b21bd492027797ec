package mssql

import (
	"database/sql/driver"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/caravan-db/caravan/proto"
)

// BenchmarkRowConverterLine is the extractor's per-row CPU for the table of
// bench.BenchmarkTSQLCompare: the values as go-mssqldb's Scan gives them,
// printed into one COPY line.
func BenchmarkRowConverterLine(b *testing.B) {
	s := &Source{d: babelfish, log: slog.Default()}
	task := &proto.ChunkTask{
		Source: proto.TableRef{Schema: "dbo", Name: "bench"},
		Cols:   []string{"id", "amount", "at", "ref", "ratio", "flag", "price"},
		Types:  []string{"bigint", "numeric(18,4)", "datetime2(6)", "uniqueidentifier", "float", "bit", "money"},
	}
	conv, err := s.newRowConverter(task)
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2024, 1, 1, 0, 0, 0, 123456000, time.UTC)
	rows := make([][]driver.Value, 1024)
	for i := range rows {
		n := int64(i*7919 + 1)
		rows[i] = []driver.Value{n, []byte(strconv.FormatInt(n*10000/7, 10) + ".1429"), at.Add(time.Duration(n) * time.Second),
			[]byte{byte(n), 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, byte(n >> 8)}, float64(n) / 3, n%2 == 0,
			[]byte(strconv.FormatInt(n%100000/3, 10) + ".3333")}
	}
	key := func() string { return "(id=1)" }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := conv.line(rows[i%len(rows)], key); err != nil {
			b.Fatal(err)
		}
	}
}
