package mssql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	mssqldb "github.com/microsoft/go-mssqldb"

	"github.com/caravan-db/caravan/source"
)

func TestClassify(t *testing.T) {
	ctx := context.Background()
	permanent := []error{
		mssqldb.Error{Number: 102, Message: "Incorrect syntax near ','"},
		mssqldb.Error{Number: 229, Message: "The SELECT permission was denied"},
		mssqldb.Error{Number: 245, Message: "Conversion failed"},
		mssqldb.Error{Number: 33557097, Message: "syntax error near ','"}, // Babelfish's catch-all
		fmt.Errorf("table dbo.T column \"c\" key (id=1): %w", errNUL),
		errors.New("low bound, key column [id]: bound \"x\" is not a int"),
	}
	for _, err := range permanent {
		if got := classify(ctx, fmt.Errorf("page: %w", err)); !source.IsPermanent(got) {
			t.Errorf("%v: not permanent", err)
		}
	}
	transient := []error{
		mssqldb.Error{Number: 1205, Message: "deadlock victim"},
		mssqldb.Error{Number: 40613, Message: "database not currently available"},
		io.EOF,
		&net.OpError{Op: "read", Err: errors.New("connection reset by peer")},
		mssqldb.StreamError{InnerError: errors.New("invalid TDS stream")},
	}
	for _, err := range transient {
		if got := classify(ctx, fmt.Errorf("page: %w", err)); source.IsPermanent(got) {
			t.Errorf("%v: permanent", err)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if source.IsPermanent(classify(cancelled, errors.New("anything"))) {
		t.Error("an error after cancellation is permanent")
	}
}
