package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	"github.com/rehearse-dev/rehearse/pg/integrity"
	"github.com/rehearse-dev/rehearse/restore"
)

// The fault matrix: `rehearse restore --with-reinit` of edms-medium,
// each strategy, broken in the middle of its load by each fault. A
// blocker holds the restore there, so that every fault lands mid-load: a
// transaction of the test that inserts a row the restore writes and waits
// (atomic: the last row of the audit COPY, an event only the backup
// holds; two-phase: once "reinit committed" is printed, a group
// membership the reinit deleted, which the restore writes back last).
//
// Atomic: the database is identical to before. Two-phase: either the
// restore completed (the first SIGINT or SIGTERM in the window is not
// obeyed), or what rehearse printed — on stderr, or for a kill -9 before
// the reinit committed on stdout — lists exactly the tables and rows the
// system lost, and its recovery command, run, restores everything.
func TestFaultMatrix(t *testing.T) {
	bin := buildRehearse(t)
	data := writeFaultData(t, t.TempDir())
	shared := sharedServer(t)
	template := shared.seeded(t, "", data)
	conn := pgtest.Connect(t, shared.dsn(template))
	err := conn.QueryRow(context.Background(), `SELECT g.user_id, g.group_id FROM users_user_groups g JOIN users_user u ON u.id = g.user_id
		WHERE u.username <> 'admin' ORDER BY g.user_id DESC LIMIT 1`).Scan(&data.pairUser, &data.pairGroup)
	conn.Close(context.Background()) // a template has no sessions
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range faultCases() {
		for _, st := range []restore.Strategy{restore.Atomic, restore.TwoPhase} {
			t.Run(string(st)+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				r := &faultRun{t: t, bin: bin, data: data, strategy: st, fault: c, srv: shared}
				if c.own {
					r.srv = ownServer(t)
					r.db = r.srv.seeded(t, "", data)
				} else {
					r.db = shared.seeded(t, template, data)
				}
				r.run()
			})
		}
	}
}

type faultCase struct {
	name     string
	args     []string // more flags for rehearse restore
	own      bool     // on a server of its own: the fault stops it
	viaProxy bool     // through a TCP proxy the fault cuts
	inject   func(r *faultRun)
}

func faultCases() []faultCase {
	return []faultCase{
		{name: "kill -9", inject: func(r *faultRun) { r.cmd.Process.Kill() }},
		{name: "SIGINT", inject: func(r *faultRun) { r.signal(syscall.SIGINT, 1) }},
		{name: "SIGINT twice", inject: func(r *faultRun) { r.signal(syscall.SIGINT, 2) }},
		{name: "SIGTERM", inject: func(r *faultRun) { r.signal(syscall.SIGTERM, 1) }},
		{name: "SIGTERM twice", inject: func(r *faultRun) { r.signal(syscall.SIGTERM, 2) }},
		{name: "pg_terminate_backend", inject: func(r *faultRun) {
			if _, err := r.mon.Exec(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, r.app); err != nil {
				r.t.Error(err)
			}
		}},
		{name: "immediate server stop", own: true, inject: func(r *faultRun) {
			pgctl(r.t, r.srv.cluster, "restart", "-m", "immediate", "-w", "-t", "60", "-l", filepath.Join(r.srv.cluster.DataDir(), "restart.log"))
		}},
		{name: "statement timeout", args: []string{"--statement-timeout", "1500ms"}, inject: func(r *faultRun) { r.exited(10 * time.Second) }},
		{name: "dropped TCP connection", viaProxy: true, inject: func(r *faultRun) { r.proxy.cut() }},
	}
}

// faultRun is one case of the matrix.
type faultRun struct {
	t        *testing.T
	bin      string
	data     faultData
	strategy restore.Strategy
	fault    faultCase
	srv      *pgServer
	db, app  string
	proxy    *proxy

	cmd            *exec.Cmd
	done           chan struct{}
	stdout, stderr *lines
	blockConn, mon *pgx.Conn // the blocker's, and a monitor's (outside any transaction: pg_stat_activity is read once per transaction)
	blockTx        pgx.Tx
	blocked        bool
}

