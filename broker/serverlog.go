package broker

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// serverLog hands the NATS server's own messages (cluster routes that cannot
// connect, JetStream storage trouble, leader changes) to caravan's logger, so
// a broker that has a problem says so in the same log as everything else
// instead of failing silently. Notices are logged at min or above: the
// standalone broker shows them, the embedded one keeps only warnings and errors.
type serverLog struct {
	log     *slog.Logger
	min     slog.Level
	secrets []string // passwords of the configured route URLs
}

// attach installs l as srv's logger; a nil l leaves the server silent.
func attach(srv *server.Server, l *slog.Logger, min slog.Level, routes []*url.URL) {
	if l == nil {
		return
	}
	sl := &serverLog{log: l.With("component", "nats-server"), min: min}
	for _, r := range routes {
		if pw, ok := r.User.Password(); ok && pw != "" {
			sl.secrets = append(sl.secrets, pw)
		}
	}
	srv.SetLoggerV2(sl, false, false, false)
}

func (s *serverLog) emit(level slog.Level, format string, v ...any) {
	if level < s.min {
		return
	}
	// Route URLs may carry credentials and the server prints them as
	// configured: never let a password reach the log.
	msg := strings.TrimSpace(fmt.Sprintf(format, v...))
	for _, pw := range s.secrets {
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
	}
	s.log.Log(context.Background(), level, msg)
}

func (s *serverLog) Noticef(format string, v ...any) { s.emit(slog.LevelInfo, format, v...) }
func (s *serverLog) Warnf(format string, v ...any)   { s.emit(slog.LevelWarn, format, v...) }
func (s *serverLog) Errorf(format string, v ...any)  { s.emit(slog.LevelError, format, v...) }
func (s *serverLog) Fatalf(format string, v ...any)  { s.emit(slog.LevelError, format, v...) }
func (s *serverLog) Debugf(format string, v ...any)  { s.emit(slog.LevelDebug, format, v...) }
func (s *serverLog) Tracef(format string, v ...any)  { s.emit(slog.LevelDebug-4, format, v...) }

var _ server.Logger = (*serverLog)(nil)
