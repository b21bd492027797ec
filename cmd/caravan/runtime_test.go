package main

import (
	"os"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// The soft memory limit a command sets: derived from the in-memory
// broker's bound for migrate without --nats-url or --data-dir, the base
// alone otherwise, the flag's value when given.
func TestMemoryLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	cases := []struct {
		args []string
		want int64
	}{
		{[]string{"caravan", "migrate"}, (heapBaseMiB + embeddedBatchesMiB) << 20},
		{[]string{"caravan", "migrate", "--broker-batches-mib", "16"}, (heapBaseMiB + 16) << 20},
		{[]string{"caravan", "migrate", "--data-dir", t.TempDir()}, heapBaseMiB << 20},
		{[]string{"caravan", "migrate", "--memory-limit-mib", "300"}, 300 << 20},
		{[]string{"caravan", "loader", "--nats-url", "nats://127.0.0.1:1"}, heapBaseMiB << 20},
	}
	for _, c := range cases {
		a := app()
		for _, cmd := range a.Commands {
			if cmd.Name == c.args[1] {
				// Stop after the flags are applied: no source, target or broker.
				cmd.Action = func(*cli.Context) error { return nil }
			}
		}
		if err := a.Run(c.args); err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if got := debug.SetMemoryLimit(-1); got != c.want {
			t.Errorf("%v: memory limit %d MiB, want %d MiB", c.args, got>>20, c.want>>20)
		}
	}
}

// --cpu-profile leaves a profile behind when the command ends.
func TestCPUProfile(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	path := t.TempDir() + "/cpu.prof"
	a := app()
	for _, cmd := range a.Commands {
		if cmd.Name == "validator" {
			cmd.Action = func(*cli.Context) error { return nil }
		}
	}
	if err := a.Run([]string{"caravan", "validator", "--cpu-profile", path}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		t.Fatalf("no profile at %s: %v", path, err)
	}
}

// A batches stream smaller than one batch is refused before the broker
// refuses every batch and the run waits for ever.
func TestBatchesHoldABatch(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	cases := []struct {
		args []string
		ok   bool
	}{
		{[]string{"caravan", "migrate"}, true},
		{[]string{"caravan", "migrate", "--broker-batches-mib", "2"}, true},
		{[]string{"caravan", "migrate", "--broker-batches-mib", "1"}, false},
		{[]string{"caravan", "migrate", "--broker-batches-mib", "1", "--batch-bytes", "262144"}, true},
		{[]string{"caravan", "coordinator", "--broker-batches-mib", "1", "--batch-bytes", "4194304"}, false},
	}
	for _, c := range cases {
		a := app()
		for _, cmd := range a.Commands {
			if cmd.Name == c.args[1] {
				cmd.Action = batchesHoldABatch
			}
		}
		err := a.Run(c.args)
		if (err == nil) != c.ok {
			t.Errorf("%v: err %v, want ok %v", c.args, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "--broker-batches-mib") {
			t.Errorf("%v: %v does not name the flag", c.args, err)
		}
	}
}
