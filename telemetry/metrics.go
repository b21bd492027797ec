package telemetry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metrics are caravan's instruments. Every role records through the same
// names, told apart by the role attribute, so one dashboard covers a
// migrate process and a fleet of single-role processes alike.
//
// A nil *Metrics is valid and records nothing: roles need no checks.
type Metrics struct {
	role  string
	meter metric.Meter

	rows, bytes, batches, errors, duplicates, chunks, checks metric.Int64Counter
	chunkDuration, batchDuration                             metric.Float64Histogram
	lag                                                      metric.Int64ObservableGauge
}

// Metric names, as the OTel API sees them. Prometheus shows them with dots
// as underscores and counters suffixed _total (caravan_rows_total).
const (
	MetricRows          = "caravan.rows"
	MetricBytes         = "caravan.bytes"
	MetricBatches       = "caravan.batches"
	MetricErrors        = "caravan.errors"
	MetricDuplicates    = "caravan.duplicates"
	MetricChunks        = "caravan.chunks"
	MetricChecks        = "caravan.checks"
	MetricChunkDuration = "caravan.chunk.duration"
	MetricBatchDuration = "caravan.batch.duration"
	MetricConsumerLag   = "caravan.consumer.lag"
)

// NewMetrics creates the instruments on mp (the global MeterProvider when
// mp is nil, which is a no-op unless Setup installed one).
func NewMetrics(mp metric.MeterProvider) (*Metrics, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := &Metrics{meter: mp.Meter(ScopeName)}
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	m.rows = counter(MetricRows, "{row}", "Rows moved: read by extractors, committed by loaders.")
	m.bytes = counter(MetricBytes, "By", "Bytes of COPY text moved: read by extractors, committed by loaders.")
	m.batches = counter(MetricBatches, "{batch}", "Row batches published by extractors, committed by loaders.")
	m.errors = counter(MetricErrors, "{error}", "Failures a role retried or gave up on.")
	m.duplicates = counter(MetricDuplicates, "{batch}", "Redelivered batches the loader found already committed.")
	m.chunks = counter(MetricChunks, "{chunk}", "Chunks by state: published, extracted, loaded, failed.")
	m.checks = counter(MetricChecks, "{check}", "Validation checks by level and outcome.")
	var err error
	buckets := metric.WithExplicitBucketBoundaries(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
	m.chunkDuration, err = m.meter.Float64Histogram(MetricChunkDuration, metric.WithUnit("s"), buckets,
		metric.WithDescription("Time to extract one chunk, from task delivery to its last batch published."))
	errs = append(errs, err)
	m.batchDuration, err = m.meter.Float64Histogram(MetricBatchDuration, metric.WithUnit("s"), buckets,
		metric.WithDescription("Time to commit one batch into the target."))
	errs = append(errs, err)
	m.lag, err = m.meter.Int64ObservableGauge(MetricConsumerLag, metric.WithUnit("{message}"),
		metric.WithDescription("Messages a JetStream consumer has yet to finish: pending plus delivered but unacknowledged."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return m, nil
}

// Role returns m recording for one role ("extractor", "loader", ...). Each
// role's New calls it, so one Metrics can be handed to every role.
func (m *Metrics) Role(role string) *Metrics {
	if m == nil {
		return nil
	}
	c := *m
	c.role = role
	return &c
}

func (m *Metrics) attrs(table string, more ...attribute.KeyValue) metric.MeasurementOption {
	return metric.WithAttributes(append([]attribute.KeyValue{attribute.String("role", m.role), attribute.String("table", table)}, more...)...)
}

// Moved counts rows, bytes and batches of a table.
func (m *Metrics) Moved(ctx context.Context, table string, rows, bytes, batches int64) {
	if m == nil {
		return
	}
	a := m.attrs(table)
	m.rows.Add(ctx, rows, a)
	m.bytes.Add(ctx, bytes, a)
	m.batches.Add(ctx, batches, a)
}

// Error counts one failure on a table.
func (m *Metrics) Error(ctx context.Context, table string) {
	if m == nil {
		return
	}
	m.errors.Add(ctx, 1, m.attrs(table))
}

// Duplicate counts a batch found already committed.
func (m *Metrics) Duplicate(ctx context.Context, table string) {
	if m == nil {
		return
	}
	m.duplicates.Add(ctx, 1, m.attrs(table))
}

// Chunk states counted by Chunks.
const (
	ChunkPublished = "published"
	ChunkExtracted = "extracted"
	ChunkLoaded    = "loaded"
	ChunkFailed    = "failed"
)

// Chunks counts n chunks of a table reaching a state.
func (m *Metrics) Chunks(ctx context.Context, table, state string, n int64) {
	if m == nil {
		return
	}
	m.chunks.Add(ctx, n, m.attrs(table, attribute.String("state", state)))
}

// ChunkDuration records how long one chunk took.
func (m *Metrics) ChunkDuration(ctx context.Context, table string, d time.Duration) {
	if m == nil {
		return
	}
	m.chunkDuration.Record(ctx, d.Seconds(), m.attrs(table))
}

// BatchDuration records how long one batch took.
func (m *Metrics) BatchDuration(ctx context.Context, table string, d time.Duration) {
	if m == nil {
		return
	}
	m.batchDuration.Record(ctx, d.Seconds(), m.attrs(table))
}

// Check counts one validation check of a table at a level.
func (m *Metrics) Check(ctx context.Context, table, level string, ok bool) {
	if m == nil {
		return
	}
	m.checks.Add(ctx, 1, m.attrs(table, attribute.String("level", level), attribute.Bool("ok", ok)))
}

// LagFunc reports how many messages a consumer has yet to finish.
type LagFunc func(ctx context.Context) (int64, error)

// lagTimeout bounds one lag poll so a slow broker cannot stall a scrape.
const lagTimeout = 2 * time.Second

// ObserveLag reports poll's value as the consumer's lag whenever metrics
// are collected, until the returned function is called. A failed poll
// reports nothing rather than a misleading zero.
func (m *Metrics) ObserveLag(consumer string, poll LagFunc) (stop func(), err error) {
	if m == nil {
		return func() {}, nil
	}
	attrs := metric.WithAttributes(attribute.String("role", m.role), attribute.String("consumer", consumer))
	reg, err := m.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, lagTimeout)
		defer cancel()
		n, err := poll(ctx)
		if err != nil {
			return nil //nolint:nilerr // a broker hiccup must not fail the whole scrape
		}
		o.ObserveInt64(m.lag, n, attrs)
		return nil
	}, m.lag)
	if err != nil {
		return nil, fmt.Errorf("metrics: observe lag of %s: %w", consumer, err)
	}
	return func() { _ = reg.Unregister() }, nil
}
