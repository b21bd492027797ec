package pgutil

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://bob:s3cret@db:5432/app?sslmode=disable": "postgres://bob:xxxxx@db:5432/app?sslmode=disable",
		"postgres://bob@db/app":                             "postgres://bob@db/app",
		"sqlserver://sa:p%40ss@host?database=x":             "sqlserver://sa:xxxxx@host?database=x",
		"postgres://db/app?password=s3cret&user=bob":        "postgres://db/app?password=xxxxx&user=bob",
		"host=db user=bob password=s3cret dbname=app":       "host=db user=bob password=xxxxx dbname=app",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestScrubRemovesPasswordFromErrors(t *testing.T) {
	err := scrub(errors.New("cannot connect with s3cret"), "postgres://bob:s3cret@db/app")
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("password survived: %v", err)
	}
}

func TestRangePredicate(t *testing.T) {
	where, args := RangePredicate([]string{`"a"`, `"b"`}, []string{"integer", "text"}, []string{"1", "x"}, []string{"5", "y"}, 2)
	want := `("a", "b") >= ($3::integer, $4::text) AND ("a", "b") < ($5::integer, $6::text)`
	if where != want {
		t.Errorf("got %s\nwant %s", where, want)
	}
	if len(args) != 4 || args[0] != "1" || args[3] != "y" {
		t.Errorf("args %v", args)
	}
	if where, args := RangePredicate([]string{`"a"`}, []string{"int"}, nil, nil, 0); where != "TRUE" || args != nil {
		t.Errorf("open range: %s %v", where, args)
	}
	if where, _ := RangePredicate([]string{`"a"`}, []string{"int"}, nil, []string{"9"}, 0); where != `("a") < ($1::int)` {
		t.Errorf("half-open range: %s", where)
	}
}

// A URL net/url refuses must not leak its password through the key=value
// fallback.
func TestRedactUnparsableURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://bob:s3cret@db:port/app":  "postgres://bob:xxxxx@db:port/app",
		"postgres://bob:s3@cret@db:bad/app":  "postgres://bob:xxxxx@db:bad/app",
		"postgres://bob@db:bad/app":          "postgres://bob@db:bad/app",
		"postgres://db:bad/app?password=abc": "postgres://db:bad/app?password=xxxxx",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	if pw := password("postgres://bob:s3cret@db:port/app"); pw != "s3cret" {
		t.Errorf("password of an unparsable URL: %q", pw)
	}
}

func TestIsTransient(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "57P01"}, true},
		{&pgconn.PgError{Code: "08006"}, true},
		{&pgconn.PgError{Code: "40P01"}, true},
		{&pgconn.PgError{Code: "22001"}, false},
		{&pgconn.PgError{Code: "42P01"}, false},
		{fmt.Errorf("copy: %w", io.ErrUnexpectedEOF), true},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{errors.New("something else"), false},
		{nil, false},
	} {
		if got := IsTransient(c.err); got != c.want {
			t.Errorf("IsTransient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
