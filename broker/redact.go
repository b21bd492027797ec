package broker

import (
	"errors"
	"net/url"
	"strings"
)

// redact hides the password of a NATS URL (nats://user:pass@host), or of
// each URL in a comma-separated server list, so errors and logs can still
// say which server is meant.
func redact(servers string) string {
	parts := strings.Split(servers, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}

// scrub removes the URLs' passwords from an error's text.
func scrub(err error, servers string) error {
	msg := err.Error()
	clean := msg
	for _, p := range strings.Split(servers, ",") {
		if u, perr := url.Parse(strings.TrimSpace(p)); perr == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok && pw != "" {
				clean = strings.ReplaceAll(clean, pw, "xxxxx")
			}
		}
	}
	if clean == msg {
		return err
	}
	return errors.New(clean)
}