func (r *faultRun) run() {
	t := r.t
	before := tableSums(t, r.srv.dsn(r.db))
	r.app = "fault_" + strconv.Itoa(int(dbCounter.Add(1)))
	r.blockConn, r.mon = pgtest.Connect(t, r.srv.dsn(r.db)), pgtest.Connect(t, r.srv.dsn(r.db))
	if r.strategy == restore.Atomic {
		r.block(`INSERT INTO audit_auditevent (id, actor_id, action, object_repr, details, created_at) VALUES ($1, NULL, 'SYSTEM', 'blocker', '{}', now())`, r.data.extraPK)
	}
	r.start()
	if r.strategy == restore.TwoPhase {
		if !r.stdout.waitFor(restore.PhaseReinitCommitted, 30*time.Second) {
			r.cmd.Process.Kill()
			t.Fatalf("no %q line:\n%s\n%s", restore.PhaseReinitCommitted, r.stdout.text(), r.stderr.text())
		}
		r.block(`INSERT INTO users_user_groups (user_id, group_id) VALUES ($1, $2)`, r.data.pairUser, r.data.pairGroup)
	}
	if r.blocked && !waitUntil(10*time.Second, r.waitsOnLock) {
		t.Errorf("the restore is not held by the blocker:\n%s", r.stdout.text())
	}
	r.fault.inject(r)
	r.release()
	if !r.exited(30 * time.Second) {
		r.cmd.Process.Kill()
		t.Fatalf("rehearse restore still runs 30 s after %s (it hangs):\n%s\n%s", r.fault.name, r.stdout.text(), r.stderr.text())
	}
	if !waitUntil(5*time.Second, func() bool { return !r.hasBackend() }) {
		t.Errorf("the restore's session still exists on the server 5 s after rehearse ended")
	}
	r.check(before, tableSums(t, r.srv.dsn(r.db)))
}

// block begins the blocker's transaction and runs sql in it; a blocker
// that cannot get in first (the restore wrote the row already) leaves the
// fault to land wherever the restore is.
func (r *faultRun) block(sql string, args ...any) {
	ctx := context.Background()
	tx, err := r.blockConn.Begin(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err = tx.Exec(ctx, "SET LOCAL lock_timeout = '1s'"); err == nil {
		_, err = tx.Exec(ctx, sql, args...)
	}
	if err != nil {
		r.t.Logf("the blocker did not get in first (%v): the fault lands wherever the restore is", err)
		tx.Rollback(ctx)
		return
	}
	r.blockTx, r.blocked = tx, true
}

func (r *faultRun) release() {
	if r.blockTx != nil {
		r.blockTx.Rollback(context.Background())
		r.blockTx = nil
	}
}

func (r *faultRun) start() {
	dsn := r.srv.dsn(r.db) + " application_name=" + r.app
	if r.fault.viaProxy {
		r.proxy = startProxy(r.t, r.srv.tcp)
		dsn = "host=127.0.0.1 port=" + strconv.Itoa(r.proxy.port()) + " user=postgres sslmode=disable dbname=" + r.db + " application_name=" + r.app
	}
	file := r.data.backup
	if r.strategy == restore.Atomic {
		file = r.data.extra
	}
	args := append([]string{"restore", "--dsn", dsn, "--from-file", file, "--with-reinit", "--strategy", string(r.strategy)}, r.fault.args...)
	r.cmd = exec.Command(r.bin, args...)
	out, _ := r.cmd.StdoutPipe()
	errs, _ := r.cmd.StderrPipe()
	r.stdout, r.stderr = readLines(out), readLines(errs)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.done = make(chan struct{})
	go func() {
		<-r.stdout.eof // Wait closes the pipes: read them to their end first
		<-r.stderr.eof
		r.cmd.Wait()
		close(r.done)
	}()
}

// signal sends sig n times; in a two-phase window the first one must be
// answered with the warning, and not obeyed.
func (r *faultRun) signal(sig syscall.Signal, n int) {
	r.cmd.Process.Signal(sig)
	if r.strategy == restore.TwoPhase && r.blocked {
		if !r.stderr.waitFor(windowWarning, 5*time.Second) {
			r.t.Errorf("no warning after the first %v in the window:\n%s", sig, r.stderr.text())
		}
		if r.exited(300 * time.Millisecond) {
			r.t.Errorf("the first %v in the window stopped the restore", sig)
		}
	}
	if n > 1 {
		r.cmd.Process.Signal(sig)
	}
}

// exited waits up to d for rehearse to end.
func (r *faultRun) exited(d time.Duration) bool {
	select {
	case <-r.done:
		return true
	case <-time.After(d):
		return false
	}
}

func (r *faultRun) waitsOnLock() bool {
	var n int
	r.mon.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, r.app).Scan(&n)
	return n > 0
}

