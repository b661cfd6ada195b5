package provider

import (
	"fmt"
	"net/url"
	"strings"
)

// dsnServer is an existing server: DSN swaps the database name, Close does
// nothing (it is not ours to stop).
type dsnServer struct {
	raw string
	url *url.URL // nil for keyword/value DSNs
}

func newDSNServer(raw string) (*dsnServer, error) {
	s := &dsnServer{raw: raw}
	if strings.HasPrefix(raw, "postgres://") || strings.HasPrefix(raw, "postgresql://") {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("DSN is not a valid URL: %v", Redact(err.Error(), raw))
		}
		s.url = u
	}
	return s, nil
}

func (s *dsnServer) DSN(dbname string) string {
	if s.url != nil {
		u := *s.url
		u.Path = "/" + dbname
		return u.String()
	}
	// In a keyword/value string a later keyword overrides an earlier one.
	return s.raw + " dbname=" + dbname
}

func (s *dsnServer) Close() error { return nil }

// Redact keeps the password of a URL DSN out of a message.
func Redact(msg, dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return msg
}
