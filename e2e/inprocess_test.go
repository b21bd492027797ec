package e2e

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/caravan-db/caravan/broker"
	"github.com/caravan-db/caravan/coordinator"
	"github.com/caravan-db/caravan/extractor"
	"github.com/caravan-db/caravan/internal/testenv"
	"github.com/caravan-db/caravan/loader"
	"github.com/caravan-db/caravan/pgutil"
	"github.com/caravan-db/caravan/source"
	"github.com/caravan-db/caravan/source/postgres"
	"github.com/caravan-db/caravan/telemetry"
	"github.com/caravan-db/caravan/validator"
)

// roles are the four roles in the order spans flow through them.
var roles = []string{"coordinator", "extractor", "loader", "validator"}

// workerRun is one run of the four roles in this test process, each a
// separate worker: its own NATS connection, its own database pool or
// source, its own TracerProvider and exporter. They share only the broker
// and the databases, as separate processes would, so what the exporters
// hold is what a collector would receive from four processes.
type workerRun struct {
	run      string
	spans    map[string]*tracetest.InMemoryExporter // by role
	registry *prometheus.Registry
	logs     *testenv.SyncBuffer
	err      error // the coordinator's
}

// migrateInProcess copies src into dst with the roles as separate workers
// and returns once the run is over and every worker has stopped.
func migrateInProcess(t *testing.T, srcURL, dstURL string, opts coordinator.Options) *workerRun {
	t.Helper()
	return migrateInProcessWith(t, srcURL, dstURL, opts, nil)
}

// migrateInProcessWith is migrateInProcess with the extractor's source
// wrapped by reader (when not nil): a test double of caravan's own reading
// code, the one place a fake is right.
func migrateInProcessWith(t *testing.T, srcURL, dstURL string, opts coordinator.Options, reader func(source.Source) source.Source) *workerRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	natsURL, _ := testenv.NATS(t)

	w := &workerRun{run: uuid.NewString(), spans: map[string]*tracetest.InMemoryExporter{}, registry: prometheus.NewRegistry(), logs: &testenv.SyncBuffer{}}
	mp, err := telemetry.NewPrometheusProvider(w.registry, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	metrics, err := telemetry.NewMetrics(mp)
	if err != nil {
		t.Fatal(err)
	}
	log, err := telemetry.NewLogger(w.logs, telemetry.LogJSON, "debug")
	if err != nil {
		t.Fatal(err)
	}
	tracers := map[string]*sdktrace.TracerProvider{}
	for _, role := range roles {
		exp := tracetest.NewInMemoryExporter()
		// A syncer exports each span as it ends: nothing waits in a batch
		// when the test looks.
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		w.spans[role], tracers[role] = exp, tp
	}
	connect := func(role string) jetstream.JetStream {
		nc, js, err := broker.Connect(natsURL, "caravan-test-"+role)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return js
	}
	pool := func() *pgxpool.Pool {
		p, err := pgutil.Pool(ctx, dstURL, "caravan-test", 4)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return p
	}
	src := func() *postgres.Source {
		s, err := postgres.Open(ctx, srcURL, 4, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}

	workers, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var workerErrs []error
	startWorker := func(run func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(workers); err != nil && workers.Err() == nil {
				mu.Lock()
				workerErrs = append(workerErrs, err)
				mu.Unlock()
			}
		}()
	}
	var extractSrc source.Source = src()
	if reader != nil {
		extractSrc = reader(extractSrc)
	}
	startWorker(extractor.New(connect("extractor"), extractSrc, extractor.Config{Concurrency: 2,
		Tracer: tracers["extractor"], Log: log.With("role", "extractor"), Metrics: metrics}).Run)
	startWorker(loader.New(connect("loader"), pool(), loader.Config{Concurrency: 2,
		Tracer: tracers["loader"], Log: log.With("role", "loader"), Metrics: metrics}).Run)
	startWorker(validator.New(connect("validator"), pool(), validator.Config{Concurrency: 2,
		Tracer: tracers["validator"], Log: log.With("role", "validator"), Metrics: metrics}).Run)

	w.err = coordinator.New(src(), pool(), connect("coordinator"), coordinator.Config{Run: w.run, SourceURL: srcURL, Options: opts,
		PollEvery: 200 * time.Millisecond, Tracer: tracers["coordinator"], Log: log.With("role", "coordinator"), Metrics: metrics}).Run(ctx)
	// Stopping the workers waits for every handler, so every span has ended
	// and been exported when this returns.
	stop()
	wg.Wait()
	if err := errors.Join(workerErrs...); err != nil {
		t.Errorf("a worker stopped: %v", err)
	}
	return w
}

// metricsText is what a Prometheus scrape of the run's registry returns.
func (w *workerRun) metricsText(t *testing.T) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(w.registry, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("metrics: %d %s", rec.Code, rec.Body.String())
	}
	return rec.Body.String()
}
