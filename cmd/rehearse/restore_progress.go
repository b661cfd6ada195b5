package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rehearse-dev/rehearse/restore"
)

// isTerminal reports whether w is a terminal: per-table progress goes
// there; a log or a pipe gets the phases and the summary alone.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// restoreProgress prints the engine's phases and, on a terminal, each table
// as it is loaded with its rows and rate.
func restoreProgress(w io.Writer, start time.Time, tty bool) func(restore.Event) {
	last := start
	return func(e restore.Event) {
		if e.Phase != restore.PhaseTableLoaded {
			fmt.Fprintf(w, "T+%6dms  %s\n", e.At.Sub(start).Milliseconds(), e.Phase)
			last = e.At
			return
		}
		if !tty {
			return
		}
		took := e.At.Sub(last)
		last = e.At
		rate := ""
		if took > 0 && e.Rows > 0 {
			rate = fmt.Sprintf(", %.0f rows/s", float64(e.Rows)/took.Seconds())
		}
		fmt.Fprintf(w, "T+%6dms    loaded %s: %d rows%s\n", e.At.Sub(start).Milliseconds(), e.Table, e.Rows, rate)
	}
}
