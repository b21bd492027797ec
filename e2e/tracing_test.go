package e2e

import (
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/caravan-db/caravan/coordinator"
	"github.com/caravan-db/caravan/internal/testenv"
)

// traceSource has a table of several chunks of several batches each, and a
// child table with a foreign key, so every kind of span appears.
var traceSource = []string{
	`CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL)`,
	`INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 900) g`,
	`CREATE TABLE notes (id integer PRIMARY KEY, item integer REFERENCES items, body text)`,
	`INSERT INTO notes SELECT g, 1 + g % 900, 'note ' || g FROM generate_series(1, 50) g`,
	`ANALYZE`,
}

// TestOneTracePerRunAcrossWorkers runs the four roles as separate workers
// (own NATS connection, own TracerProvider and exporter each) and proves a
// chunk's spans join the run's trace through the NATS headers alone:
// coordinator "chunk" (producer) -> extractor "extract chunk" (consumer) ->
// "publish batch" (producer) -> loader "load batch" (consumer), with the
// validator's checks in the same trace.
func TestOneTracePerRunAcrossWorkers(t *testing.T) {
	src := testenv.Database(t, "src")
	dst := testenv.Database(t, "dst")
	testenv.Exec(t, src, traceSource...)

	w := migrateInProcess(t, src, dst, coordinator.Options{RowsPerChunk: 300, BatchRows: 100})
	if w.err != nil {
		t.Fatalf("run: %v\nlogs:\n%s", w.err, tail(w.logs.String(), 6000))
	}
	assertSameContent(t, src, dst, "items", "notes")

	spans := map[string]tracetest.SpanStubs{}
	for role, exp := range w.spans {
		spans[role] = exp.GetSpans()
	}
	runSpan := only(t, spans["coordinator"], "run", nil)
	traceID := runSpan.SpanContext.TraceID()

	// The chunk: published by the coordinator, under the run.
	chunk := only(t, spans["coordinator"], "chunk", map[string]any{"caravan.table": "public.items", "caravan.chunk": int64(1)})
	wantKind(t, chunk, trace.SpanKindProducer)
	wantTrace(t, chunk, traceID)
	wantAttrs(t, chunk, "caravan.table", "caravan.chunk", "caravan.attempt", "caravan.range.lo", "caravan.range.hi")

	// Read by the extractor, whose span continues the coordinator's.
	extract := only(t, spans["extractor"], "extract chunk", map[string]any{"caravan.table": "public.items", "caravan.chunk": int64(1)})
	wantKind(t, extract, trace.SpanKindConsumer)
	wantParent(t, extract, chunk)
	wantAttrs(t, extract, "caravan.table", "caravan.chunk", "caravan.attempt", "caravan.range.lo", "caravan.range.hi",
		"caravan.rows", "caravan.bytes", "caravan.batches", "caravan.delivery")
	rows, _ := attrOf(extract, "caravan.rows").(int64)
	if rows <= 100 {
		t.Fatalf("extract chunk rows = %d, want a chunk of several batches (chunks are planned near 300 rows)", rows)
	}
	if lo := attrOf(extract, "caravan.range.lo"); fmt.Sprint(lo) == "[]" {
		t.Errorf("the middle chunk has an open lower bound: %v", lo)
	}

	// Its batches, each published under the extract span and loaded under
	// the publish span by the loader.
	var publishes tracetest.SpanStubs
	for _, s := range spans["extractor"] {
		if s.Name == "publish batch" && s.Parent.SpanID() == extract.SpanContext.SpanID() {
			publishes = append(publishes, s)
		}
	}
	if want := int((rows + 99) / 100); len(publishes) != want {
		t.Fatalf("chunk 1 has %d publish batch spans, want %d (%d rows in batches of 100)", len(publishes), want, rows)
	}
	for _, pub := range publishes {
		wantKind(t, pub, trace.SpanKindProducer)
		wantTrace(t, pub, traceID)
		wantAttrs(t, pub, "caravan.table", "caravan.chunk", "caravan.attempt", "caravan.seq", "caravan.rows", "caravan.bytes")
		var loads tracetest.SpanStubs
		for _, s := range spans["loader"] {
			if s.Name == "load batch" && s.Parent.SpanID() == pub.SpanContext.SpanID() {
				loads = append(loads, s)
			}
		}
		if len(loads) == 0 {
			t.Errorf("batch seq %v has no load batch span", attrOf(pub, "caravan.seq"))
			continue
		}
		for _, load := range loads {
			wantKind(t, load, trace.SpanKindConsumer)
			wantTrace(t, load, traceID)
			wantAttrs(t, load, "caravan.table", "caravan.chunk", "caravan.attempt", "caravan.seq", "caravan.rows", "caravan.bytes", "caravan.delivery")
			if attrOf(load, "caravan.seq") != attrOf(pub, "caravan.seq") || attrOf(load, "caravan.rows") != attrOf(pub, "caravan.rows") {
				t.Errorf("load batch %v does not match its publish %v", load.Attributes, pub.Attributes)
			}
		}
	}

	// The validator's spans are in the run's trace too, with their checks.
	// A table is judged in parts (its content when loaded, its keys when
	// finalized): each check once, under one of the table's spans.
	for _, table := range []string{"public.items", "public.notes"} {
		var parts tracetest.SpanStubs
		for _, s := range spans["validator"] {
			if s.Name == "validate table" && attrOf(s, "caravan.table") == table {
				wantTrace(t, s, traceID)
				parts = append(parts, s)
			}
		}
		for _, check := range []string{"check count", "check keys", "check digest"} {
			n := 0
			for _, s := range spans["validator"] {
				for _, p := range parts {
					if s.Name == check && s.Parent.SpanID() == p.SpanContext.SpanID() {
						n++
					}
				}
			}
			if n != 1 {
				t.Errorf("%s: %d %q spans under its %d validate table spans, want 1", table, n, check, len(parts))
			}
		}
	}
	fk := only(t, spans["validator"], "validate foreign keys", nil)
	wantTrace(t, fk, traceID)

	// Every span of every worker belongs to this one trace.
	for role, ss := range spans {
		for _, s := range ss {
			if s.SpanContext.TraceID() != traceID {
				t.Errorf("%s span %q is in trace %s, not the run's %s", role, s.Name, s.SpanContext.TraceID(), traceID)
			}
		}
	}
}