func (r *faultRun) hasBackend() bool {
	conn := pgtest.Connect(r.t, r.srv.dsn(r.db))
	defer conn.Close(context.Background())
	var n int
	conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, r.app).Scan(&n)
	return n > 0
}

func waitUntil(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// check judges the outcome: see TestFaultMatrix.
func (r *faultRun) check(before, now map[string]integrity.Checksum) {
	t := r.t
	code := r.cmd.ProcessState.ExitCode()
	stdout, stderr := r.stdout.text(), r.stderr.text()
	t.Logf("exit %d; stderr:\n%s", code, stderr)
	// What a fault makes rehearse say (the loss, the recovery command)
	// names tables and rows, never a user's password hash or a token.
	shown := &outputs{t: t, texts: map[string]string{"stdout after " + r.fault.name: stdout, "stderr after " + r.fault.name: stderr}}
	shown.check([]string{"pbkdf2_sha256$"})
	if r.strategy == restore.Atomic {
		if code == exitOK {
			t.Errorf("the restore succeeded despite %s", r.fault.name)
		}
		sameTables(t, "atomic restore after "+r.fault.name, before, now)
		return
	}
	if committed.MatchString(stdout) {
		// Committed; a signal that came after it may still have ended the
		// process (exit -1) before its summary, once its guard was gone.
		t.Logf("the restore completed (exit %d)", code)
		sameTables(t, "completed restore", before, now)
		return
	}
	said := stderr
	if r.fault.name == "kill -9" {
		said = stdout // killed outright, it said it before the reinit committed
	} else if code != exitError || !strings.Contains(stderr, "the reinit committed") {
		t.Errorf("exit %d without saying the reinit committed:\n%s", code, stderr)
	}
	matchLoss(t, said, before, now)
	r.recover(said)
	sameTables(t, "after the recovery command", before, tableSums(t, r.srv.dsn(r.db)))
}

// committed is the progress line of the restore's commit.
var committed = regexp.MustCompile(`(?m)^T\+ *\d+ms  ` + regexp.QuoteMeta(restore.PhaseRestoreCommitted) + `$`)

var lossLine = regexp.MustCompile(`(?m)^\s+(\w+)\s+(\d+) -> (\d+) rows(?:, \d+ references set to NULL)?(?:, emptied with TRUNCATE: the backup replaces every row)? \(the backup holds (\d+)\)$`)

// matchLoss checks the tables said against the database: each listed with
// its rows before and now, every table that lost rows listed, and the
// backup (the state before) holding what was there.
func matchLoss(t *testing.T, said string, before, now map[string]integrity.Checksum) {
	t.Helper()
	listed := map[string]bool{}
	for _, m := range lossLine.FindAllStringSubmatch(said, -1) {
		table := m[1]
		listed[table] = true
		if m[2] != strconv.FormatInt(before[table].Rows, 10) || m[3] != strconv.FormatInt(now[table].Rows, 10) || m[4] != m[2] {
			t.Errorf("said %q; the database had %d rows and has %d", m[0], before[table].Rows, now[table].Rows)
		}
	}
	for table, b := range before {
		if b.Rows != now[table].Rows && !listed[table] {
			t.Errorf("%s lost rows (%d -> %d), and nothing said so", table, b.Rows, now[table].Rows)
		}
	}
	if !listed["users_user"] {
		t.Errorf("no loss said:\n%s", said)
	}
}

var recoveryLine = regexp.MustCompile(`(?m)^\s*rehearse (restore .*--with-reinit --strategy atomic.*)$`)

// recover runs the recovery command said.
func (r *faultRun) recover(said string) {
	m := recoveryLine.FindStringSubmatch(said)
	if m == nil {
		r.t.Fatalf("no recovery command said:\n%s", said)
	}
	cmd := exec.Command("sh", "-c", `"$0" `+m[1], r.bin)
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("the recovery command failed: %v\n%s", err, out)
	}
	r.t.Logf("ran the recovery command: rehearse %s", m[1])
}
