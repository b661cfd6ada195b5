// Package loopback keeps rehearse on this machine: it refuses URLs, DSNs
// and connections whose address is not loopback (127.0.0.0/8, ::1,
// localhost) or, for PostgreSQL, a unix socket. A rehearsal wipes data and
// sends passwords; nothing it does may leave the machine.
package loopback

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Host reports whether host names this machine: "localhost", a loopback
// IP, or (PostgreSQL) an absolute unix-socket directory.
func Host(host string) bool {
	if host == "localhost" || strings.HasPrefix(host, "/") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// URL refuses an http(s) URL whose host is not loopback.
func URL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("base URL %q is not an http(s) URL", raw)
	}
	if h := u.Hostname(); h == "" || strings.HasPrefix(h, "/") || !Host(h) {
		return fmt.Errorf("base URL %q is not on loopback; rehearse only talks to 127.0.0.0/8, ::1 or localhost (rehearse a staging system through a tunnel or on a copy)", raw)
	}
	return nil
}

// DSN refuses a PostgreSQL connection string any of whose hosts (fallbacks
// included) is not loopback or a unix socket. The error never shows the
// password.
func DSN(dsn string) error {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("invalid DSN: %v", err)
	}
	hosts := []string{cfg.Host}
	for _, fb := range cfg.Fallbacks {
		hosts = append(hosts, fb.Host)
	}
	for _, h := range hosts {
		if !Host(h) {
			return fmt.Errorf("the DSN names host %q, which is not on loopback; rehearse only connects to 127.0.0.0/8, ::1, localhost or a unix socket (reach another server through a tunnel)", h)
		}
	}
	return nil
}

// ErrNotLoopback is returned by the dialer of HTTPClient.
var ErrNotLoopback = errors.New("refusing a connection off loopback")

// HTTPClient returns a client that dials only loopback addresses and
// follows no redirect: a redirect elsewhere would carry the request, a
// password or a token included, off the machine.
func HTTPClient(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     30 * time.Second,
		Proxy:               nil, // never through a proxy from the environment
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				if host != "localhost" {
					return nil, fmt.Errorf("%w: %s", ErrNotLoopback, addr)
				}
			}
			return dialer.DialContext(ctx, network, addr)
		},
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			return fmt.Errorf("the system answered with a redirect to %s; rehearse follows none (set the endpoint paths in the target file to the final URLs)", req.URL.Redacted())
		},
	}
}
