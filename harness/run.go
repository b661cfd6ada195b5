package harness

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/edms/server"
	pgcatalog "github.com/rehearse-dev/rehearse/pg/catalog"
	"github.com/rehearse-dev/rehearse/pg/integrity"
	"github.com/rehearse-dev/rehearse/reinit"
	"github.com/rehearse-dev/rehearse/restore"
	"github.com/rehearse-dev/rehearse/results"
)

// Runner runs scenarios. One Runner (and so one PostgreSQL cluster) serves a
// whole process; Run is safe to call from several goroutines.
type Runner struct {
	Provider Provider
	// Logf receives progress lines; nil discards them.
	Logf func(format string, args ...any)
	// BaseURL and DSN, when set, override those of http targets
	// (rehearse rehearse --target URL --dsn DSN).
	BaseURL, DSN string
	// AllowUnmarked lets an http target's database be used although it is
	// not marked as a rehearsal target.
	AllowUnmarked bool

	mu    sync.Mutex
	extra map[string]*extraProvider // providers scenarios asked for by name
	// tempDir holds the backups the harness takes ("": the system's).
	tempDir string
}

type extraProvider struct {
	once sync.Once
	p    Provider
	err  error
}

// providerFor returns the run's provider, or the one the scenario names
// (started on first use, configured from the environment).
func (r *Runner) providerFor(ctx context.Context, p *Plan) (Provider, error) {
	if p.Provider == "" || (r.Provider != nil && r.Provider.Name() == p.Provider) {
		return r.Provider, nil
	}
	r.mu.Lock()
	if r.extra == nil {
		r.extra = map[string]*extraProvider{}
	}
	e := r.extra[p.Provider]
	if e == nil {
		e = &extraProvider{}
		r.extra[p.Provider] = e
	}
	r.mu.Unlock()
	e.once.Do(func() {
		r.logf("%s: starting provider %s", p.Name, p.Provider)
		if e.p, e.err = openProvider(ctx, p.Provider, nil); e.err != nil {
			e.err = fmt.Errorf("%s: provider %s: %w", p.File, p.Provider, e.err)
		}
	})
	return e.p, e.err
}

// Close stops the providers that scenarios started by name (not r.Provider).
func (r *Runner) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, e := range r.extra {
		if e.p != nil {
			errs = append(errs, e.p.Close())
		}
	}
	r.extra = nil
	return errors.Join(errs...)
}

func (r *Runner) logf(format string, args ...any) {
	if r.Logf != nil {
		r.Logf(format, args...)
	}
}

// Plan resolves a scenario with the runner's overrides.
func (r *Runner) Plan(s *Scenario) (*Plan, error) {
	return NewPlan(s, Overrides{BaseURL: r.BaseURL, DSN: r.DSN})
}

// run is the state of one scenario run.
type run struct {
	plan    *Plan
	res     *results.Result
	conn    *pgx.Conn // checks, manual steps and window actions (serialised by mu)
	mu      sync.Mutex
	cl      *client
	tokens  map[string]*credential // name → what the token sends
	refresh map[string]string      // name → refresh token, when the login gave one
	key     []byte                 // the system's signing key, for minted tokens
	before  snapshot
	win     window
	kicks   []chan chan struct{} // one per probe: sample now, then close the ack
	rec     *recorder
	// backupFile is what the operation restores; a backup taken by the
	// harness is written in tempDir ("": the system's) and removed on
	// every way out of the operation.
	backupFile string
	tempDir    string
}

// snapshot is what the operation must preserve, read before it.
type snapshot struct {
	ids    map[string]int64  // username → id
	hashes map[string]string // username → password hash
	// sums are the tables as the backup was taken of them; leftOut, the
	// tables the backup did not hold; txid, the transaction counter then.
	sums    map[string]integrity.Checksum
	leftOut map[string]bool
	txid    int64
	// maxKeys is each table's largest integer primary key then (0 when
	// empty); a table with another key is not in it.
	maxKeys map[string]int64
}

// window is the state of the window between the reinit and restore commits.
type window struct {
	dsn        string         // a running system's database, watched for its commits
	done       chan error     // errors of the watcher and of the window's actions
	ready      chan struct{}  // closed once the watcher listens (or gave up)
	actions    sync.WaitGroup // the window's actions, started by the watcher
	reinitSeen atomic.Bool    // the watcher saw the reinit commit
	polling    atomic.Bool    // the watcher could not install its trigger and polls
	ownTxs     sync.Map       // txid → struct{}: the harness's own writes, which the watcher ignores
	// opTxs are the transactions of the operation (reinit, restore) the
	// trigger heard; written by the watcher, read once it has ended.
	opTxs   []int64
	created []createdUser
	// actionErr is a failure of the harness's own window actions: it makes
	// the run an error, not a failure of the system.
	actionErr error
}

