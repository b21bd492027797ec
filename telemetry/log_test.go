package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func TestJSONLogCarriesTraceAndSpan(t *testing.T) {
	var buf bytes.Buffer
	log, err := NewLogger(&buf, LogJSON, "info")
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	ctx, span := Tracer(tp).Start(context.Background(), "work")
	log.With("role", "loader").InfoContext(ctx, "batch committed", "rows", 3)
	span.End()
	log.InfoContext(context.Background(), "no span here")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %q", buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("not JSON: %q: %v", lines[0], err)
	}
	sc := span.SpanContext()
	if rec["trace_id"] != sc.TraceID().String() || rec["span_id"] != sc.SpanID().String() {
		t.Errorf("record %v: want trace_id %s span_id %s", rec, sc.TraceID(), sc.SpanID())
	}
	if rec["role"] != "loader" || rec["msg"] != "batch committed" || rec["rows"] != float64(3) {
		t.Errorf("record lost its fields: %v", rec)
	}
	rec = nil
	if err := json.Unmarshal([]byte(lines[1]), &rec); err != nil {
		t.Fatal(err)
	}
	if _, ok := rec["trace_id"]; ok {
		t.Errorf("a record without a span got a trace_id: %v", rec)
	}
}

func TestLogFormatsAndLevels(t *testing.T) {
	// A pipe is what a container's stderr is: not a terminal, so auto is JSON.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if IsTerminal(w) {
		t.Fatal("a pipe taken for a terminal")
	}
	log, err := NewLogger(w, LogAuto, "")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hello")
	w.Close()
	var out bytes.Buffer
	_, _ = out.ReadFrom(r)
	if !json.Valid(bytes.TrimSpace(out.Bytes())) {
		t.Errorf("auto on a pipe is not JSON: %q", out.String())
	}

	var buf bytes.Buffer
	log, err = NewLogger(&buf, LogText, "warn")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("dropped")
	log.Warn("kept", "k", "v")
	if got := buf.String(); strings.Contains(got, "dropped") || !strings.Contains(got, "level=WARN msg=kept k=v") {
		t.Errorf("text at warn: %q", got)
	}

	if _, err := NewLogger(&buf, "xml", "info"); err == nil {
		t.Error("format xml accepted")
	}
	if _, err := NewLogger(&buf, LogJSON, "loud"); err == nil {
		t.Error("level loud accepted")
	}
}
