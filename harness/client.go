package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rehearse-dev/rehearse/edms/server"
	"github.com/rehearse-dev/rehearse/internal/loopback"
)

// client speaks the system's HTTP contract (DRF + simplejwt; paths and field names
// from Routes). It only ever talks to the base URL it was given.
type client struct {
	base    string
	routes  server.Routes
	http    *http.Client
	timeout time.Duration // of each request, body included, within the scenario's context
}

// requestTimeout bounds one request: a peer that accepts and then goes
// silent (no reset) must not hold a run until its scenario's timeout.
const requestTimeout = 60 * time.Second

func newClient(base string, routes server.Routes) *client {
	return &client{base: base, routes: routes, http: loopback.HTTPClient(requestTimeout), timeout: requestTimeout}
}

// reply is what one request got back.
type reply struct {
	Status int
	Body   map[string]any
	Line   string // the body's first line, for a server error's report
	Err    error  // transport error (no status)
}

// field returns a response field as text; a dotted name ("data.access")
// walks into nested objects.
func (r reply) field(name string) string {
	var cur any = r.Body
	for _, part := range strings.Split(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		if cur, ok = m[part]; !ok {
			return ""
		}
	}
	if v := cur; v != nil {
		switch x := v.(type) {
		case string:
			return x
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64)
		default:
			return fmt.Sprint(x)
		}
	}
	return ""
}

func (c *client) do(ctx context.Context, req *http.Request) reply { return c.doWith(ctx, c.http, req) }

func (c *client) doWith(ctx context.Context, hc *http.Client, req *http.Request) reply {
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel() // after the body is read: the timeout covers it too
	resp, err := hc.Do(req.WithContext(rctx))
	if err != nil {
		return reply{Err: c.silent(ctx, req, err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return reply{Err: c.silent(ctx, req, fmt.Errorf("read the response of %s %s: %w", req.Method, req.URL.Redacted(), err))}
	}
	r := reply{Status: resp.StatusCode, Line: firstLine(b)}
	json.Unmarshal(b, &r.Body)
	return r
}

// silent says plainly that a request timed out on its own timeout (not the
// scenario's): the peer accepted the connection and went quiet.
func (c *client) silent(ctx context.Context, req *http.Request, err error) error {
	var ne net.Error
	if ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("no answer within %v to %s %s: the system accepted the connection but did not reply (is it hung, or is another service on that port?): %w", c.timeout, req.Method, req.URL.Redacted(), err)
	}
	return err
}

func (c *client) login(ctx context.Context, user, password string) reply {
	body, _ := json.Marshal(map[string]string{c.routes.UsernameField: user, c.routes.PasswordField: password})
	req, _ := http.NewRequest(http.MethodPost, c.base+c.routes.Login, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return c.do(ctx, req)
}

func (c *client) refresh(ctx context.Context, refresh string) reply {
	body, _ := json.Marshal(map[string]string{c.routes.RefreshField: refresh})
	req, _ := http.NewRequest(http.MethodPost, c.base+c.routes.Refresh, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return c.do(ctx, req)
}

// profile calls profile with a token of any kind.
func (c *client) profile(ctx context.Context, cred *credential) reply {
	req, _ := http.NewRequest(http.MethodGet, c.base+c.routes.Profile, nil)
	return c.doAs(ctx, req, cred)
}

func (c *client) restoreFromFile(ctx context.Context, access, file string, withReinit bool, confirm string) reply {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile(c.routes.BackupFileField, filepath.Base(file))
	f, err := os.Open(file)
	if err != nil {
		return reply{Err: err}
	}
	io.Copy(fw, f)
	f.Close()
	mw.WriteField(c.routes.RestoreTypeField, "full")
	mw.WriteField(c.routes.WithReinitField, strconv.FormatBool(withReinit))
	if withReinit {
		mw.WriteField(c.routes.ConfirmField, confirm)
	}
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, c.base+c.routes.Restore, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", c.routes.AuthScheme+" "+access)
	return c.do(ctx, req)
}

// firstLine is the first non-empty line of a body, at most 200 bytes; of
// an HTML page (a framework's error page), its title.
func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b[:min(len(b), 4096)]))
	if _, rest, ok := strings.Cut(s, "<title>"); ok && strings.HasPrefix(s, "<") {
		s, _, _ = strings.Cut(rest, "</title>")
	}
	s, _, _ = strings.Cut(s, "\n")
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}