type createdUser struct {
	username string
	id       int64
}

// Run plans and runs one scenario and returns its result. It never panics
// on bad input; problems running it are reported as an Errored result.
func (r *Runner) Run(ctx context.Context, s *Scenario) *results.Result {
	p, err := r.Plan(s)
	if err != nil {
		return &results.Result{Name: s.Name, File: s.Pos.File, Description: s.Description, Fixture: s.Fixture, Target: s.Target,
			Status: results.Errored, Error: err.Error()}
	}
	return r.RunPlan(ctx, p)
}

// RunPlan runs one plan and returns its result.
func (r *Runner) RunPlan(ctx context.Context, p *Plan) *results.Result {
	res := &results.Result{Name: p.Name, File: p.File, Description: p.Description, Fixture: p.Fixture, Target: p.Target, AccountsFrom: p.AccountsFrom, Accounts: p.accountsFacts(),
		Strategy: cmp.Or(p.Strategy, results.StrategyNotObserved), Operation: p.Operation, Defects: p.Defects,
		Facts: results.Facts{Admin: p.System.Admin, Window: results.WindowNotObserved}}
	for _, a := range p.Accounts {
		res.Secrets = append(res.Secrets, a.password) // for the reports' redaction; never written
	}
	start := time.Now()
	err := r.run(ctx, p, res)
	res.Duration = time.Since(start)
	switch {
	case err != nil:
		res.Status, res.Error = results.Errored, err.Error()
	case anyFailed(res.Expectations):
		res.Status = results.Failed
	default:
		res.Status = results.Passed
	}
	return res
}

func anyFailed(os []results.Outcome) bool {
	for _, o := range os {
		if !o.Pass {
			return true
		}
	}
	return false
}

func (r *Runner) run(ctx context.Context, p *Plan, res *results.Result) (err error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	setup := time.Now()
	ru := &run{plan: p, res: res, tokens: map[string]*credential{}, refresh: map[string]string{}, rec: newRecorder(), tempDir: r.tempDir}
	var stop func()
	if p.Target == TargetHTTP {
		stop, err = ru.connectHTTP(ctx, r.AllowUnmarked)
	} else {
		var prov Provider
		if prov, err = r.providerFor(ctx, p); err == nil {
			res.Provider = prov.Name()
			stop, err = ru.startEmbedded(ctx, prov)
		}
	}
	if err != nil {
		return err
	}
	defer stop()
	if p.CreateAccounts {
		remove, err := ru.createAccounts(ctx)
		if err != nil {
			return err
		}
		// On every way out, a cancelled run's too: the accounts came back
		// with the restore (the backup holds them) or stayed if it never ran.
		defer func() {
			remove()
			if e := res.Accounts.Removal.Error; e != "" && err == nil {
				err = fmt.Errorf("could not remove the accounts rehearse created (%s): %s", strings.Join(res.Accounts.Created, ", "), e)
			}
		}()
	}
	if ru.conn != nil {
		if err := ru.snapshotBefore(ctx); err != nil {
			return err
		}
	}
	if err := ru.obtainTokens(ctx); err != nil {
		return err
	}
	res.Setup = time.Since(setup)
	r.logf("%s: setup %s", p.Name, res.Setup.Round(time.Millisecond))

	if err := ru.operate(ctx); err != nil {
		if _, reinit := res.Phase(results.PhaseReinitCommitted); reinit {
			res.Facts.Outcome = results.OperationFailedAfterReinit
			ru.countUsersAfter(ctx)
			derive(p, res)
		}
		return err
	}
	if res.Facts.Outcome = operationOutcome(p, res, ru.watchMode()); res.Facts.Outcome != results.OperationCompleted {
		// An operation that did not happen is not measured: no check is
		// judged; the timeline and the tokens' state after stay, to show
		// what was seen.
		ru.countUsersAfter(ctx)
		ru.measureTokensAfter(ctx)
		derive(p, res)
		return operationError(res)
	}
	if err := ru.measureAfter(ctx); err != nil {
		return err
	}
	derive(p, res)
	res.Expectations = Judge(p, res)
	return nil
}

