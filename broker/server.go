package broker

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ServerConfig configures a standalone broker (`caravan broker`).
type ServerConfig struct {
	Dir string // JetStream storage
	// Listen is host:port for clients; port 0 picks a free one.
	Listen string
	// MonitorPort, when not 0, serves NATS's HTTP monitoring (/healthz,
	// /jsz, /varz) on the Listen host: what healthchecks and the KEDA
	// scaler read.
	MonitorPort int
	// MaxPayload bounds one message; 0 means 8 MiB, the same as the
	// embedded broker of migrate, so batch sizes carry over.
	MaxPayload int32
}

// StartServer starts a NATS server with JetStream for other processes to
// share: the same server migrate embeds, listening where it is told.
func StartServer(cfg ServerConfig) (*Embedded, error) {
	host, portText, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("broker listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("broker listen address %q: port: %w", cfg.Listen, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = 8 << 20
	}
	opts := &server.Options{
		ServerName: "caravan-broker",
		Host:       host,
		Port:       port,
		HTTPHost:   host,
		HTTPPort:   cfg.MonitorPort,
		JetStream:  true,
		StoreDir:   cfg.Dir,
		NoLog:      true,
		NoSigs:     true, // caravan's CLI handles SIGTERM and shuts down cleanly
		MaxPayload: cfg.MaxPayload,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("broker: not ready after 10s")
	}
	return &Embedded{srv: srv}, nil
}
