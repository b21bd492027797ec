package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/caravan-db/caravan/broker"
)

// brokerCommand runs the NATS JetStream server migrate embeds as a process
// of its own, so a distributed run needs no separately installed
// nats-server, and can join others in a cluster so no single broker is
// lost. Any NATS server with JetStream from broker.MinServerVersion on serves
// caravan as well.
func brokerCommand() *cli.Command {
	return &cli.Command{
		Name:  "broker",
		Usage: "run a NATS JetStream server for the roles to share (prints its URL on stdout; stops on SIGTERM)",
		Flags: join([]cli.Flag{
			str("data-dir", "JetStream storage directory (a temporary one, removed on exit, when empty)", ""),
			str("listen", "host:port for NATS clients; 0.0.0.0:4222 to accept other machines, port 0 for any free one", "127.0.0.1:4222"),
			num("monitor-port", "NATS HTTP monitoring port on the --listen host (/healthz, /jsz for KEDA); 0: off", 0),
			str("server-name", "this node's name, unique in its cluster and kept across restarts (default caravan-broker)", ""),
			str("cluster-name", "join a NATS cluster of this name (with --cluster-listen and --routes; the same on every node)", ""),
			str("cluster-listen", "host:port this node listens on for the other nodes of its cluster, e.g. 0.0.0.0:6222", ""),
			strs("routes", "cluster URLs of the other nodes, e.g. nats://10.0.0.11:6222 (repeatable or comma-separated)"),
		}, logFlags),
		Action: func(c *cli.Context) error {
			log, err := logger(c)
			if err != nil {
				return err
			}
			dir := c.String("data-dir")
			if dir == "" {
				if dir, err = os.MkdirTemp("", "caravan-broker-"); err != nil {
					return fmt.Errorf("broker: %w", err)
				}
				defer os.RemoveAll(dir)
				log.Warn("JetStream data lives in a temporary directory and is lost on exit; pass --data-dir to keep it", "data_dir", dir)
			}
			srv, err := broker.StartServer(broker.ServerConfig{Dir: dir, Listen: c.String("listen"), MonitorPort: c.Int("monitor-port"),
				ServerName: c.String("server-name"), ClusterName: c.String("cluster-name"), ClusterListen: c.String("cluster-listen"),
				Routes: splitList(c.StringSlice("routes")), Log: log})
			if err != nil {
				return err
			}
			defer srv.Shutdown()
			// The URL alone on stdout: scripts and tests read it from there.
			fmt.Fprintln(os.Stdout, srv.URL())
			log.Info("broker started", "url", srv.URL(), "data_dir", dir, "server_name", c.String("server-name"), "cluster", c.String("cluster-name"))
			<-c.Context.Done()
			log.Info("broker stopping")
			return nil
		},
	}
}
