package mssql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"syscall"

	mssqldb "github.com/microsoft/go-mssqldb"

	"github.com/caravan-db/caravan/source"
)

// transientNumbers are server errors a later try can outlive: deadlock
// victim, lock timeout, a SNAPSHOT update conflict, memory or resource
// pressure, a database failing over or starting, and Azure SQL's
// throttling and reconfiguration errors.
var transientNumbers = map[int32]bool{
	1205: true, 1222: true, 3960: true, 701: true, 802: true, 8645: true, 8651: true,
	921: true, 922: true, 942: true, 952: true, 4060: true, 4221: true, 976: true, 978: true, 983: true,
	233: true, 10053: true, 10054: true, 10060: true, 10928: true, 10929: true,
	40143: true, 40197: true, 40501: true, 40613: true, 49918: true, 49919: true, 49920: true,
}

// isOutage says whether err is the source being away (the connection
// lost, the server restarting or shedding load), which is worth waiting
// for. Everything else a read meets is permanent: a syntax or permission
// error, a value the engine or caravan cannot convert, a bound that does
// not parse. Those fail the chunk at once; eight retries of the same
// statement on the same rows end the same way.
func isOutage(err error) bool {
	var msErr mssqldb.Error
	if errors.As(err, &msErr) {
		return transientNumbers[msErr.Number]
	}
	var stream mssqldb.StreamError
	if errors.As(err, &stream) {
		return true // a broken TDS stream: the connection is gone
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	for _, e := range []error{driver.ErrBadConn, sql.ErrConnDone, io.EOF, io.ErrUnexpectedEOF,
		syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EPIPE} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// classify marks a read error permanent unless it is an outage or the
// read was cancelled (a shutdown: the task goes to another extractor).
func classify(ctx context.Context, err error) error {
	if err == nil || isOutage(err) || ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return source.Permanent(err)
}
