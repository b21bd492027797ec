package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Option adjusts Setup.
type Option func(*setupConfig)

type setupConfig struct {
	registry *prometheus.Registry
	getenv   func(string) string
}

// WithPrometheus makes Setup install a global MeterProvider whose metrics
// are gathered by reg (served on --metrics-addr by the caller). Without it
// no MeterProvider is installed and every instrument is a no-op.
func WithPrometheus(reg *prometheus.Registry) Option {
	return func(c *setupConfig) { c.registry = reg }
}

// withEnv replaces the environment lookup, for tests.
func withEnv(getenv func(string) string) Option {
	return func(c *setupConfig) { c.getenv = getenv }
}

// Setup installs the global OpenTelemetry providers for one process.
//
// Traces are exported over OTLP only when the standard environment asks for
// it: OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is
// set, or OTEL_TRACES_EXPORTER=otlp. OTEL_TRACES_EXPORTER=none turns export
// off whatever else is set. OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL picks grpc
// or http/protobuf (the specification's default). Every other OTEL_* knob
// (headers, TLS, timeouts, sampler, resource attributes) is read by the SDK
// itself. With nothing configured the global TracerProvider stays the no-op
// one, so spans cost next to nothing and nothing leaves the process.
//
// service.name is OTEL_SERVICE_NAME when set, else serviceName.
//
// The returned shutdown flushes pending spans; call it before exiting.
func Setup(ctx context.Context, serviceName string, opts ...Option) (shutdown func(context.Context) error, err error) {
	cfg := setupConfig{getenv: os.Getenv}
	for _, o := range opts {
		o(&cfg)
	}
	// The global propagator only matters to third-party instrumentation:
	// caravan's own NATS propagation uses Inject/Extract.
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))

	exporter, err := traceExporterKind(cfg.getenv)
	if err != nil {
		return nil, err
	}
	if exporter == "" && cfg.registry == nil {
		return func(context.Context) error { return nil }, nil
	}
	res, err := resource.New(ctx,
		// Later detectors win: the environment overrides the default name.
		resource.WithAttributes(attribute.String("service.name", serviceName)),
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessPID(),
	)
	if err != nil && res == nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}

	var shutdowns []func(context.Context) error
	shutdown = func(ctx context.Context) error {
		var errs []error
		for _, s := range shutdowns {
			errs = append(errs, s(ctx))
		}
		return errors.Join(errs...)
	}

	if exporter != "" {
		exp, err := newTraceExporter(ctx, exporter)
		if err != nil {
			return nil, err
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
		otel.SetTracerProvider(tp)
		shutdowns = append(shutdowns, tp.Shutdown)
	}
	if cfg.registry != nil {
		mp, err := NewPrometheusProvider(cfg.registry, res)
		if err != nil {
			_ = shutdown(ctx)
			return nil, err
		}
		otel.SetMeterProvider(mp)
		shutdowns = append(shutdowns, mp.Shutdown)
	}
	return shutdown, nil
}

// NewPrometheusProvider returns a MeterProvider whose metrics reg gathers.
// res may be nil.
func NewPrometheusProvider(reg *prometheus.Registry, res *resource.Resource) (*sdkmetric.MeterProvider, error) {
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	opts := []sdkmetric.Option{sdkmetric.WithReader(exp)}
	if res != nil {
		opts = append(opts, sdkmetric.WithResource(res))
	}
	return sdkmetric.NewMeterProvider(opts...), nil
}

// Trace exporter kinds.
const (
	protoGRPC = "grpc"
	protoHTTP = "http/protobuf"
)

// traceExporterKind reads the OTEL_* environment and returns the OTLP
// protocol to export spans with, or "" for no export.
func traceExporterKind(getenv func(string) string) (string, error) {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return "", nil
	}
	want := false
	switch v := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); v {
	case "none":
		return "", nil
	case "otlp":
		want = true
	case "":
		want = getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	default:
		return "", fmt.Errorf("OTEL_TRACES_EXPORTER=%q: caravan exports traces with otlp or none", v)
	}
	if !want {
		return "", nil
	}
	protocol := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch protocol {
	case "", protoHTTP:
		return protoHTTP, nil
	case protoGRPC:
		return protoGRPC, nil
	}
	return "", fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: caravan speaks grpc or http/protobuf", protocol)
}

// newTraceExporter builds the OTLP exporter; it reads its endpoint,
// headers, TLS and timeout settings from the OTEL_EXPORTER_OTLP_* variables.
func newTraceExporter(ctx context.Context, protocol string) (sdktrace.SpanExporter, error) {
	var (
		exp sdktrace.SpanExporter
		err error
	)
	if protocol == protoGRPC {
		exp, err = otlptracegrpc.New(ctx)
	} else {
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("otlp trace exporter (%s): %w", protocol, err)
	}
	return exp, nil
}