// startEmbedded gives the scenario a database of its own and serves the
// reference system on it, in-process, with hooks that stamp its phases.
func (ru *run) startEmbedded(ctx context.Context, prov Provider) (stop func(), err error) {
	if prov == nil {
		return nil, errors.New("no provider for the embedded target's database")
	}
	dsn, drop, err := prov.Database(ctx, ru.plan.Fixture)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	var undo []func()
	stop = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	undo = append(undo, drop)
	defer func() {
		if err != nil {
			stop()
		}
	}()
	conn, err := connectDB(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect to the scenario database: %w", err)
	}
	ru.conn = conn
	undo = append(undo, func() { conn.Close(context.Background()) })
	if ru.plan.needsAuthTables() {
		if err := server.InstallAuthTables(ctx, conn); err != nil {
			return nil, err
		}
	}
	pool, err := server.NewPool(ctx, dsn, 16)
	if err != nil {
		return nil, fmt.Errorf("open the system's database: %w", err)
	}
	undo = append(undo, pool.Close)
	key := make([]byte, 32)
	rand.Read(key)
	// The system is throwaway: so are the uploads it spools and the backup
	// it keeps for a recovery after a failed two-phase restore.
	spool, err := os.MkdirTemp("", "rehearse-system-")
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { os.RemoveAll(spool) })
	srv, err := server.New(server.Config{
		Pool:       pool,
		SigningKey: key,
		TempDir:    spool,
		Strategy:   restore.Strategy(ru.plan.Strategy),
		Defects:    ru.plan.defects,
		Auth:       ru.plan.auth,
		Hooks: server.Hooks{
			OnPhase: func(e restore.Event) {
				if ph, ok := phaseOf(e.Phase); ok {
					ru.rec.commit(ph, "", e.Sent, e.At)
				}
			},
			BetweenPhases: func(hctx context.Context) error {
				// The server may go on with a restore its caller gave up
				// on; the window's actions still end with the scenario.
				hctx, cancel := context.WithCancel(hctx)
				defer cancel()
				defer context.AfterFunc(ctx, cancel)()
				return ru.inWindow(hctx)
			},
		},
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	sctx, scancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(sctx, ln); close(done) }()
	undo = append(undo, func() { scancel(); <-done })
	ru.cl = newClient("http://"+ln.Addr().String(), srv.Routes())
	return stop, nil
}

// phaseOf maps the engine's and the server's phase names to the typed
// phases of the results; progress events (table loaded) are not phases.
func phaseOf(name string) (results.Phase, bool) {
	ph, ok := map[string]results.Phase{
		restore.PhaseValidated:        results.PhaseValidated,
		restore.PhaseReinitCommitted:  results.PhaseReinitCommitted,
		restore.PhaseRestoreCommitted: results.PhaseRestoreCommitted,
		server.PhaseCallReceived:      results.PhaseCallReceived,
		server.PhaseResponseSent:      results.PhaseResponseSent,
	}[name]
	return ph, ok
}

// snapshotBefore records what the operation must preserve: username → id,
// password hashes, per-table checksums (the backup holds exactly this).
func (ru *run) snapshotBefore(ctx context.Context) error {
	var err error
	if ru.before.ids, ru.before.hashes, err = users(ctx, ru.conn, ru.plan.System); err != nil {
		return err
	}
	ru.res.Facts.UsersBefore = len(ru.before.ids)
	ru.res.Facts.AdminIDBefore = ru.before.ids[ru.plan.System.Admin]
	return nil
}

