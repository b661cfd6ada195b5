package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rehearse-dev/rehearse/internal/pgtest"
)

// serveProc is a `rehearse serve --dsn` child process with default routes,
// its spool directory (its TMPDIR) and everything it wrote.
type serveProc struct {
	url, tmp string
	dsnArg   string // its --dsn
	pid      int
	mu       sync.Mutex
	out      bytes.Buffer // stdout and stderr, as written
}

func (s *serveProc) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.Write(p)
}

func (s *serveProc) logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// startServeDSN starts `bin serve` on a free loopback port over dsn and
// stops it (SIGINT) when the test ends.
func startServeDSN(t *testing.T, bin, dsn string, extra ...string) *serveProc {
	t.Helper()
	s := &serveProc{tmp: t.TempDir(), dsnArg: dsn}
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--dsn", dsn}, extra...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+s.tmp)
	pr, pw := io.Pipe()
	cmd.Stdout = io.MultiWriter(s, pw)
	cmd.Stderr = s
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.pid = cmd.Process.Pid
	exited := make(chan struct{})
	go func() { cmd.Wait(); pw.Close(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Errorf("rehearse serve did not stop on SIGINT")
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case s.url = <-found:
	case <-exited:
		t.Fatalf("rehearse serve exited before serving:\n%s", s.logs())
	case <-time.After(60 * time.Second):
		t.Fatalf("rehearse serve did not start in 60s:\n%s", s.logs())
	}
	return s
}

// hwm is the peak resident set of process pid (VmHWM), in bytes.
func hwm(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// loginAs logs in over HTTP and returns the status and the access token.
func loginAs(t *testing.T, url, user, password string) (int, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": user, "password": password})
	resp, err := http.Post(url+"/api/v1/auth/login/", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	defer resp.Body.Close()
	var tok struct{ Access string }
	json.NewDecoder(resp.Body).Decode(&tok)
	return resp.StatusCode, tok.Access
}

// uploadStream posts the backup that write produces, as it produces it, to
// restore_from_file with a reinit; nothing of it is held in memory or on disk
// on this side.
func uploadStream(t *testing.T, url, access, filename string, write func(io.Writer) error) (int, string) {
	t.Helper()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			for _, f := range [][2]string{{"restore_type", "full"}, {"with_reinit", "true"}, {"reinit_confirm", "RESTORE CLEAN"}} {
				if err := mw.WriteField(f[0], f[1]); err != nil {
					return err
				}
			}
			fw, err := mw.CreateFormFile("backup_file", filename)
			if err != nil {
				return err
			}
			if err := write(fw); err != nil {
				return err
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	req, _ := http.NewRequest(http.MethodPost, url+"/api/v1/backup/restores/restore_from_file/", pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("upload %s: %v", filename, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(b)
}

// gzipBomb writes { printf '['; head -c n /dev/zero | tr '\0' ' '; printf
// ']'; } | gzip as concatenated gzip members (RFC 1952 §2.2): one member of
// 1 MiB of white space, compressed once, repeated.
func gzipBomb(t *testing.T, n int64) func(io.Writer) error {
	member := func(b []byte) []byte {
		var z bytes.Buffer
		w, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
		w.Write(b)
		w.Close()
		return z.Bytes()
	}
	const block = 1 << 20
	open, blank, tail, closing := member([]byte("[")), member(bytes.Repeat([]byte(" "), block)), member(bytes.Repeat([]byte(" "), int(n%block))), member([]byte("]"))
	return func(w io.Writer) error {
		if _, err := w.Write(open); err != nil {
			return err
		}
		for i := int64(0); i < n/block; i++ {
			if _, err := w.Write(blank); err != nil {
				return err
			}
		}
		if _, err := w.Write(tail); err != nil {
			return err
		}
		_, err := w.Write(closing)
		return err
	}
}

// paddedBackup writes backup with pad bytes of white space after its '['.
func paddedBackup(backup []byte, pad int64) func(io.Writer) error {
	return func(w io.Writer) error {
		if _, err := w.Write(backup[:1]); err != nil {
			return err
		}
		blank := bytes.Repeat([]byte(" "), 1<<20)
		for left := pad; left > 0; left -= int64(len(blank)) {
			if _, err := w.Write(blank[:min(left, int64(len(blank)))]); err != nil {
				return err
			}
		}
		_, err := w.Write(backup[1:])
		return err
	}
}

// The server's side of the hostile uploads: `rehearse serve` (a child
// process) is sent the gzip bomb (2.2 MB, 2.3 GB of white space) and a valid
// backup padded with 300 MB of white space. With the default limits the
// bomb is refused as one; with --max-expansion 0 it is read whole. Either
// way the server's peak RSS stays under 256 MiB, it restores the padded
// backup, a login still answers 200, and no spool file is left.
func TestServeBombRSS(t *testing.T) {
	bin := buildRehearse(t)
	backup := paddedFixture(t, 0, 0)
	bombSize := int64(2_300_000_000)
	if testing.Short() {
		bombSize = 300_000_000
	}
	for _, c := range []struct {
		name, want string
		flags      []string
		bombStatus int
	}{
		{"default limits", "expands more than 500 fold", nil, 400},
		// Read whole, the bomb is a list without objects: refused after
		// the scan, before the reinit.
		{"no expansion limit", "the backup holds no objects", []string{"--max-expansion", "0", "--max-object-size", "1MiB"}, 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := startServeDSN(t, bin, pgtest.SeededDB(t), c.flags...)
			code, admin := loginAs(t, s.url, "admin", "admin_secure_password_123")
			if code != 200 {
				t.Fatalf("login before: %d\n%s", code, s.logs())
			}
			base := hwm(t, s.pid)
			start := time.Now()
			status, body := uploadStream(t, s.url, admin, "bomb.json.gz", gzipBomb(t, bombSize))
			t.Logf("bomb: %d %s in %v", status, body, time.Since(start).Round(time.Millisecond))
			if status != c.bombStatus || !strings.Contains(body, c.want) {
				t.Errorf("bomb: %d %s, want %d and %q", status, body, c.bombStatus, c.want)
			}
			start = time.Now()
			status, body = uploadStream(t, s.url, admin, "padded.json", paddedBackup(backup, 300_000_000))
			t.Logf("padded: %d %s in %v", status, body, time.Since(start).Round(time.Millisecond))
			if status != 200 || !strings.Contains(body, `"objects":40`) {
				t.Errorf("padded backup: %d %s", status, body)
			}
			peak := hwm(t, s.pid)
			t.Logf("peak RSS of rehearse serve: %.1f MiB (%.1f MiB before the uploads)", float64(peak)/(1<<20), float64(base)/(1<<20))
			if peak > 256<<20 {
				t.Errorf("peak RSS %.1f MiB, want at most 256 MiB", float64(peak)/(1<<20))
			}
			if code, _ := loginAs(t, s.url, "author01", "author01_pw"); code != 200 {
				t.Errorf("login after the uploads: %d\n%s", code, s.logs())
			}
			if left, _ := filepath.Glob(filepath.Join(s.tmp, "rehearse-*")); len(left) > 0 {
				t.Errorf("files left in the server's temp dir: %v", left)
			}
		})
	}
}
