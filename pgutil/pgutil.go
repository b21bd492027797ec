// Package pgutil opens PostgreSQL connections the way every caravan role
// needs them: with the session settings that make PostgreSQL print values
// in caravan's canonical text form, and with credentials kept out of errors.
package pgutil

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SessionParams fix how PostgreSQL prints and parses values. The extractor
// digests a source's output and the validator re-digests the target's, so
// both sides must print a value identically.
var sessionParams = map[string]string{
	"DateStyle":                   "ISO, MDY",
	"IntervalStyle":               "postgres",
	"TimeZone":                    "UTC",
	"extra_float_digits":          "1",
	"bytea_output":                "hex",
	"standard_conforming_strings": "on",
	"client_encoding":             "UTF8",
	// A loader acknowledges a batch once PostgreSQL says it committed; a
	// server running with synchronous_commit off may forget such a commit
	// in a crash, and the batch would be lost for good. caravan's own
	// transactions are durable whatever the server's default.
	"synchronous_commit": "on",
}

// Config parses a connection URL and applies the canonical session settings.
func Config(connURL, appName string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(connURL)
	if err != nil {
		return nil, fmt.Errorf("parse PostgreSQL URL %s: %w", Redact(connURL), scrub(err, connURL))
	}
	for k, v := range sessionParams {
		cfg.ConnConfig.RuntimeParams[k] = v
	}
	if appName != "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = appName
	}
	return cfg, nil
}

// Pool opens a pool with the canonical session settings and checks it.
func Pool(ctx context.Context, connURL, appName string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := Config(connURL, appName)
	if err != nil {
		return nil, err
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", Redact(connURL), scrub(err, connURL))
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect %s: %w", Redact(connURL), scrub(err, connURL))
	}
	return pool, nil
}

// Conn opens one connection with the canonical session settings.
func Conn(ctx context.Context, connURL, appName string) (*pgx.Conn, error) {
	cfg, err := Config(connURL, appName)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", Redact(connURL), scrub(err, connURL))
	}
	return conn, nil
}

// Redact replaces the password of a URL (or of a key=value DSN) with
// "xxxxx", so the rest still tells a user which server is meant.
func Redact(s string) string {
	if u, err := url.Parse(s); err == nil && u.Scheme != "" {
		if u.User != nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			}
		}
		q := u.Query()
		for k := range q {
			if strings.EqualFold(k, "password") {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	// A URL net/url refuses (a bad port, a stray character) still carries
	// its password in the userinfo: cut it out by position.
	if strings.Contains(s, "://") {
		if lo, hi, ok := rawURLPassword(s); ok {
			s = s[:lo] + "xxxxx" + s[hi:]
		}
		return queryPasswordRE.ReplaceAllString(s, "${1}xxxxx")
	}
	// key=value form: password=... up to the next space.
	fields := strings.Fields(s)
	for i, f := range fields {
		if k, _, ok := strings.Cut(f, "="); ok && strings.EqualFold(k, "password") {
			fields[i] = k + "=xxxxx"
		}
	}
	return strings.Join(fields, " ")
}

// scrub removes a URL's password from an error's text: drivers sometimes
// echo the connection string back.
func scrub(err error, connURL string) error {
	pw := password(connURL)
	if err == nil || pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), pw, "xxxxx"))
}

func password(connURL string) string {
	if u, err := url.Parse(connURL); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			return p
		}
		return u.Query().Get("password")
	}
	if lo, hi, ok := rawURLPassword(connURL); ok {
		return connURL[lo:hi]
	}
	if m := queryPasswordRE.FindStringSubmatch(connURL); m != nil {
		return m[2]
	}
	for _, f := range strings.Fields(connURL) {
		if k, v, ok := strings.Cut(f, "="); ok && strings.EqualFold(k, "password") {
			return v
		}
	}
	return ""
}

// IsDataError says whether err is PostgreSQL refusing the data itself
// (a bad value or a violated constraint): retrying cannot help.
func IsDataError(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23")
}

// RangePredicate renders "[lo, hi)" over a (possibly composite) key as a
// row-value comparison with every bound a query parameter cast to the key
// column's type, numbered from $argBase+1. cols are quoted key expressions.
// A nil bound is open. It returns "TRUE" when both ends are open.
func RangePredicate(cols, types []string, lo, hi []string, argBase int) (string, []any) {
	return RangePredicateWith(cols, types, lo, hi, func(n int, typ string) string {
		return fmt.Sprintf("$%d::%s", argBase+n, typ)
	})
}

// RangePredicateWith is RangePredicate with the n-th bound (from 1)
// rendered by param: statements that take no bind parameters, such as
// COPY, read their bounds from settings set with parameters beforehand.
func RangePredicateWith(cols, types []string, lo, hi []string, param func(n int, typ string) string) (string, []any) {
	var parts []string
	var args []any
	bound := func(vals []string, op string) {
		ph := make([]string, len(vals))
		for i, v := range vals {
			args = append(args, v)
			ph[i] = param(len(args), types[i])
		}
		parts = append(parts, fmt.Sprintf("(%s) %s (%s)", strings.Join(cols, ", "), op, strings.Join(ph, ", ")))
	}
	if lo != nil {
		bound(lo, ">=")
	}
	if hi != nil {
		bound(hi, "<")
	}
	if len(parts) == 0 {
		return "TRUE", nil
	}
	return strings.Join(parts, " AND "), args
}

// queryPasswordRE matches a password=... query parameter of a URL.
var queryPasswordRE = regexp.MustCompile(`(?i)([?&]password=)([^&#\s]*)`)

// rawURLPassword finds the password of scheme://user:password@host... by
// position alone, for URLs net/url cannot parse. It returns the password's
// bounds in s.
func rawURLPassword(s string) (lo, hi int, ok bool) {
	i := strings.Index(s, "://")
	if i < 0 {
		return 0, 0, false
	}
	start := i + 3
	authority := s[start:]
	if end := strings.IndexAny(authority, "/?#"); end >= 0 {
		authority = authority[:end]
	}
	at := strings.LastIndexByte(authority, '@')
	if at < 0 {
		return 0, 0, false
	}
	colon := strings.IndexByte(authority[:at], ':')
	if colon < 0 || colon+1 == at {
		return 0, 0, false
	}
	return start + colon + 1, start + at, true
}

// IsTransient says whether err is the database (or the network to it)
// being unavailable rather than anything wrong with the work: a restart, a
// failover, a dropped connection, too many connections, a deadlock. Such
// work is retried for as long as it takes, never given up on.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return true
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03", // shutdown, crash, starting up
			pgErr.Code == "53300",                        // too many connections
			pgErr.Code == "40001", pgErr.Code == "40P01": // serialization failure, deadlock
			return true
		}
		return false
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	for _, e := range []error{io.EOF, io.ErrUnexpectedEOF, syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EPIPE} {
		if errors.Is(err, e) {
			return true
		}
	}
	// pgx reports a connection lost mid-statement this way.
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "connection reset") || strings.Contains(msg, "unexpected EOF")
}
