package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/reinit"
	"github.com/rehearse-dev/rehearse/restore"
)

// restoreForm is a parsed restore_from_file request.
type restoreForm struct {
	path     string // spooled backup file, "" if none was sent
	size     int64
	filename string
	fields   map[string]string // the other known fields, first value each
}

func (f *restoreForm) cleanup() {
	if f.path != "" {
		os.Remove(f.path)
	}
}

// keep moves the spooled upload out of cleanup's way, to a name of its
// own beside it (rehearse-kept-backup-TIME-N.json, .json.gz when
// gzipped), and returns that name.
func (f *restoreForm) keep() (string, error) {
	ext := ".json"
	if isGzip(f.path) {
		ext = ".json.gz"
	}
	dir := filepath.Dir(f.path)
	id := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f.path), spoolPrefix), spoolSuffix)
	kept := filepath.Join(dir, "rehearse-kept-backup-"+time.Now().UTC().Format("20060102T150405Z")+"-"+id+ext)
	if err := os.Rename(f.path, kept); err != nil {
		return "", err
	}
	f.path = ""
	return kept, nil
}

func isGzip(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var magic [2]byte
	_, err = io.ReadFull(f, magic[:])
	return err == nil && magic == [2]byte{0x1f, 0x8b}
}

// The spool files of uploads: removed on every path but a failure after
// the reinit committed (keep).
const (
	spoolPrefix = "rehearse-restore-"
	spoolSuffix = ".upload"
)

func restoreErr(detail string) obj { return obj{{"status", "error"}, {"detail", detail}} }

// restore is the seed's restore_from_file action: staff only, multipart.
func (s *Server) restore(w http.ResponseWriter, r *http.Request) {
	u, ok := s.authenticate(w, r, false)
	if !ok {
		return
	}
	if !u.staff {
		writeJSON(w, http.StatusForbidden, permissionDenied)
		return
	}
	if r.Method != http.MethodPost {
		methodNotAllowed(w, r, "Restore From File", http.MethodPost)
		return
	}
	s.emit(restore.Event{Phase: PhaseCallReceived, At: time.Now()})
	respond := func(status int, body any) {
		s.emit(restore.Event{Phase: PhaseResponseSent, At: time.Now()})
		writeJSON(w, status, body)
	}

	form, status, body := s.readRestoreForm(w, r)
	defer form.cleanup()
	if body != nil {
		respond(status, body)
		return
	}
	withReinit, body := s.restoreFields(form)
	if body != nil {
		respond(http.StatusBadRequest, body)
		return
	}

	// One restore at a time; a waiting call gives up if its client leaves.
	select {
	case s.restoreSlot <- struct{}{}:
	case <-r.Context().Done():
		s.logf("restore: caller (user id %d) went away while waiting for another restore to finish", u.id)
		return
	}
	defer func() { <-s.restoreSlot }()

	// Like Django, a restore that started runs to its end even if the
	// client disconnects: stopping between the reinit and the restore is
	// the worst outcome. Only a server that gives up shutting down stops it.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	defer context.AfterFunc(s.stopCtx, cancel)()
	respond(s.runRestore(ctx, u, form, withReinit))
}

// restoreFields checks the form's fields as the seed's serializer does and
// says whether the restore comes with a reinit; body is the 400's on error.
func (s *Server) restoreFields(form *restoreForm) (withReinit bool, body any) {
	rt := s.routes
	if form.path == "" {
		return false, restoreErr(rt.BackupFileField + " is required")
	}
	if v, given := form.fields[rt.RestoreTypeField]; given && v != "full" {
		return false, restoreErr(rt.RestoreTypeField + " must be 'full'")
	}
	if v, given := form.fields[rt.WithReinitField]; given {
		switch strings.ToLower(v) {
		case "true":
			withReinit = true
		case "false":
		default:
			return false, restoreErr(rt.WithReinitField + " must be 'true' or 'false'")
		}
	}
	if withReinit && form.fields[rt.ConfirmField] != rt.ConfirmPhrase {
		return false, restoreErr(rt.ConfirmField + " must be '" + rt.ConfirmPhrase + "'")
	}
	return withReinit, nil
}

// runRestore restores the uploaded backup on a connection of its own and
// returns the response.
func (s *Server) runRestore(ctx context.Context, u *principal, form *restoreForm, withReinit bool) (int, any) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		s.logf("restore: acquire a connection: %v", err)
		return http.StatusInternalServerError, restoreErr("restore failed: cannot connect to the database: " + err.Error())
	}
	defer func() {
		// The restore may leave session state behind; never reuse its connection.
		closeConn(pc.Conn())
		pc.Release()
	}()

	var reinitCfg *reinit.Config
	if withReinit {
		cfg := s.auth.Reinit(edms.ReinitConfig(s.adminPW, !s.defects.NoRevocation))
		reinitCfg = &cfg
	}
	open := restore.WithLimits(func() (io.ReadCloser, error) { return os.Open(form.path) }, s.limits)
	opts := edms.RestoreOptions(open, s.strategy, reinitCfg)
	opts.BetweenPhases = s.hooks.BetweenPhases
	opts.Defects = s.defects.Engine()
	opts.Progress = s.emit
	start := time.Now()
	res, err := restore.Restore(ctx, pc.Conn(), opts)
	if err != nil {
		return s.restoreFailed(u, form, withReinit, time.Since(start), err)
	}
	s.logf("restore: user id %d: %s, with_reinit=%v: %d objects from %d bytes in %v", u.id, res.Strategy, withReinit, res.Objects, form.size, res.Timings.Total.Round(time.Millisecond))
	return http.StatusOK, obj{
		{"status", "success"},
		{"strategy", string(res.Strategy)},
		{"with_reinit", withReinit},
		{"objects", res.Objects},
		{"rows", res.Rows},
		{"sequences_fixed", len(res.Sequences)},
		{"reinit_ms", millis(res.Timings.Reinit)},
		{"restore_ms", millis(res.Timings.Total - res.Timings.Reinit)},
		{"total_ms", millis(res.Timings.Total)},
	}
}

