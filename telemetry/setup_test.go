package telemetry

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestTraceExporterFollowsOTELEnv(t *testing.T) {
	for _, c := range []struct {
		env  []string
		want string
		bad  bool
	}{
		{env: nil, want: ""},
		{env: []string{"OTEL_SERVICE_NAME", "x"}, want: ""},
		{env: []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4318"}, want: protoHTTP},
		{env: []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://jaeger:4318/v1/traces"}, want: protoHTTP},
		{env: []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4317", "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}, want: protoGRPC},
		{env: []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "x", "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"}, want: protoGRPC},
		{env: []string{"OTEL_TRACES_EXPORTER", "otlp"}, want: protoHTTP},
		{env: []string{"OTEL_TRACES_EXPORTER", "none", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4318"}, want: ""},
		{env: []string{"OTEL_SDK_DISABLED", "true", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4318"}, want: ""},
		{env: []string{"OTEL_TRACES_EXPORTER", "zipkin"}, bad: true},
		{env: []string{"OTEL_TRACES_EXPORTER", "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"}, bad: true},
	} {
		got, err := traceExporterKind(env(c.env...))
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("env %v: got %q, %v; want %q (error: %v)", c.env, got, err, c.want, c.bad)
		}
	}
}

// Without OTEL_* configuration Setup installs nothing: the global providers
// stay the API's no-op ones and nothing leaves the process.
func TestSetupIsANoOpWithoutOTELEnv(t *testing.T) {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED"} {
		t.Setenv(k, "")
	}
	tpBefore, mpBefore := otel.GetTracerProvider(), otel.GetMeterProvider()
	shutdown, err := Setup(context.Background(), "caravan-test")
	if err != nil {
		t.Fatal(err)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if otel.GetTracerProvider() != tpBefore || otel.GetMeterProvider() != mpBefore {
		t.Error("Setup replaced a global provider without OTEL configuration")
	}
	if _, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); ok {
		t.Error("an SDK TracerProvider is installed")
	}
	_, span := Tracer(nil).Start(context.Background(), "x")
	if span.SpanContext().IsValid() || span.IsRecording() {
		t.Error("spans are recorded without configuration")
	}
	span.End()
}

func TestSetupInstallsProviders(t *testing.T) {
	tpBefore, mpBefore := otel.GetTracerProvider(), otel.GetMeterProvider()
	t.Cleanup(func() { otel.SetTracerProvider(tpBefore); otel.SetMeterProvider(mpBefore) })

	reg := prometheus.NewRegistry()
	// The exporter dials lazily, so an endpoint nobody listens on is fine
	// until a span is exported, and this test exports none.
	shutdown, err := Setup(context.Background(), "caravan-test", WithPrometheus(reg),
		withEnv(env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")))
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	if _, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); !ok {
		t.Errorf("TracerProvider is %T, want the SDK's", otel.GetTracerProvider())
	}
	if _, ok := otel.GetMeterProvider().(*sdkmetric.MeterProvider); !ok {
		t.Errorf("MeterProvider is %T, want the SDK's", otel.GetMeterProvider())
	}
	m, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Role("extractor").Moved(context.Background(), "public.t", 5, 50, 1)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range families {
		if f.GetName() == "caravan_rows_total" {
			found = true
		}
	}
	if !found {
		t.Error("caravan_rows_total not gathered by the registry")
	}
}