// only returns the one span with the name and attributes (and, when given,
// the parent); it fails the test when there is not exactly one.
func only(t *testing.T, spans tracetest.SpanStubs, name string, attrs map[string]any, parent ...tracetest.SpanStub) tracetest.SpanStub {
	t.Helper()
	var found tracetest.SpanStubs
	for _, s := range spans {
		if s.Name != name || (len(parent) > 0 && s.Parent.SpanID() != parent[0].SpanContext.SpanID()) {
			continue
		}
		match := true
		for k, v := range attrs {
			if attrOf(s, k) != v {
				match = false
			}
		}
		if match {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans %q with %v, want 1 (of %d spans)", len(found), name, attrs, len(spans))
	}
	return found[0]
}

func attrOf(s tracetest.SpanStub, key string) any {
	for _, kv := range s.Attributes {
		if kv.Key == attribute.Key(key) {
			return kv.Value.AsInterface()
		}
	}
	return nil
}

func wantAttrs(t *testing.T, s tracetest.SpanStub, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if attrOf(s, k) == nil {
			t.Errorf("span %q lacks attribute %s: %v", s.Name, k, s.Attributes)
		}
	}
}

func wantKind(t *testing.T, s tracetest.SpanStub, kind trace.SpanKind) {
	t.Helper()
	if s.SpanKind != kind {
		t.Errorf("span %q is %s, want %s", s.Name, s.SpanKind, kind)
	}
}

func wantTrace(t *testing.T, s tracetest.SpanStub, id trace.TraceID) {
	t.Helper()
	if s.SpanContext.TraceID() != id {
		t.Errorf("span %q is in trace %s, want %s", s.Name, s.SpanContext.TraceID(), id)
	}
}

func wantParent(t *testing.T, child, parent tracetest.SpanStub) {
	t.Helper()
	wantTrace(t, child, parent.SpanContext.TraceID())
	if child.Parent.SpanID() != parent.SpanContext.SpanID() {
		t.Errorf("span %q has parent %s, want %q (%s)", child.Name, child.Parent.SpanID(), parent.Name, parent.SpanContext.SpanID())
	}
	if child.Parent.IsRemote() != (child.SpanKind == trace.SpanKindConsumer) {
		t.Errorf("span %q: parent remote = %v, a consumer's parent arrives through NATS headers", child.Name, child.Parent.IsRemote())
	}
}