// restoreFailed logs a failed restore and returns its response: a 400 for
// a bad backup, a 500 otherwise; after the reinit committed, a 500 that
// says what the system lost and how to recover it, with the upload kept.
func (s *Server) restoreFailed(u *principal, form *restoreForm, withReinit bool, took time.Duration, err error) (int, any) {
	var we *restore.WindowError
	if errors.As(err, &we) {
		return s.windowFailed(u, form, took, we)
	}
	var be *restore.BackupError
	if errors.As(err, &be) {
		s.logf("restore: user id %d: %s (%s, %d bytes)", u.id, be.Error(), s.strategy, form.size)
		return http.StatusBadRequest, restoreErr(be.Error())
	}
	s.logf("restore: user id %d: restore failed after %v (%s, with_reinit=%v, %d bytes): %v", u.id, took.Round(time.Millisecond), s.strategy, withReinit, form.size, err)
	return http.StatusInternalServerError, restoreErr("restore failed: " + err.Error())
}

// windowFailed answers a restore that failed after its reinit committed:
// the upload is kept (it is the way back), and the body says what the
// system lost, where the backup is and the command that restores it.
func (s *Server) windowFailed(u *principal, form *restoreForm, took time.Duration, we *restore.WindowError) (int, any) {
	kept, err := form.keep()
	if err != nil {
		// The spool file is the only copy: left where it is, not removed.
		s.logf("restore: rename the uploaded backup to keep it: %v; it stays at %s", err, form.path)
		kept, form.path = form.path, ""
	}
	rec := edms.NewRecovery(s.pool.Config().ConnString(), kept)
	note := "; the reinit had already committed, so the database is now in its reinitialized state (only admin, with the default password): " + rec.String()
	s.logf("restore: user id %d: restore failed after %v (%s, with_reinit=true, %d bytes): %v%s", u.id, took.Round(time.Millisecond), s.strategy, form.size, we, note)
	return http.StatusInternalServerError, obj{
		{"status", "error"},
		{"detail", "restore failed: " + we.Error() + note},
		{"lost", we.Window.Tables},
		{"backup_kept", kept},
		{"recovery_command", rec.Command},
	}
}

func millis(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func (s *Server) emit(e restore.Event) {
	if s.hooks.OnPhase != nil {
		s.hooks.OnPhase(e)
	}
}

// readRestoreForm streams a multipart body: the backup file goes to a temp
// file, the other known fields are kept (first value each), everything else
// is discarded. A body that is not multipart has no file (DRF's
// request.FILES is empty then). On failure it returns the status and body.
func (s *Server) readRestoreForm(w http.ResponseWriter, r *http.Request) (*restoreForm, int, any) {
	form := &restoreForm{fields: map[string]string{}}
	r.Body = http.MaxBytesReader(w, r.Body, s.maxUpload)
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return form, 0, nil
	}
	tooBig := func(err error) (int, any, bool) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return http.StatusRequestEntityTooLarge, restoreErr(fmt.Sprintf("the request is larger than the limit of %d bytes", mbe.Limit)), true
		}
		return 0, nil, false
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return form, http.StatusBadRequest, obj{{"detail", "Multipart form parse error - " + err.Error()}}
	}
	rt := s.routes
	known := map[string]bool{rt.RestoreTypeField: true, rt.WithReinitField: true, rt.ConfirmField: true}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			if st, b, ok := tooBig(err); ok {
				return form, st, b
			}
			return form, http.StatusBadRequest, obj{{"detail", "Multipart form parse error - " + err.Error()}}
		}
		name := part.FormName()
		switch {
		case name == rt.BackupFileField && form.path == "":
			f, err := os.CreateTemp(s.tempDir, spoolPrefix+"*"+spoolSuffix)
			if err != nil {
				part.Close()
				s.logf("restore: spool upload: %v", err)
				return form, http.StatusInternalServerError, restoreErr("restore failed: cannot store the upload: " + err.Error())
			}
			form.path = f.Name()
			form.filename = part.FileName()
			n, err := io.Copy(f, part)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			form.size = n
			if err != nil {
				part.Close()
				if st, b, ok := tooBig(err); ok {
					return form, st, b
				}
				return form, http.StatusBadRequest, restoreErr("cannot read " + rt.BackupFileField + ": " + err.Error())
			}
			if n == 0 && form.filename == "" {
				// An empty file input of an HTML form: no file chosen.
				form.cleanup()
				form.path = ""
			}
		case known[name]:
			v, err := io.ReadAll(io.LimitReader(part, maxFieldValue+1))
			if err != nil {
				part.Close()
				if st, b, ok := tooBig(err); ok {
					return form, st, b
				}
				return form, http.StatusBadRequest, obj{{"detail", "Multipart form parse error - " + err.Error()}}
			}
			if len(v) > maxFieldValue {
				part.Close()
				return form, http.StatusBadRequest, restoreErr(name + " is too long")
			}
			if _, dup := form.fields[name]; !dup {
				form.fields[name] = string(v)
			}
		default:
			if _, err := io.Copy(io.Discard, part); err != nil {
				part.Close()
				if st, b, ok := tooBig(err); ok {
					return form, st, b
				}
				return form, http.StatusBadRequest, obj{{"detail", "Multipart form parse error - " + err.Error()}}
			}
		}
		part.Close()
	}
	return form, 0, nil
}
