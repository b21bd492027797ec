package mssql

import (
	"net/url"
	"regexp"
	"strings"
)

// Connection strings hold passwords; nothing caravan prints may. These
// cover go-mssqldb's three forms: sqlserver:// URLs, ADO
// ("server=...;password=...") and ODBC ("odbc:...;pwd={...}").

var adoSecretRE = regexp.MustCompile(`(?i)((?:password|pwd)\s*=\s*)(\{(?:[^}]|\}\})*\}|[^;]*)`)

// redactURL returns the connection string with its password replaced.
func redactURL(dsn string) string {
	if strings.HasPrefix(strings.ToLower(dsn), "sqlserver://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "sqlserver://(unparseable connection URL)"
		}
		q := u.Query()
		for k := range q {
			if lk := strings.ToLower(k); lk == "password" || lk == "pwd" {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
		return u.Redacted()
	}
	return adoSecretRE.ReplaceAllString(dsn, "${1}xxxxx")
}

// secretsOf returns the passwords a connection string holds, so errors
// from elsewhere can be scrubbed of them.
func secretsOf(dsn string) []string {
	var out []string
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			out = append(out, p, url.QueryEscape(p), url.PathEscape(p))
		}
		for k, v := range u.Query() {
			if lk := strings.ToLower(k); lk == "password" || lk == "pwd" {
				out = append(out, v...)
			}
		}
	}
	for _, m := range adoSecretRE.FindAllStringSubmatch(dsn, -1) {
		v := strings.TrimSpace(m[2])
		if v != "" {
			out = append(out, v, strings.Trim(v, "{}"))
		}
	}
	return out
}

// scrubbedError hides secrets inside an error's text.
type scrubbedError struct{ msg string }

func (e *scrubbedError) Error() string { return e.msg }

func scrub(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	changed := false
	for _, s := range secrets {
		if len(s) >= 3 && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
			changed = true
		}
	}
	if !changed {
		return err
	}
	// not wrapped: the original still holds the secret, and errors.As
	// callers might print it
	return &scrubbedError{msg: msg}
}
