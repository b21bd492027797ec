package broker

import (
	"strings"
	"testing"
)

func TestCheckVersion(t *testing.T) {
	for v, ok := range map[string]bool{
		"2.9.0": true, "2.9.10": true, "2.10.0-beta.3": true, "v2.15.2": true, "3.0.0": true,
		"2.8.4": false, "2.2.0": false, "1.99.99": false, "": false,
	} {
		err := CheckVersion(v)
		if (err == nil) != ok {
			t.Errorf("CheckVersion(%q) = %v, want ok=%v", v, err, ok)
		}
		if err != nil && !strings.Contains(err.Error(), "nats-server "+MinServerVersion+" or later") {
			t.Errorf("CheckVersion(%q) does not name the version needed: %v", v, err)
		}
	}
}
