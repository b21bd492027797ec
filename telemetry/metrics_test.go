package telemetry

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func TestMetricsRecordPerRoleAndTable(t *testing.T) {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(ctx)
	m, err := NewMetrics(mp)
	if err != nil {
		t.Fatal(err)
	}
	ext, load := m.Role("extractor"), m.Role("loader")
	ext.Moved(ctx, "public.a", 10, 100, 2)
	ext.ChunkDuration(ctx, "public.a", 1500*time.Millisecond)
	load.Moved(ctx, "public.a", 4, 40, 1)
	load.Moved(ctx, "public.a", 6, 60, 1)
	load.Duplicate(ctx, "public.a")
	load.Error(ctx, "public.b")
	m.Role("validator").Check(ctx, "public.a", "digest", true)
	m.Role("coordinator").Chunks(ctx, "public.a", ChunkPublished, 3)
	stop, err := load.ObserveLag("loaders", func(context.Context) (int64, error) { return 7, nil })
	if err != nil {
		t.Fatal(err)
	}
	stopBroken, err := ext.ObserveLag("extractors", func(context.Context) (int64, error) { return 0, errors.New("broker away") })
	if err != nil {
		t.Fatal(err)
	}

	got := collect(t, reader)
	for _, c := range []struct {
		name, role, table string
		want              int64
	}{
		{MetricRows, "extractor", "public.a", 10},
		{MetricBytes, "extractor", "public.a", 100},
		{MetricBatches, "extractor", "public.a", 2},
		{MetricRows, "loader", "public.a", 10},
		{MetricBytes, "loader", "public.a", 100},
		{MetricBatches, "loader", "public.a", 2},
		{MetricDuplicates, "loader", "public.a", 1},
		{MetricErrors, "loader", "public.b", 1},
		{MetricChecks, "validator", "public.a", 1},
		{MetricChunks, "coordinator", "public.a", 3},
	} {
		if v := got.sum(c.name, c.role, c.table); v != c.want {
			t.Errorf("%s{role=%s,table=%s} = %d, want %d", c.name, c.role, c.table, v, c.want)
		}
	}
	if n := got.histCount(MetricChunkDuration, "extractor"); n != 1 {
		t.Errorf("chunk duration observations: %d, want 1", n)
	}
	lag := got.gauge(MetricConsumerLag)
	if len(lag) != 1 || lag["loaders"] != 7 {
		t.Errorf("lag %v: want only loaders=7 (a failed poll reports nothing)", lag)
	}

	stop()
	stopBroken()
	if lag := collect(t, reader).gauge(MetricConsumerLag); len(lag) != 0 {
		t.Errorf("lag still observed after stop: %v", lag)
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	ctx := context.Background()
	m = m.Role("loader")
	m.Moved(ctx, "t", 1, 1, 1)
	m.Error(ctx, "t")
	m.Duplicate(ctx, "t")
	m.Chunks(ctx, "t", ChunkLoaded, 1)
	m.ChunkDuration(ctx, "t", time.Second)
	m.BatchDuration(ctx, "t", time.Second)
	m.Check(ctx, "t", "count", true)
	stop, err := m.ObserveLag("c", nil)
	if err != nil {
		t.Fatal(err)
	}
	stop()
}

type collected struct{ rm metricdata.ResourceMetrics }

func collect(t *testing.T, r *sdkmetric.ManualReader) collected {
	t.Helper()
	var c collected
	if err := r.Collect(context.Background(), &c.rm); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c collected) find(name string) *metricdata.Metrics {
	for _, sm := range c.rm.ScopeMetrics {
		for i := range sm.Metrics {
			if sm.Metrics[i].Name == name {
				return &sm.Metrics[i]
			}
		}
	}
	return nil
}

func attr(set attribute.Set, key string) string {
	v, _ := set.Value(attribute.Key(key))
	return v.Emit()
}

func (c collected) sum(name, role, table string) int64 {
	m := c.find(name)
	if m == nil {
		return -1
	}
	var total int64
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		if attr(dp.Attributes, "role") == role && attr(dp.Attributes, "table") == table {
			total += dp.Value
		}
	}
	return total
}

func (c collected) histCount(name, role string) uint64 {
	m := c.find(name)
	if m == nil {
		return 0
	}
	var n uint64
	for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
		if attr(dp.Attributes, "role") == role {
			n += dp.Count
		}
	}
	return n
}

func (c collected) gauge(name string) map[string]int64 {
	out := map[string]int64{}
	m := c.find(name)
	if m == nil {
		return out
	}
	for _, dp := range m.Data.(metricdata.Gauge[int64]).DataPoints {
		out[attr(dp.Attributes, "consumer")] = dp.Value
	}
	return out
}
