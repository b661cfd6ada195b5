package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/restore"
)

// windowWarning is what the first Ctrl-C (or SIGTERM) in a two-phase
// window says: stopping there is the worst outcome, so it is not obeyed.
const windowWarning = "the reinit has committed; stopping now leaves the system empty; finishing the restore — press Ctrl-C again to abort"

// windowGuard stops a restore on SIGINT or SIGTERM, except the first one
// that comes between a two-phase restore's reinit commit (from the moment
// it is validated: the commit is next) and its restore commit: that one
// is answered with windowWarning, and the restore goes on; a second one
// stops it.
type windowGuard struct {
	mu       sync.Mutex
	inWindow bool
	warned   bool
	cancel   context.CancelFunc
	stderr   io.Writer
}

// guardWindow returns the restore's context, cancelled by the guard, and
// a stop that removes the guard's signal handler. The parent's own
// cancellation (main cancels it on the first signal) is not followed:
// the guard decides.
func guardWindow(parent context.Context, stderr io.Writer) (context.Context, *windowGuard, func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	g := &windowGuard{cancel: cancel, stderr: stderr}
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	if parent.Err() != nil {
		cancel() // a signal came before the handler: it stops the restore
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-ch:
				g.signal(sig)
			case <-done:
				return
			}
		}
	}()
	return ctx, g, func() {
		signal.Stop(ch)
		close(done)
		cancel()
	}
}

func (g *windowGuard) signal(sig os.Signal) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inWindow && !g.warned {
		g.warned = true
		fmt.Fprintf(g.stderr, "rehearse restore: %s\n", windowWarning)
		return
	}
	if g.inWindow {
		fmt.Fprintf(g.stderr, "rehearse restore: %v again: aborting the restore\n", sig)
	}
	g.cancel()
}

// phase follows the restore's events: the window opens at "validated"
// when the event carries one, and closes when the restore commits.
func (g *windowGuard) phase(e restore.Event) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case e.Phase == restore.PhaseValidated && e.Window != nil:
		g.inWindow = true
	case e.Phase == restore.PhaseRestoreCommitted:
		g.inWindow = false
	}
}

// recoveryFor is how to recover from a failed window of a restore of
// --from-file from into the system of --dsn dsnFlag ("" = REHEARSE_DSN),
// with the flags that must be given again.
func recoveryFor(dsnFlag, from string, again []string) edms.Recovery {
	path, err := filepath.Abs(from)
	if err != nil {
		path = from
	}
	r := edms.NewRecovery(dsnFlag, path, again...)
	if dsnFlag == "" {
		r.Note = "with REHEARSE_DSN naming the database, as now"
	}
	if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
		r.Note = strings.TrimPrefix(r.Note+"; ", "; ") + path + " is not a regular file and may not be read twice: save the same backup to a file and name it in --from-file"
	}
	return r
}

// printWindow prints, before the reinit commits, what the system will be
// without until the restore commits and how to recover if it never does:
// even a restore killed outright (SIGKILL) has said it.
func printWindow(w io.Writer, win *restore.Window, rec edms.Recovery) {
	fmt.Fprintln(w, "            the reinit commits next; until \"restore committed\" the system is without (rows before the reinit -> rows after):")
	for _, l := range win.Lines("              ") {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintln(w, "            if the restore does not finish, "+strings.ReplaceAll(rec.String(), "\n", "\n            "))
}

// failRestore prints a failed restore; after the reinit committed, with
// what the system lost and how to recover.
func failRestore(stderr io.Writer, err error, rec edms.Recovery) int {
	var we *restore.WindowError
	if !errors.As(err, &we) {
		return fail(stderr, "restore", err)
	}
	fmt.Fprintf(stderr, "rehearse restore: %v\n%s\n", err, rec)
	return exitError
}
