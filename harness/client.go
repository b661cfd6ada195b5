package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
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
	base   string
	routes server.Routes
	http   *http.Client
}

func newClient(base string, routes server.Routes) *client {
	return &client{base: base, routes: routes, http: loopback.HTTPClient(60 * time.Second)}
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
	resp, err := hc.Do(req.WithContext(ctx))
	if err != nil {
		return reply{Err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	r := reply{Status: resp.StatusCode, Line: firstLine(b)}
	json.Unmarshal(b, &r.Body)
	return r
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
