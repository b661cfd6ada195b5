package harness

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rehearse-dev/rehearse/edms/server"
)

// silentListener accepts connections on loopback and never answers; with
// read false it never reads either, so a large request body fills the
// socket buffers and the writer blocks.
func silentListener(t *testing.T, read bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			if read {
				go func() {
					buf := make([]byte, 4096)
					for {
						if _, err := c.Read(buf); err != nil {
							return
						}
					}
				}()
			}
		}
	}()
	return "http://" + ln.Addr().String()
}

// A peer that accepts and goes silent (no reset) ends each request at the
// client's timeout with an error that says so, whether it never answers or
// stops reading a large upload.
func TestClientBoundsSilentPeers(t *testing.T) {
	big := filepath.Join(t.TempDir(), "backup.json")
	if err := os.WriteFile(big, make([]byte, 32<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, read := range []bool{true, false} {
		c := newClient(silentListener(t, read), server.DefaultRoutes())
		c.timeout = 500 * time.Millisecond
		for name, req := range map[string]func() reply{
			"login":   func() reply { return c.login(context.Background(), "admin", "pw") },
			"profile": func() reply { return c.profile(context.Background(), &credential{kind: KindJWT, secret: "token"}) },
			"restore": func() reply { return c.restoreFromFile(context.Background(), "token", big, true, "RESTORE CLEAN") },
		} {
			start := time.Now()
			r := req()
			took := time.Since(start)
			if r.Err == nil || !strings.Contains(r.Err.Error(), "no answer within 500ms") || !strings.Contains(r.Err.Error(), "accepted the connection but did not reply") {
				t.Errorf("%s (peer reads: %v): %+v", name, read, r)
			}
			if took > 10*time.Second {
				t.Errorf("%s (peer reads: %v) took %v", name, read, took)
			}
		}
	}
	// The scenario's context ends a request first when it is shorter.
	c := newClient(silentListener(t, true), server.DefaultRoutes())
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if r := c.login(ctx, "admin", "pw"); r.Err == nil || strings.Contains(r.Err.Error(), "no answer within") {
		t.Errorf("scenario's deadline: %v", r.Err)
	}
}