// snapshotAtBackup records the tables as the backup is taken of them, and
// the transaction counter: rows written later by anyone but the operation
// are the rehearsal's own requests at work.
func (ru *run) snapshotAtBackup(ctx context.Context) error {
	// One snapshot: the largest keys must be those of the rows summed.
	return pgx.BeginTxFunc(ctx, ru.conn, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		cat, err := pgcatalog.Load(ctx, tx, "")
		if err != nil {
			return err
		}
		if ru.before.sums, err = integrity.TableChecksums(ctx, tx, cat, edms.Protected()); err != nil {
			return err
		}
		if ru.before.maxKeys, err = maxKeys(ctx, tx, cat, ru.before.sums); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT txid_current()`).Scan(&ru.before.txid)
	})
}

// maxKeys reads the largest primary key of each table in sums whose key is
// one integer column.
func maxKeys(ctx context.Context, q pgcatalog.Querier, cat *pgcatalog.Catalog, sums map[string]integrity.Checksum) (map[string]int64, error) {
	out := map[string]int64{}
	for name := range sums {
		t := cat.Tables[name]
		pk := t.PK()
		if c, ok := t.Column(pk); !ok || (c.Type != "int2" && c.Type != "int4" && c.Type != "int8") {
			continue
		}
		var top int64
		if err := q.QueryRow(ctx, `SELECT COALESCE(max(`+pgcatalog.Ident(pk)+`), 0) FROM `+cat.QualifiedIdent(name)).Scan(&top); err != nil {
			return nil, fmt.Errorf("read the largest key of %s: %w", name, err)
		}
		out[name] = top
	}
	return out, nil
}

func users(ctx context.Context, q pgcatalog.Querier, sys System) (map[string]int64, map[string]string, error) {
	rows, err := q.Query(ctx, `SELECT `+sys.loginColumn()+`, id, `+sys.passwordColumn()+` FROM `+sys.usersTable())
	if err != nil {
		return nil, nil, fmt.Errorf("read users: %w", err)
	}
	defer rows.Close()
	ids, hashes := map[string]int64{}, map[string]string{}
	for rows.Next() {
		var u, h string
		var id int64
		if err := rows.Scan(&u, &id, &h); err != nil {
			return nil, nil, err
		}
		ids[u], hashes[u] = id, h
	}
	return ids, hashes, rows.Err()
}

func (ru *run) obtainTokens(ctx context.Context) error {
	routes := ru.plan.System.Routes
	for _, spec := range ru.plan.Tokens {
		cred, refresh, err := ru.obtainToken(ctx, spec)
		if err != nil {
			return err
		}
		ru.tokens[spec.Name] = cred
		if spec.Kind != KindJWT {
			ru.res.Secrets = append(ru.res.Secrets, cred.secret) // a session or DRF key is a password
		}
		before := ru.cl.profile(ctx, cred)
		if before.Status != 200 {
			hint := "is profile.path or profile.auth_scheme wrong?"
			if spec.Mint {
				hint = "is the signing key the system's?"
			}
			return fmt.Errorf("%s: token %q does not authenticate before the operation: GET %s answered %d %s; %s", spec.Pos, spec.Name, routes.Profile, before.Status, before.field("detail"), hint)
		}
		fate := results.TokenFate{Name: spec.Name, Kind: results.TokenKind(spec.Kind), User: spec.User, Fingerprint: results.Fingerprint(cred.secret), Before: before.Status}
		if refresh != "" {
			ru.refresh[spec.Name] = refresh
			rep := ru.cl.refresh(ctx, refresh)
			if rep.Status == 404 || rep.Status == 405 {
				return fmt.Errorf("%s: token %q: POST %s answered %d: is that the refresh endpoint? (set refresh.path in the target file)", spec.Pos, spec.Name, routes.Refresh, rep.Status)
			}
			fate.Refresh = &results.RefreshFate{Fingerprint: results.Fingerprint(refresh), Before: rep.Status}
		} else if ru.plan.usesRefresh(spec.Name) {
			return fmt.Errorf("%s: token %q: the login response has no %q field, so its refresh token cannot be probed; set login.refresh_field in the target", spec.Pos, spec.Name, routes.RefreshField)
		}
		ru.res.Tokens = append(ru.res.Tokens, fate)
	}
	return nil
}

// obtainToken logs in (or mints) and returns the access token and, from a
// login, the refresh token.
func (ru *run) obtainToken(ctx context.Context, spec PlannedToken) (cred *credential, refresh string, err error) {
	if spec.Kind != KindJWT {
		cred, err = ru.obtainOther(ctx, spec)
		return cred, "", err
	}
	if spec.Mint {
		access, err := ru.mint(spec)
		return &credential{kind: KindJWT, secret: access}, "", err
	}
	routes := ru.plan.System.Routes
	rep := ru.cl.login(ctx, spec.User, ru.plan.password(spec.User, results.PasswordOriginal))
	switch {
	case rep.Err != nil:
		return nil, "", fmt.Errorf("%s: token %q: login as %s before the operation: %v", spec.Pos, spec.Name, spec.User, rep.Err)
	case rep.Status == 404 || rep.Status == 405:
		return nil, "", fmt.Errorf("%s: token %q: POST %s answered %d: is that the login endpoint? (set login.path in the target file)", spec.Pos, spec.Name, routes.Login, rep.Status)
	case rep.Status != 200:
		return nil, "", fmt.Errorf("%s: token %q: login as %s before the operation failed with status %d; is the fixture's user present in the system with its password (seed: present), and are login.username_field/password_field right?", spec.Pos, spec.Name, spec.User, rep.Status)
	}
	access := rep.field(routes.AccessField)
	if access == "" {
		return nil, "", fmt.Errorf("%s: token %q: the login response has no %q field; set login.access_field in the target", spec.Pos, spec.Name, routes.AccessField)
	}
	return &credential{kind: KindJWT, secret: access}, rep.field(routes.RefreshField), nil
}

// prepareBackup sets the backup the operation restores: the scenario's, or
// one taken now as the seed's create_backup would (by rehearse, or by the
// command the target file names). The returned function removes a backup
// taken here.
func (ru *run) prepareBackup(ctx context.Context) (cleanup func(), err error) {
	if c := ru.plan.Call; c != nil && c.BackupFile != "" {
		ru.backupFile = c.BackupFile
		return func() {}, nil
	}
	if err := ru.snapshotAtBackup(ctx); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(ru.tempDir, "rehearse-backup-*.json")
	if err != nil {
		return nil, err
	}
	ru.backupFile = f.Name()
	cleanup = func() { os.Remove(f.Name()) }
	var spec BackupSpec
	if t := ru.plan.System.target; t != nil {
		spec = t.Backup
	} else if ru.plan.needsAuthTables() {
		// The embedded system's own backup, as its AuthMode shapes it.
		spec = BackupSpec{Models: ru.plan.auth.BackupModels(), Exclude: ru.plan.auth.BackupExclude()}
	}
	if spec.Command != "" {
		f.Close()
		err = runBackupCommand(ctx, spec, ru.plan.System.target.dir, f.Name())
	} else {
		var stats *restore.BackupStats
		stats, err = restore.Backup(ctx, ru.conn, f, restore.BackupOptions{Exclude: edms.Protected(),
			Models: spec.Models, IncludeModels: spec.Include, ExcludeModels: spec.Exclude})
		f.Close()
		if err == nil {
			ru.res.Backup = backupFacts(stats)
			ru.before.leftOut = map[string]bool{}
			for _, s := range stats.Skipped {
				ru.before.leftOut[s.Table] = true
			}
		} else if spec.Pos.Line > 0 {
			err = fmt.Errorf("%s: backup: %w", spec.Pos, err)
		}
	}
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("back up before the operation: %w", err)
	}
	return cleanup, nil
}

// runBackupCommand runs the app's own backup command, {file} replaced by
// the (shell-quoted) path it must write.
func runBackupCommand(ctx context.Context, spec BackupSpec, dir, file string) error {
	line := strings.ReplaceAll(spec.Command, "{file}", "'"+strings.ReplaceAll(file, "'", `'\''`)+"'")
	cmd := exec.CommandContext(ctx, "sh", "-c", line)
	cmd.Dir = dir
	// When the scenario ends, the whole command goes (what sh started too,
	// which would hold its output open), and the wait is bounded.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	var stderr tail
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Run(); err != nil {
		last := strings.TrimSpace(string(stderr))
		if i := strings.LastIndexByte(last, '\n'); i >= 0 {
			last = last[i+1:]
		}
		return fmt.Errorf("%s: backup.command %q failed: %v: %s", spec.Pos, clip(spec.Command, maxQuoted), err, clip(last, maxMessage))
	}
	if st, err := os.Stat(file); err != nil || st.Size() == 0 {
		return fmt.Errorf("%s: backup.command %q wrote nothing to {file}", spec.Pos, clip(spec.Command, maxQuoted))
	}
	return nil
}

// tail keeps the last 4 KiB written to it: a command's last words.
type tail []byte

func (t *tail) Write(p []byte) (int, error) {
	*t = append(*t, p[max(0, len(p)-4096):]...)
	*t = (*t)[max(0, len(*t)-4096):]
	return len(p), nil
}

// backupFacts is what the results say of a backup rehearse took.
func backupFacts(st *restore.BackupStats) *results.BackupFacts {
	b := &results.BackupFacts{Objects: st.Objects, Models: len(st.Models)}
	for _, m := range sortedKeys(st.Models) {
		b.PerModel = append(b.PerModel, results.ModelRows{Model: m, Rows: st.Models[m]})
	}
	for _, s := range st.Skipped {
		b.LeftOut = append(b.LeftOut, results.LeftOut{Table: s.Table, Model: s.Model, Reason: string(s.Reason), Detail: s.Detail})
	}
	return b
}

// callToken is the token that authorises the API call.
func (ru *run) callToken(ctx context.Context) (string, error) {
	c := ru.plan.Call
	if c.As != "" {
		return ru.tokens[c.As].secret, nil // a jwt: validated
	}
	sys := ru.plan.System
	user := cmp.Or(c.User, sys.Admin)
	rep := ru.cl.login(ctx, user, ru.plan.password(user, results.PasswordOriginal))
	if rep.Status != 200 {
		return "", fmt.Errorf("log in as %s to make the call: status %d", user, rep.Status)
	}
	return rep.field(sys.Routes.AccessField), nil
}

// operate runs the operation while the probes sample.
func (ru *run) operate(ctx context.Context) error {
	cleanup, err := ru.prepareBackup(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	var callToken string
	if ru.plan.Call != nil {
		if callToken, err = ru.callToken(ctx); err != nil {
			return err
		}
	}
	pctx, stopProbes := context.WithCancel(ctx)
	defer stopProbes()
	probes := ru.startProbes(pctx)
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watched, err := ru.startWatcher(wctx)
	if err != nil {
		stopProbes()
		probes.Wait()
		return err
	}
	lead := ru.plan.Lead.D()
	sleep(ctx, lead)
	ru.rec.phase(results.PhaseOperationStarted, "", time.Now())
	if ru.plan.Call != nil {
		err = ru.call(ctx, callToken)
	} else {
		err = ru.manual(ctx)
	}
	ru.rec.phase(results.PhaseOperationFinished, "", time.Now())
	sleep(ctx, lead)
	// One more sample from every probe, sent after the operation ended: a
	// failing stretch that this sample does not close is really still open.
	ru.sampleAll(ctx)
	stopProbes()
	probes.Wait()
	ru.awaitWatcher(watched, stopWatch)
	if ru.win.done != nil {
		select {
		case e := <-ru.win.done:
			err = cmp.Or(err, e)
		default:
		}
	}
	ru.res.Timeline = ru.rec.timeline()
	if ru.win.actionErr != nil {
		return ru.win.actionErr
	}
	return err
}

func (ru *run) startProbes(ctx context.Context) *sync.WaitGroup {
	var wg sync.WaitGroup
	ru.kicks = make([]chan chan struct{}, len(ru.plan.Probes))
	for i := range ru.plan.Probes {
		p := &ru.plan.Probes[i]
		kick := make(chan chan struct{})
		ru.kicks[i] = kick
		wg.Add(1)
		go func() { defer wg.Done(); ru.probe(ctx, p, kick) }()
	}
	return &wg
}

// startWatcher watches a running system's database for its commits; the
// channel closes when the watcher ends (at once when there is none).
func (ru *run) startWatcher(ctx context.Context) (chan struct{}, error) {
	watched := make(chan struct{})
	if ru.win.dsn == "" {
		close(watched)
		return watched, nil
	}
	ru.win.done = make(chan error, 4)
	ru.win.ready = make(chan struct{})
	go func() { defer close(watched); ru.watch(ctx, ru.res.Facts.UsersBefore, ru.win.done) }()
	<-ru.win.ready
	select {
	case err := <-ru.win.done:
		return nil, err
	default:
	}
	return watched, nil
}

// awaitWatcher gives a running system's restore commit a moment to be
// heard (the system may answer before the watcher heard it), then stops
// the watcher and waits for the window's actions.
func (ru *run) awaitWatcher(watched chan struct{}, stop func()) {
	if ru.win.reinitSeen.Load() {
		select {
		case <-watched:
		case <-time.After(restoreWatchGrace):
			ru.rec.phase(results.PhaseRestoreNotObserved, "", time.Now())
		}
	}
	stop()
	<-watched
	ru.win.actions.Wait()
}

// call makes the restore_from_file API call.
func (ru *run) call(ctx context.Context, token string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("restore_from_file not sent: %w", context.Cause(ctx))
	}
	c := ru.plan.Call
	sent := time.Now()
	// An interrupt does not abandon a restore in flight: the system would
	// finish it anyway, and bring the accounts rehearse created back from
	// the backup after their removal. The call ends with the system's
	// answer, or at the run's deadline.
	octx, cancel := context.WithoutCancel(ctx), func() {}
	if d, ok := ctx.Deadline(); ok {
		octx, cancel = context.WithDeadline(octx, d)
	}
	defer cancel()
	rep := ru.cl.restoreFromFile(octx, token, ru.backupFile, c.WithReinit, c.Confirm)
	f := &ru.res.Facts
	f.OperationStatus = rep.Status
	switch {
	case ctx.Err() != nil:
		end := "status " + strconv.Itoa(rep.Status)
		if rep.Err != nil {
			end = rep.Err.Error()
		}
		return fmt.Errorf("interrupted during the operation: rehearse waited for restore_from_file to end (%s) so that none of it happens after the run, and measured nothing more", end)
	case rep.Err != nil && octx.Err() != nil:
		return fmt.Errorf("restore_from_file: %w", rep.Err)
	case rep.Err != nil:
		f.OperationBody = rep.Err.Error()
	case rep.Status < 200 || rep.Status > 299:
		f.OperationBody = cmp.Or(rep.field("detail"), rep.Line)
	}
	if rep.Err != nil || rep.Status >= 500 {
		f.ServerErrors = append(f.ServerErrors, results.ServerError{Source: results.SourceOperation, Name: "restore_from_file",
			AtMS: ru.rec.since(sent), Status: rep.Status, Body: f.OperationBody})
	}
	return nil
}

// manual is the seed's 3-step path: create_backup (done), system_reinit
// --confirm, restore_backup --from-file, each committed on its own.
func (ru *run) manual(ctx context.Context) error {
	m := ru.plan.Manual
	ru.mu.Lock()
	_, err := reinit.Run(ctx, ru.conn, ru.plan.auth.Reinit(edms.ReinitConfig("", !ru.plan.defects.NoRevocation)))
	ru.mu.Unlock()
	if err != nil {
		return fmt.Errorf("system_reinit: %w", err)
	}
	ru.rec.phase(results.PhaseReinitCommitted, "", time.Now())
	if err := ru.inWindow(ctx); err != nil {
		return err
	}
	if err := sleep(ctx, m.Pause.D()); err != nil {
		return err
	}
	ru.mu.Lock()
	defer ru.mu.Unlock()
	opts := edms.RestoreOptions(func() (io.ReadCloser, error) { return os.Open(ru.backupFile) }, restore.Strategy(m.Strategy), nil)
	opts.Defects = ru.plan.defects.Engine()
	_, err = restore.Restore(ctx, ru.conn, opts)
	if err != nil {
		return fmt.Errorf("restore_backup: %w", err)
	}
	ru.rec.phase(results.PhaseRestoreCommitted, "", time.Now())
	return nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// inWindow runs after the reinit committed and before the restore: it
// measures the in-between state and runs the scenario's during: actions.
func (ru *run) inWindow(ctx context.Context) error {
	sys := ru.plan.System
	var n int
	ru.mu.Lock()
	err := ru.conn.QueryRow(ctx, `SELECT COALESCE((SELECT id FROM `+sys.usersTable()+` WHERE `+sys.loginColumn()+` = $1), 0), (SELECT count(*) FROM `+sys.usersTable()+`)`, sys.Admin).Scan(&ru.res.Facts.AdminIDAfterReinit, &n)
	ru.mu.Unlock()
	if err != nil {
		return fmt.Errorf("look into the window: %w", err)
	}
	ru.res.Facts.UsersInWindow = &n
	if err := ru.tokenUsersInWindow(ctx); err != nil {
		return err
	}
	return ru.windowActions(ctx)
}

// tokenUsersInWindow records whether each token's user exists between the
// commits: a token that works afterwards "works again" only if its user
// was deleted in between.
func (ru *run) tokenUsersInWindow(ctx context.Context) error {
	ru.mu.Lock()
	defer ru.mu.Unlock()
	for i := range ru.res.Tokens {
		t := &ru.res.Tokens[i]
		var exists bool
		q := `SELECT EXISTS (SELECT 1 FROM ` + ru.plan.System.usersTable() + ` WHERE ` + ru.plan.System.loginColumn() + ` = $1)`
		if err := ru.conn.QueryRow(ctx, q, t.User).Scan(&exists); err != nil {
			return fmt.Errorf("look into the window: %w", err)
		}
		t.UserInWindow = results.UserDeleted
		if exists {
			t.UserInWindow = results.UserPresent
		}
	}
	return nil
}

// restoreWatchGrace bounds the wait for the restore commit's notification
// after the operation answered.
const restoreWatchGrace = 5 * time.Second

// windowActions samples every probe once and runs the scenario's during:
// actions.
func (ru *run) windowActions(ctx context.Context) error {
	ru.sampleAll(ctx) // best effort: the probes may have stopped already
	if len(ru.plan.During) > 0 {
		defer func() {
			if ctx.Err() != nil && ru.win.actionErr == nil {
				ru.win.actionErr = errors.New("the window's actions had not finished when the operation ended")
			}
		}()
	}
	for _, a := range ru.plan.During {
		switch {
		case a.CreateUser != nil:
			if err := ru.createUser(ctx, a.CreateUser); err != nil {
				ru.win.actionErr = fmt.Errorf("%s: %w", a.Pos, err)
				return ru.win.actionErr
			}
		case a.Profile != nil:
			ru.profileInWindow(ctx, a.Profile.Token)
		case a.Sleep > 0:
			if err := sleep(ctx, a.Sleep.D()); err != nil {
				return err
			}
		}
	}
	return nil
}

// profileInWindow calls profile with a token in the window and records
// whom it authenticated as.
func (ru *run) profileInWindow(ctx context.Context, token string) {
	sys := ru.plan.System
	rep := ru.cl.profile(ctx, ru.tokens[token])
	who := rep.field(sys.ProfileUserField)
	ru.rec.phase(results.PhaseWindowAction, fmt.Sprintf("profile %s: %d %s", token, rep.Status, who), time.Now())
	var owner string
	for _, t := range ru.plan.Tokens {
		if t.Name == token {
			owner = t.User
		}
	}
	if rep.Err != nil || rep.Status >= 500 {
		body := cmp.Or(rep.Line, fmt.Sprint(rep.Err))
		ru.res.Facts.ServerErrors = append(ru.res.Facts.ServerErrors, results.ServerError{Source: results.SourceWindowAction,
			Name: "profile " + token, AtMS: ru.rec.since(time.Now()), Status: rep.Status, Body: body})
	}
	// A stateless token's user has no username to compare (simplejwt's TokenUser).
	if rep.Status == 200 && who != owner && who != "" {
		var id int64
		fmt.Sscan(rep.field(sys.ProfileIDField), &id)
		ru.res.Facts.PKReuse = append(ru.res.Facts.PKReuse, results.PKReuse{Kind: results.TokenAsOther, User: owner, Other: who, ID: id, Token: token})
	}
}

func (ru *run) createUser(ctx context.Context, c *CreateUser) error {
	hash, err := edms.HashPassword(cmp.Or(c.Password, c.Username+"_pw"))
	if err != nil {
		return err
	}
	table := ru.plan.System.usersTable()
	ru.mu.Lock()
	defer ru.mu.Unlock()
	if ru.win.dsn != "" {
		// A running system does not wait for the harness between its
		// phases: the restore may have committed already.
		var n int
		if err := ru.conn.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			return err
		}
		if n >= ru.res.Facts.UsersBefore {
			return fmt.Errorf("create user %s: the restore had already committed (%d users are back), so the action could not run in the window; on a running system the window can be shorter than the harness's reaction", c.Username, n)
		}
	}
	var id int64
	err = pgx.BeginFunc(ctx, ru.conn, func(tx pgx.Tx) error {
		var txid int64
		if err := tx.QueryRow(ctx, `SELECT txid_current()`).Scan(&txid); err != nil {
			return err
		}
		ru.win.ownTxs.Store(txid, struct{}{}) // before the commit the watcher hears of
		// The target's login column (email for a model that logs in by
		// email), as the accounts rehearse creates.
		sys := ru.plan.System
		ids, err := reinit.CreateUsers(ctx, tx, sys.reinitConfig(), []map[string]any{sys.accountRow(c.Username, hash, false)})
		if err == nil {
			id = ids[0]
		}
		return err
	})
	var pgErr *pgconn.PgError
	if ru.win.dsn != "" && errors.As(err, &pgErr) && pgErr.Code == "23505" {
		// The restore, not waiting for the harness, had written (and then
		// committed) a row holding the id or login the insert drew.
		return fmt.Errorf("create user %s: the restore had already written a row it clashes with (%s), so the action could not run in the window; on a running system the window can be shorter than the harness's reaction", c.Username, pgErr.Detail)
	}
	if err != nil {
		return fmt.Errorf("create user %s in the window: %w", c.Username, err)
	}
	ru.rec.phase(results.PhaseWindowAction, fmt.Sprintf("user %s created with id %d", c.Username, id), time.Now())
	ru.win.created = append(ru.win.created, createdUser{username: c.Username, id: id})
	for u, old := range ru.before.ids {
		if old == id {
			ru.res.Facts.PKReuse = append(ru.res.Facts.PKReuse, results.PKReuse{Kind: results.IDRecycled, User: c.Username, Other: u, ID: id})
		}
	}
	return nil
}

// sampleAll makes every probe take one sample now and waits for them. It
// runs as the window opens, so that a window shorter than a probe's interval
// is still seen by every probe; on the embedded system, which waits for the
// harness between its phases, it lengthens the window by about one request.
func (ru *run) sampleAll(ctx context.Context) {
	acks := make([]chan struct{}, 0, len(ru.kicks))
	for _, k := range ru.kicks {
		ack := make(chan struct{})
		select {
		case k <- ack:
			acks = append(acks, ack)
		case <-ctx.Done():
			return
		}
	}
	for _, ack := range acks {
		select {
		case <-ack:
		case <-ctx.Done():
			return
		}
	}
}

// probe samples until ctx ends, at its interval and whenever kicked.
// Requests go one after another: a slow answer delays the next sample
// instead of piling up requests.
func (ru *run) probe(ctx context.Context, p *PlannedProbe, kick <-chan chan struct{}) {
	tick := time.NewTicker(p.Every.D())
	defer tick.Stop()
	var ack chan struct{}
	defer func() {
		if ack != nil {
			close(ack)
		}
	}()
	for {
		sent := time.Now()
		smp := p.Probe.sample(ctx, ru)
		if ctx.Err() != nil {
			return
		}
		smp.Probe = p.Name
		ru.rec.sample(smp, sent, time.Now())
		if ack != nil {
			close(ack)
			ack = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case ack = <-kick:
		}
	}
}
