package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
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

	// ServerName names this server; JetStream clustering needs every
	// node's name to be unique and to stay the same across restarts.
	// Empty: "caravan-broker".
	ServerName string
	// ClusterName, ClusterListen and Routes join a NATS cluster: the
	// cluster's name (the same on every node), host:port this node listens
	// on for the other nodes, and their cluster URLs
	// (nats://host:port, this node's own may be listed too). Streams
	// replicated over three nodes survive the loss of any one of them.
	ClusterName   string
	ClusterListen string
	Routes        []string

	// Log receives the server's own notices, warnings and errors (routes
	// that cannot connect, storage trouble, JetStream leader changes).
	// Nil: the server logs nothing.
	Log *slog.Logger
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
	if cfg.ServerName == "" {
		cfg.ServerName = "caravan-broker"
	}
	opts := &server.Options{
		ServerName: cfg.ServerName,
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
	if err := cluster(opts, cfg); err != nil {
		return nil, err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	attach(srv, cfg.Log, slog.LevelInfo, opts.Routes)
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("broker: not ready after 10s")
	}
	return &Embedded{srv: srv}, nil
}

// cluster configures the routes to the other nodes of a cluster, if any.
func cluster(opts *server.Options, cfg ServerConfig) error {
	if cfg.ClusterListen == "" && cfg.ClusterName == "" && len(cfg.Routes) == 0 {
		return nil
	}
	if cfg.ClusterListen == "" || cfg.ClusterName == "" || len(cfg.Routes) == 0 {
		return errors.New("broker cluster: give --cluster-name, --cluster-listen and --routes together")
	}
	if cfg.ServerName == "caravan-broker" {
		return errors.New("broker cluster: give each node its own --server-name")
	}
	host, portText, err := net.SplitHostPort(cfg.ClusterListen)
	if err != nil {
		return fmt.Errorf("broker cluster listen address %q: %w", cfg.ClusterListen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return fmt.Errorf("broker cluster listen address %q: port: %w", cfg.ClusterListen, err)
	}
	opts.Cluster = server.ClusterOpts{Name: cfg.ClusterName, Host: host, Port: port}
	for _, r := range cfg.Routes {
		u, err := url.Parse(r)
		if err != nil || u.Host == "" {
			return fmt.Errorf("broker cluster route %q: want nats://host:port", r)
		}
		opts.Routes = append(opts.Routes, u)
	}
	return nil
}
