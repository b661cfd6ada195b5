package loopback

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestURLAndDSN(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:8000", "http://localhost/", "https://[::1]:8443/x", "http://127.3.4.5"} {
		if err := URL(ok); err != nil {
			t.Errorf("URL(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"http://10.0.0.1:8000", "http://staging.example.com", "ftp://127.0.0.1", "127.0.0.1:8000", "http://0.0.0.0:80"} {
		if err := URL(bad); err == nil {
			t.Errorf("URL(%q) accepted", bad)
		}
	}
	for _, ok := range []string{
		"postgres://u:pw@127.0.0.1:5432/db",
		"host=/tmp/sock port=5432 dbname=x",
		"host=localhost dbname=x",
		"postgres://u@[::1]:5432/db",
	} {
		if err := DSN(ok); err != nil {
			t.Errorf("DSN(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{
		"postgres://u:SECRETPW@192.0.2.1/db",
		"host=127.0.0.1,db.example.com dbname=x",
		"postgres://u:SECRETPW@staging:5432/db",
	} {
		err := DSN(bad)
		if err == nil {
			t.Errorf("DSN(%q) accepted", bad)
		} else if strings.Contains(err.Error(), "SECRETPW") {
			t.Errorf("DSN error shows the password: %v", err)
		}
	}
}

// A loopback server that redirects elsewhere must not make the client go
// there; a direct request elsewhere is refused before any packet leaves.
func TestHTTPClientStaysOnLoopback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://192.0.2.1:9/steal", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	c := HTTPClient(5 * time.Second)
	_, err := c.Post(srv.URL+"/login", "application/json", strings.NewReader(`{"password":"x"}`))
	if err == nil || !strings.Contains(err.Error(), "rehearse follows none") {
		t.Errorf("redirect followed or wrong error: %v", err)
	}
	_, err = c.Get("http://192.0.2.1:9/")
	if !errors.Is(err, ErrNotLoopback) {
		t.Errorf("direct request off loopback: %v", err)
	}
}
