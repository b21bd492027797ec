package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"
	"go.opentelemetry.io/otel"

	"github.com/caravan-db/caravan/telemetry"
)

// observationKey is where a command's telemetry waits in App.Metadata
// between Before and the Action.
const observationKey = "caravan.observation"

// observation is one process's telemetry: the OTel providers set up from
// the OTEL_* environment and, with --metrics-addr, the Prometheus endpoint.
type observation struct {
	metrics  *telemetry.Metrics
	shutdown func(context.Context) error
	server   *http.Server
	served   chan error
	log      *slog.Logger
	// stopRuntime ends what tuneRuntime started (the CPU profile).
	stopRuntime func()
}

// observed gives a long-running command its telemetry: the --metrics-addr
// flag, tracing and metrics set up before the Action runs (after --config
// is read, so every flag source applies) and flushed after it returns.
// service names the process in traces (service.name, unless
// OTEL_SERVICE_NAME says otherwise).
func observed(service string, cmd *cli.Command) *cli.Command {
	cmd.Flags = append(cmd.Flags, observeFlags...)
	before, after := cmd.Before, cmd.After
	cmd.Before = func(c *cli.Context) error {
		if before != nil {
			if err := before(c); err != nil {
				return err
			}
		}
		obs, err := observe(c, service)
		if err != nil {
			return err
		}
		if c.App.Metadata == nil {
			c.App.Metadata = map[string]any{}
		}
		c.App.Metadata[observationKey] = obs
		return nil
	}
	cmd.After = func(c *cli.Context) error {
		// After runs even when Before failed, so the observation may be missing.
		if obs, ok := c.App.Metadata[observationKey].(*observation); ok {
			obs.close(c.Context)
			delete(c.App.Metadata, observationKey)
		}
		if after != nil {
			return after(c)
		}
		return nil
	}
	return cmd
}

// metrics returns the command's instruments, nil (record nothing) when the
// command was not wrapped by observed or --metrics-addr is off.
func metrics(c *cli.Context) *telemetry.Metrics {
	if obs, ok := c.App.Metadata[observationKey].(*observation); ok {
		return obs.metrics
	}
	return nil
}

func observe(c *cli.Context, service string) (*observation, error) {
	log, err := logger(c)
	if err != nil {
		return nil, err
	}
	obs := &observation{log: log}
	var reg *prometheus.Registry
	var opts []telemetry.Option
	addr := c.String("metrics-addr")
	if addr != "" {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		opts = append(opts, telemetry.WithPrometheus(reg))
	}
	if obs.shutdown, err = telemetry.Setup(c.Context, service, opts...); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	// Export failures (a collector down) go to the log like everything else,
	// not as a bare line from the standard logger.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("telemetry export", "err", err) }))
	if obs.stopRuntime, err = tuneRuntime(c, log); err != nil {
		obs.close(c.Context)
		return nil, err
	}
	if reg == nil {
		return obs, nil
	}
	// The global MeterProvider Setup installed carries the Prometheus reader.
	if obs.metrics, err = telemetry.NewMetrics(nil); err != nil {
		obs.close(c.Context)
		return nil, err
	}
	// Listen before serving so a taken port fails the command at once, and
	// so ":0" resolves to a port the log line can name.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		obs.close(c.Context)
		return nil, fmt.Errorf("--metrics-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	obs.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	obs.served = make(chan error, 1)
	go func() { obs.served <- obs.server.Serve(ln) }()
	log.Info("metrics endpoint", "metrics_addr", ln.Addr().String(), "path", "/metrics")
	return obs, nil
}

// close stops the endpoint and flushes spans still buffered, within a
// bounded time: an unreachable collector must not hold the exit.
func (o *observation) close(ctx context.Context) {
	if o.stopRuntime != nil {
		o.stopRuntime()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if o.server != nil {
		_ = o.server.Shutdown(ctx)
		if err := <-o.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.log.Warn("metrics endpoint", "err", err)
		}
	}
	if o.shutdown != nil {
		if err := o.shutdown(ctx); err != nil {
			o.log.Warn("telemetry shutdown", "err", err)
		}
	}
}

// healthcheckCommand probes a role's /healthz: container images without a
// shell (distroless) use it as their HEALTHCHECK.
func healthcheckCommand() *cli.Command {
	return &cli.Command{
		Name:  "healthcheck",
		Usage: "exit 0 when the URL answers 200 (for container healthchecks)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "url", Usage: "URL to probe", Value: "http://127.0.0.1:9464/healthz", EnvVars: env("healthcheck-url")},
			&cli.DurationFlag{Name: "timeout", Usage: "give up after this long", Value: 3 * time.Second},
		},
		Action: func(c *cli.Context) error {
			ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.String("url"), nil)
			if err != nil {
				return fmt.Errorf("healthcheck: %w", err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("healthcheck: %w", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("healthcheck: %s answered %s", c.String("url"), resp.Status)
			}
			return nil
		},
	}
}
