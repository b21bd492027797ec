package broker

import (
	"errors"
	"strings"
	"testing"
)

func TestRedactHidesNATSPasswords(t *testing.T) {
	in := "nats://alice:S3cr3t@a:4222, nats://bob:Other@b:4222,nats://c:4222"
	got := redact(in)
	if strings.Contains(got, "S3cr3t") || strings.Contains(got, "Other") || !strings.Contains(got, "alice:xxxxx@a:4222") || !strings.Contains(got, "nats://c:4222") {
		t.Errorf("redact(%q) = %q", in, got)
	}
	err := scrub(errors.New("dial nats://alice:S3cr3t@a:4222: refused"), in)
	if strings.Contains(err.Error(), "S3cr3t") {
		t.Errorf("scrub kept the password: %v", err)
	}
	plain := errors.New("no password here")
	if scrub(plain, in) != plain {
		t.Error("scrub replaced an error it did not need to")
	}
}
