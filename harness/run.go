package harness

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/edms/server"
	"github.com/rehearse-dev/rehearse/edms/token"
	"github.com/rehearse-dev/rehearse/fixtures"
	pgcatalog "github.com/rehearse-dev/rehearse/pg/catalog"
	"github.com/rehearse-dev/rehearse/pg/integrity"
	"github.com/rehearse-dev/rehearse/reinit"
	"github.com/rehearse-dev/rehearse/restore"
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
}

type extraProvider struct {
	once sync.Once
	p    Provider
	err  error
}

// providerFor returns the run's provider, or the one the scenario names
// (started on first use, configured from the environment).
func (r *Runner) providerFor(ctx context.Context, s *Scenario) (Provider, error) {
	if s.Provider == "" || (r.Provider != nil && r.Provider.Name() == s.Provider) {
		return r.Provider, nil
	}
	r.mu.Lock()
	if r.extra == nil {
		r.extra = map[string]*extraProvider{}
	}
	e := r.extra[s.Provider]
	if e == nil {
		e = &extraProvider{}
		r.extra[s.Provider] = e
	}
	r.mu.Unlock()
	e.once.Do(func() {
		cfg := ProviderConfigFromEnv()
		cfg.Kind = s.Provider
		r.logf("%s: starting provider %s", s.Name, s.Provider)
		e.p, e.err = OpenProvider(ctx, cfg)
		if e.err != nil {
			e.err = fmt.Errorf("%s: provider %s: %w", s.Pos, s.Provider, e.err)
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

// run is the state of one scenario run.
type run struct {
	s      *Scenario
	res    *Result
	fx     *fixtures.Fixture
	conn   *pgx.Conn // checks, manual steps and window actions (serialised by mu)
	mu     sync.Mutex
	cl     *client
	routes server.Routes
	tokens map[string]string // name → access token
	// How the system is addressed; defaults for the embedded one.
	adminUser, adminDefault          string
	profileUserField, profileIDField string
	usersName, usersTable            string // raw and quoted
	signingKey                       []byte
	target                           *TargetFile          // http target, as resolved
	watchDSN                         string               // http target with a database: the watcher's
	windowDone                       chan error           // errors of the watcher and of the window's actions
	watchReady                       chan struct{}        // closed once the watcher listens (or gave up)
	windowWG                         sync.WaitGroup       // the window's actions, started by the watcher
	kicks                            []chan chan struct{} // one per probe: sample now, then close the ack
	reinitSeen                       atomic.Bool          // the watcher saw the reinit commit
	ownTxs                           sync.Map             // txid → struct{}: the harness's own writes, which the watcher ignores
	idsBefore                        map[string]int64
	hashBefore                       map[string]string
	sumsBefore                       map[string]integrity.Checksum
	backupFile                       string
	created                          []createdUser
	// actionErr is a failure of the harness's own window actions: it makes
	// the run an error, not a failure of the system.
	actionErr error
	rec       *recorder
}

type createdUser struct {
	username string
	id       int64
}

// Run runs one scenario and returns its result. It never panics on bad
// input; problems running it are reported as an Errored result.
func (r *Runner) Run(ctx context.Context, s *Scenario) *Result {
	res := &Result{Name: s.Name, File: s.Pos.File, Description: s.Description, Fixture: s.Fixture, Target: s.Target, Strategy: s.Strategy, Defects: s.Defects,
		Facts: Facts{UsersInWindow: -1}} // -1 until someone looks into a window
	if s.Operation.Manual != nil {
		res.Operation, res.Strategy = "manual", s.Operation.Manual.Strategy
	} else {
		res.Operation = "restore_from_file"
	}
	start := time.Now()
	err := r.run(ctx, s, res)
	res.Duration = time.Since(start)
	switch {
	case err != nil:
		res.Status, res.Error = Errored, err.Error()
	case anyFailed(res.Expectations):
		res.Status = Failed
	default:
		res.Status = Passed
	}
	return res
}

func anyFailed(os []Outcome) bool {
	for _, o := range os {
		if !o.Pass {
			return true
		}
	}
	return false
}

func (r *Runner) run(ctx context.Context, s *Scenario, res *Result) error {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout.D())
	defer cancel()
	setup := time.Now()
	fx, err := fixtures.Get(s.Fixture)
	if err != nil {
		return err
	}
	if len(s.Users) > 0 {
		fx = s.accountsFixture()
		for _, a := range s.Users {
			if a.PasswordEnv != "" && os.Getenv(a.PasswordEnv) == "" {
				return fmt.Errorf("%s: user %s: password_env names %s, which is not set", a.Pos, a.Username, a.PasswordEnv)
			}
		}
	}
	ru := &run{s: s, res: res, fx: fx, tokens: map[string]string{}, rec: newRecorder(),
		adminUser: "admin", adminDefault: edms.DefaultAdminPassword, profileUserField: "username", profileIDField: "id",
		usersName: "users_user", usersTable: "users_user"}
	var stop func()
	if s.Target == TargetHTTP {
		stop, err = ru.connectHTTP(ctx, r)
	} else {
		var prov Provider
		if prov, err = r.providerFor(ctx, s); err == nil {
			res.Provider = prov.Name()
			stop, err = ru.startEmbedded(ctx, prov)
		}
	}
	if err != nil {
		return err
	}
	defer stop()
	if ru.conn != nil {
		if err := ru.snapshotBefore(ctx); err != nil {
			return err
		}
	}
	if err := ru.obtainTokens(ctx); err != nil {
		return err
	}
	res.Setup = time.Since(setup)
	r.logf("%s: setup %s", s.Name, res.Setup.Round(time.Millisecond))

	if err := ru.operate(ctx); err != nil {
		return err
	}
	return ru.evaluate(ctx)
}

// startEmbedded gives the scenario a database of its own and serves the
// reference system on it, in-process, with hooks that stamp its phases.
func (ru *run) startEmbedded(ctx context.Context, prov Provider) (stop func(), err error) {
	if prov == nil {
		return nil, errors.New("no provider for the embedded target's database")
	}
	dsn, drop, err := prov.Database(ctx, ru.s.Fixture)
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
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect to the scenario database: %w", err)
	}
	ru.conn = conn
	undo = append(undo, func() { conn.Close(context.Background()) })
	defects, err := server.ParseDefects(ru.s.Defects)
	if err != nil {
		return nil, err
	}
	pool, err := server.NewPool(ctx, dsn, 16)
	if err != nil {
		return nil, fmt.Errorf("open the system's database: %w", err)
	}
	undo = append(undo, pool.Close)
	key := make([]byte, 32)
	rand.Read(key)
	srv, err := server.New(server.Config{
		Pool:       pool,
		SigningKey: key,
		Strategy:   restore.Strategy(ru.s.Strategy),
		Defects:    defects,
		Hooks: server.Hooks{
			OnPhase: func(e restore.Event) {
				if e.Phase != restore.PhaseTableLoaded {
					ru.rec.phase(e.Phase, e.At)
				}
			},
			BetweenPhases: ru.inWindow,
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
	ru.routes = srv.Routes()
	ru.cl = newClient("http://"+ln.Addr().String(), ru.routes)
	return stop, nil
}

// snapshotBefore records what the operation must preserve: username → id,
// password hashes, per-table checksums (the backup holds exactly this).
func (ru *run) snapshotBefore(ctx context.Context) error {
	var err error
	if ru.idsBefore, ru.hashBefore, err = users(ctx, ru.conn, ru.usersTable); err != nil {
		return err
	}
	ru.res.Facts.UsersBefore = len(ru.idsBefore)
	ru.res.Facts.AdminIDBefore = ru.idsBefore[ru.adminUser]
	cat, err := pgcatalog.Load(ctx, ru.conn, "")
	if err != nil {
		return err
	}
	ru.sumsBefore, err = integrity.TableChecksums(ctx, ru.conn, cat, edms.Protected())
	return err
}

func users(ctx context.Context, q pgcatalog.Querier, table string) (map[string]int64, map[string]string, error) {
	rows, err := q.Query(ctx, `SELECT username, id, password FROM `+table)
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

func (ru *run) password(user, kind string) string {
	if kind == "default" {
		return ru.adminDefault
	}
	u, _ := ru.fx.User(user)
	return u.Password
}

func (ru *run) obtainTokens(ctx context.Context) error {
	for _, name := range sortedKeys(ru.s.Tokens) {
		spec := ru.s.Tokens[name]
		if spec.Mint {
			tok, err := ru.mint(ctx, spec)
			if err != nil {
				return err
			}
			ru.tokens[name] = tok
		} else {
			rep := ru.cl.login(ctx, spec.User, ru.password(spec.User, "original"))
			switch {
			case rep.Err != nil:
				return fmt.Errorf("%s: token %q: login as %s before the operation: %v", spec.Pos, name, spec.User, rep.Err)
			case rep.Status == 404 || rep.Status == 405:
				return fmt.Errorf("%s: token %q: POST %s answered %d: is that the login endpoint? (set login.path in the target file)", spec.Pos, name, ru.routes.Login, rep.Status)
			case rep.Status != 200:
				return fmt.Errorf("%s: token %q: login as %s before the operation failed with status %d; is the fixture's user present in the system with its password (seed: present), and are login.username_field/password_field right?", spec.Pos, name, spec.User, rep.Status)
			}
			ru.tokens[name] = rep.field(ru.routes.AccessField)
			if ru.tokens[name] == "" {
				return fmt.Errorf("%s: token %q: the login response has no %q field; set login.access_field in the target", spec.Pos, name, ru.routes.AccessField)
			}
		}
		before := ru.cl.profile(ctx, ru.tokens[name])
		if before.Status != 200 {
			hint := "is profile.path or profile.auth_scheme wrong?"
			if spec.Mint {
				hint = "is the signing key the system's?"
			}
			return fmt.Errorf("%s: token %q does not authenticate before the operation: GET %s answered %d %s; %s", spec.Pos, name, ru.routes.Profile, before.Status, before.field("detail"), hint)
		}
		ru.res.Tokens = append(ru.res.Tokens, TokenFate{Name: name, User: spec.User, Fingerprint: token.Fingerprint(ru.tokens[name]), Before: before.Status})
	}
	return nil
}

// operate runs the operation while the probes sample.
func (ru *run) operate(ctx context.Context) error {
	if c := ru.s.Operation.RestoreFromFile; c != nil && c.BackupFile != "" {
		ru.backupFile = c.BackupFile
	} else {
		// The backup the operation restores, taken as the seed's create_backup would.
		f, err := os.CreateTemp("", "rehearse-backup-*.json")
		if err != nil {
			return err
		}
		ru.backupFile = f.Name()
		defer os.Remove(ru.backupFile)
		_, err = restore.Backup(ctx, ru.conn, f, restore.BackupOptions{Exclude: edms.Protected()})
		f.Close()
		if err != nil {
			return fmt.Errorf("back up before the operation: %w", err)
		}
	}
	var callToken string
	if c := ru.s.Operation.RestoreFromFile; c != nil {
		if c.As != "" {
			callToken = ru.tokens[c.As]
		} else {
			rep := ru.cl.login(ctx, ru.adminUser, ru.password(ru.adminUser, "original"))
			if rep.Status != 200 {
				return fmt.Errorf("log in as %s to make the call: status %d", ru.adminUser, rep.Status)
			}
			callToken = rep.field(ru.routes.AccessField)
		}
	}
	var err error

	pctx, stopProbes := context.WithCancel(ctx)
	var wg sync.WaitGroup
	lead := ru.maxInterval() * 3
	ru.kicks = make([]chan chan struct{}, len(ru.s.Probes))
	for i := range ru.s.Probes {
		p := &ru.s.Probes[i]
		kick := make(chan chan struct{})
		ru.kicks[i] = kick
		wg.Add(1)
		go func() { defer wg.Done(); ru.probe(pctx, p, kick) }()
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watched := make(chan struct{})
	if ru.watchDSN != "" {
		ru.windowDone = make(chan error, 4)
		ru.watchReady = make(chan struct{})
		go func() { defer close(watched); ru.watch(wctx, ru.res.Facts.UsersBefore, ru.windowDone) }()
		<-ru.watchReady
		select {
		case err := <-ru.windowDone:
			stopProbes()
			wg.Wait()
			return err
		default:
		}
	} else {
		close(watched)
	}
	time.Sleep(lead)
	ru.rec.phase("operation started", time.Now())
	if c := ru.s.Operation.RestoreFromFile; c != nil {
		confirm := c.Confirm
		if confirm == "" {
			confirm = ru.routes.ConfirmPhrase
		}
		rep := ru.cl.restoreFromFile(ctx, callToken, ru.backupFile, *c.WithReinit, confirm)
		ru.rec.phase("operation finished", time.Now())
		ru.res.Facts.OperationStatus = rep.Status
		if rep.Err != nil {
			err = fmt.Errorf("restore_from_file: %w", rep.Err)
		} else if rep.Status != 200 {
			ru.res.Facts.OperationBody = rep.field("detail")
		}
	} else {
		err = ru.manual(ctx)
		ru.rec.phase("operation finished", time.Now())
	}
	time.Sleep(lead)
	// One more sample from every probe, sent after the operation ended: a
	// failing stretch that this sample does not close is really still open.
	ru.sampleAll(ctx)
	stopProbes()
	wg.Wait()
	if ru.reinitSeen.Load() {
		// A running system may answer before the watcher heard the restore
		// commit: give it a moment.
		select {
		case <-watched:
		case <-time.After(restoreWatchGrace):
			ru.rec.phase("restore commit not observed by the watcher", time.Now())
		}
	}
	stopWatch()
	<-watched
	ru.windowWG.Wait()
	if ru.windowDone != nil {
		select {
		case e := <-ru.windowDone:
			if err == nil {
				err = e
			}
		default:
		}
	}
	ru.res.Timeline = ru.rec.timeline()
	if ru.actionErr != nil {
		return ru.actionErr
	}
	return err
}

func (ru *run) maxInterval() time.Duration {
	d := DefaultProbeInterval
	for _, p := range ru.s.Probes {
		d = max(d, p.Every.D())
	}
	return d
}

// manual is the seed's 3-step path: create_backup (done), system_reinit
// --confirm, restore_backup --from-file, each committed on its own.
func (ru *run) manual(ctx context.Context) error {
	m := ru.s.Operation.Manual
	defects, _ := server.ParseDefects(ru.s.Defects)
	ru.mu.Lock()
	_, err := reinit.Run(ctx, ru.conn, edms.ReinitConfig("", !defects.NoRevocation))
	ru.mu.Unlock()
	if err != nil {
		return fmt.Errorf("system_reinit: %w", err)
	}
	ru.rec.phase(restore.PhaseReinitCommitted, time.Now())
	if err := ru.inWindow(ctx); err != nil {
		return err
	}
	if m.Pause > 0 {
		time.Sleep(m.Pause.D())
	}
	ru.mu.Lock()
	defer ru.mu.Unlock()
	_, err = restore.Restore(ctx, ru.conn, restore.Options{
		Open:      func() (io.ReadCloser, error) { return os.Open(ru.backupFile) },
		Strategy:  restore.Strategy(m.Strategy),
		Protected: edms.Protected(),
		Defects:   defects.Engine(),
	})
	if err != nil {
		return fmt.Errorf("restore_backup: %w", err)
	}
	ru.rec.phase(restore.PhaseRestoreCommitted, time.Now())
	return nil
}

// inWindow runs after the reinit committed and before the restore: it
// measures the in-between state and runs the scenario's during: actions.
func (ru *run) inWindow(ctx context.Context) error {
	ru.mu.Lock()
	err := ru.conn.QueryRow(ctx, `SELECT COALESCE((SELECT id FROM `+ru.usersTable+` WHERE username = $1), 0), (SELECT count(*) FROM `+ru.usersTable+`)`, ru.adminUser).Scan(&ru.res.Facts.AdminIDAfterReinit, &ru.res.Facts.UsersInWindow)
	ru.mu.Unlock()
	if err != nil {
		return fmt.Errorf("look into the window: %w", err)
	}
	return ru.windowActions(ctx)
}

// restoreWatchGrace bounds the wait for the restore commit's notification
// after the operation answered.
const restoreWatchGrace = 5 * time.Second

// windowActions samples every probe once and runs the scenario's during:
// actions.
func (ru *run) windowActions(ctx context.Context) error {
	ru.sampleAll(ctx) // best effort: the probes may have stopped already
	if len(ru.s.During) > 0 {
		defer func() {
			if ctx.Err() != nil && ru.actionErr == nil {
				ru.actionErr = errors.New("the window's actions had not finished when the operation ended")
			}
		}()
	}
	for _, a := range ru.s.During {
		switch {
		case a.CreateUser != nil:
			if err := ru.createUser(ctx, a.CreateUser); err != nil {
				ru.actionErr = fmt.Errorf("%s: %w", a.Pos, err)
				return ru.actionErr
			}
		case a.Profile != nil:
			rep := ru.cl.profile(ctx, ru.tokens[a.Profile.Token])
			who := rep.field(ru.profileUserField)
			ru.rec.phase(fmt.Sprintf("profile %s: %d %s", a.Profile.Token, rep.Status, who), time.Now())
			owner := ru.s.Tokens[a.Profile.Token].User
			if rep.Status == 200 && who != owner {
				ru.res.Facts.PKReuse = append(ru.res.Facts.PKReuse, fmt.Sprintf("in the window, %s's old token %q authenticated as %s (id %s): its user_id now names another user", owner, a.Profile.Token, who, rep.field(ru.profileIDField)))
			}
		case a.Sleep > 0:
			time.Sleep(a.Sleep.D())
		}
	}
	return nil
}

func (ru *run) createUser(ctx context.Context, c *CreateUser) error {
	hash, err := edms.HashPassword(c.Password)
	if err != nil {
		return err
	}
	ru.mu.Lock()
	defer ru.mu.Unlock()
	if ru.watchDSN != "" {
		// A running system does not wait for the harness between its
		// phases: the restore may have committed already.
		var n int
		if err := ru.conn.QueryRow(ctx, `SELECT count(*) FROM `+ru.usersTable).Scan(&n); err != nil {
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
		ru.ownTxs.Store(txid, struct{}{}) // before the commit the watcher hears of
		return tx.QueryRow(ctx, `INSERT INTO `+ru.usersTable+` (password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
VALUES ($1, false, $2, '', '', $3, false, true, now()) RETURNING id`, hash, c.Username, c.Username+"@example.org").Scan(&id)
	})
	if err != nil {
		return fmt.Errorf("create user %s in the window: %w", c.Username, err)
	}
	ru.rec.phase(fmt.Sprintf("user %s created with id %d", c.Username, id), time.Now())
	ru.created = append(ru.created, createdUser{username: c.Username, id: id})
	for u, old := range ru.idsBefore {
		if old == id {
			ru.res.Facts.PKReuse = append(ru.res.Facts.PKReuse, fmt.Sprintf("new user %s got id %d, which belonged to %s before the reinit (the sequence was reset)", c.Username, id, u))
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
func (ru *run) probe(ctx context.Context, p *Probe, kick <-chan chan struct{}) {
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
		var rep reply
		if p.Login != nil {
			rep = ru.cl.login(ctx, p.Login.User, ru.password(p.Login.User, p.Login.Password))
		} else {
			rep = ru.cl.profile(ctx, ru.tokens[p.Profile.Token])
		}
		if ctx.Err() != nil {
			return
		}
		smp := Sample{Probe: p.Name, Status: rep.Status, OK: rep.Status == 200}
		switch {
		case rep.Err != nil:
			smp.Detail = rep.Err.Error()
		case p.Profile != nil && rep.Status == 200:
			smp.Detail = fmt.Sprintf("id=%s username=%s", rep.field(ru.profileIDField), rep.field(ru.profileUserField))
		case rep.Status != 200:
			smp.Detail = rep.field("detail")
		}
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

// recorder collects phases and samples on the monotonic clock; the timeline
// expresses them relative to the start of the operation.
type recorder struct {
	mu      sync.Mutex
	phases  []stamped[string]
	samples []stamped[Sample]
}

type stamped[T any] struct {
	v          T
	sent, done time.Time
}

func newRecorder() *recorder { return &recorder{} }

func (r *recorder) phase(name string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.phases = append(r.phases, stamped[string]{v: name, sent: at})
}

func (r *recorder) sample(s Sample, sent, done time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, stamped[Sample]{v: s, sent: sent, done: done})
}

func (r *recorder) timeline() Timeline {
	r.mu.Lock()
	defer r.mu.Unlock()
	var origin time.Time
	for _, p := range r.phases {
		if p.v == "operation started" {
			origin = p.sent
		}
	}
	ms := func(t time.Time) float64 { return float64(t.Sub(origin).Microseconds()) / 1000 }
	t := Timeline{Start: origin}
	for _, p := range r.phases {
		t.Phases = append(t.Phases, PhaseMark{Name: p.v, AtMS: ms(p.sent)})
		if p.v == "operation finished" {
			t.EndMS = ms(p.sent)
		}
	}
	for _, s := range r.samples {
		smp := s.v
		smp.AtMS = ms(s.sent)
		smp.TookMS = float64(s.done.Sub(s.sent).Microseconds()) / 1000
		t.Samples = append(t.Samples, smp)
	}
	sort.SliceStable(t.Phases, func(i, j int) bool { return t.Phases[i].AtMS < t.Phases[j].AtMS })
	sort.SliceStable(t.Samples, func(i, j int) bool { return t.Samples[i].AtMS < t.Samples[j].AtMS })
	return t
}

var errNoPhase = errors.New("no such phase")

func (t Timeline) phaseAt(name string) (float64, error) {
	for _, p := range t.Phases {
		if p.Name == name {
			return p.AtMS, nil
		}
	}
	return 0, errNoPhase
}
