package pgtest

import (
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// SignalCase is one case of a signal test: the signal sent, and whether the
// helper runs without its guards.
type SignalCase struct {
	Sig      syscall.Signal
	NoGuards bool
}

// SignalCases runs run for each case in a parallel subtest named by the
// signal, with unguarded added for a case without guards; i is the case's
// index.
func SignalCases(t *testing.T, cases []SignalCase, unguarded string, run func(t *testing.T, i int, c SignalCase)) {
	for i, c := range cases {
		name := c.Sig.String()
		if c.NoGuards {
			name += " " + unguarded
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			run(t, i, c)
		})
	}
}

// SignalHelper is the helper program of a signal test: the test binary run
// again, connecting as application_name App, whose statement on the server
// a signal to it should end.
type SignalHelper struct {
	Args []string // the test binary's arguments ("-test.run=^$")
	Env  []string // added to the environment
	// Mon is the connection that watches the helper's backends and
	// terminates them when the test ends.
	Mon *pgx.Conn
	App string
	// Running reports whether the helper's statement runs on the server.
	Running func() bool
	// NoGuardsEnv=1 in its environment runs the helper without what ends
	// the statement of a killed client (a case's NoGuards): then the
	// statement must still run after Stays.
	NoGuardsEnv string
	// Stays is how long an unguarded statement is watched to be still
	// running; Gone, how long a guarded one may stay after the signal.
	Stays, Gone time.Duration
	// The failures: the statement never started (": stderr" follows), an
	// unguarded one ended anyway, a guarded one still runs (" GONE after
	// SIG" follows).
	NeverStarted, EndedAnyway, StillRuns string
}

// Signal starts the helper, waits until its statement runs, sends it c.Sig
// and checks that the statement ends within Gone (with c.NoGuards, that it
// still runs after Stays).
func (h SignalHelper) Signal(t *testing.T, c SignalCase) {
	t.Helper()
	cmd := osexec.Command(os.Args[0], h.Args...)
	cmd.Env = append(os.Environ(), h.Env...)
	if c.NoGuards {
		cmd.Env = append(cmd.Env, h.NoGuardsEnv+"=1")
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer h.Mon.Exec(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, h.App)
	if !WaitFor(10*time.Second, h.Running) {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("%s: %s", h.NeverStarted, stderr.String())
	}
	if err := cmd.Process.Signal(c.Sig); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	cmd.Wait()
	if c.NoGuards {
		time.Sleep(h.Stays)
		if !h.Running() {
			t.Fatalf("%s (%s)", h.EndedAnyway, stderr.String())
		}
		return
	}
	if !WaitFor(h.Gone, func() bool { return !h.Running() }) {
		t.Fatalf("%s %s after %s (%s)", h.StillRuns, h.Gone, c.Sig, stderr.String())
	}
	t.Logf("statement ended %s after %s; helper said: %s", time.Since(t0).Round(time.Millisecond), c.Sig, strings.TrimSpace(stderr.String()))
}

// RunHelper is the helper program of a signal test, to be its exit code:
// with noGuardsEnv set it calls unguard (WithoutServerGuards, say) first; it wires SIGINT and SIGTERM
// to a cancelled context, as cmd/rehearse does, connects to dsn and runs
// run, then says on stderr what run returned, after what ("reinit:").
func RunHelper(dsn, noGuardsEnv string, unguard func() (undo func()), what string, run func(context.Context, *pgx.Conn) error) int {
	if os.Getenv(noGuardsEnv) != "" {
		unguard() // for the rest of the process: nothing to undo
	}
	c, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	conn, err := pgx.Connect(c, dsn)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Fprintln(os.Stderr, what, run(c, conn))
	return 1
}
