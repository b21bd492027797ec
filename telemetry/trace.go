// Package telemetry sets up OpenTelemetry tracing and metrics, carries trace
// context across NATS in message headers, and builds caravan's loggers.
package telemetry

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of caravan's spans and metrics.
const ScopeName = "github.com/caravan-db/caravan"

// propagator is W3C trace context: the traceparent header every OTel SDK
// and Jaeger understand.
var propagator = propagation.TraceContext{}

// Tracer returns caravan's tracer from tp, or from the global provider when
// tp is nil (set by Setup from the OTEL_* environment).
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(ScopeName)
}

// Inject writes ctx's span context into NATS headers.
func Inject(ctx context.Context, h nats.Header) {
	propagator.Inject(ctx, propagation.HeaderCarrier(h))
}

// Extract returns ctx carrying the span context found in NATS headers.
func Extract(ctx context.Context, h nats.Header) context.Context {
	if h == nil {
		return ctx
	}
	return propagator.Extract(ctx, propagation.HeaderCarrier(h))
}

// Header returns new NATS headers carrying ctx's span context.
func Header(ctx context.Context) nats.Header {
	h := nats.Header{}
	Inject(ctx, h)
	return h
}
