package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rehearse-dev/rehearse/reinit"
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
		if r := e.RowsPerSecond(); r > 0 {
			rate = fmt.Sprintf(", %.0f rows/s", r)
		} else if took > 0 && e.Rows > 0 {
			rate = fmt.Sprintf(", %.0f rows/s", float64(e.Rows)/took.Seconds())
		}
		fmt.Fprintf(w, "T+%6dms    loaded %s: %d rows%s\n", e.At.Sub(start).Milliseconds(), e.Table, e.Rows, rate)
	}
}

// seedProgress prints, on a terminal, each table of a fixture as it is
// loaded; elsewhere init's summary line is the whole report.
func seedProgress(w io.Writer, start time.Time, tty bool) func(restore.Event) {
	if !tty {
		return nil
	}
	show := restoreProgress(w, start, true)
	return func(e restore.Event) {
		if e.Phase == restore.PhaseTableLoaded {
			show(e)
		}
	}
}

// reinitProgress prints, on a terminal, each table the reinit emptied and
// each foreign key it set to NULL, with rows and rate; the plan printed at
// the end is the summary everywhere.
func reinitProgress(w io.Writer, start time.Time, tty bool) func(reinit.Progress) {
	if !tty {
		return nil
	}
	return func(p reinit.Progress) {
		what := "deleted from " + p.Table
		if p.Step == reinit.StepNulled {
			what = "set NULL " + p.Table + "." + p.Column
		}
		rate := ""
		if r := p.RowsPerSecond(); r > 0 {
			rate = fmt.Sprintf(", %.0f rows/s", r)
		}
		fmt.Fprintf(w, "T+%6dms    %s: %d rows%s\n", time.Since(start).Milliseconds(), what, p.Rows, rate)
	}
}
