package mssql

import (
	"bytes"
	"log/slog"
	"os"
	"testing"
)

// TestWarmConns opens a source for three readers: Open leaves two more
// connections warmed and idle in the pool, and warmSQL runs on the engine.
func TestWarmConns(t *testing.T) {
	msURL := os.Getenv("CARAVAN_TEST_MSSQL_URL")
	if msURL == "" {
		t.Skip("CARAVAN_TEST_MSSQL_URL not set")
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := Open(t.Context(), msURL, Options{Readers: 3, MaxConns: 5, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.warming.Wait()
	// 3: Open's own and two warmed; 2 when a warming goroutine was so late
	// that it found Open's connection idle (a reader then opens its own)
	if st := s.db.Stats(); st.OpenConnections < 2 || st.Idle != st.OpenConnections {
		t.Fatalf("want 2 or 3 open idle connections, got %+v", st)
	}
	if bytes.Contains(logs.Bytes(), []byte("warming")) {
		t.Fatalf("warmSQL failed: %s", logs.String())
	}
}
