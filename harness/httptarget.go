package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/edms/token"
	"github.com/rehearse-dev/rehearse/internal/loopback"
	"github.com/rehearse-dev/rehearse/pg/guard"
	"github.com/rehearse-dev/rehearse/pg/provider"
	"github.com/rehearse-dev/rehearse/restore"
	"github.com/rehearse-dev/rehearse/results"
)

// Targets a scenario can rehearse.
const (
	TargetEmbedded = "embedded"
	TargetHTTP     = "http"
)

// watchInterval is how often the watcher of an http target's database looks
// at the users table to see the reinit and the restore commit. It bounds how
// late those phases are stamped.
const watchInterval = 2 * time.Millisecond

// connectHTTP prepares a run against a running system: its client, its
// database when a DSN is known (checked for the rehearsal marker), the
// fixture seeded into it when the scenario asks.
func (ru *run) connectHTTP(ctx context.Context, allowUnmarked bool) (func(), error) {
	sys := ru.plan.System
	if sys.BaseURL == "" {
		return nil, fmt.Errorf("%s: target http has no base URL: set base_url in the target file or pass --target URL", ru.plan.File)
	}
	if err := CheckLoopback(sys.BaseURL); err != nil {
		return nil, err
	}
	ru.cl = newClient(strings.TrimRight(sys.BaseURL, "/"), sys.Routes)
	if sys.dsn == "" {
		if p, what := ru.plan.needsDatabase(); what != "" {
			return nil, fmt.Errorf("%s: %s needs the target's database: give dsn in the target file or pass --dsn%s", p, what, uploadHint(what))
		}
		return func() {}, nil
	}
	if err := loopback.DSN(sys.dsn); err != nil {
		return nil, err
	}
	conn, err := connectDB(ctx, sys.dsn)
	if err != nil {
		return nil, fmt.Errorf("connect to the target's database: %v", provider.Redact(err.Error(), sys.dsn))
	}
	ru.conn = conn
	ru.win.dsn = sys.dsn
	stop := func() { conn.Close(context.Background()) }
	// The operation wipes this database (through the target): refuse one that
	// is not a rehearsal target, as reinit and restore do.
	if !allowUnmarked {
		if err := guard.Check(ctx, conn, "rehearse a restore with reinit on"); err != nil {
			stop()
			return nil, err
		}
	}
	if ru.plan.Seed == "restore" {
		if err := ru.seedTarget(ctx); err != nil {
			stop()
			return nil, err
		}
	}
	return stop, nil
}

// seedTarget loads the fixture into the target's database, replacing what
// is there, in one transaction.
func (ru *run) seedTarget(ctx context.Context) error {
	cfg := edms.ReinitConfig(ru.plan.System.adminDefault, true)
	cfg.UserTable = ru.plan.System.UsersTable
	if _, err := restore.Restore(ctx, ru.conn, edms.RestoreOptions(ru.plan.fx.Open, restore.Atomic, &cfg)); err != nil {
		return fmt.Errorf("seed the target's database with %s: %w", ru.plan.fx.Name, err)
	}
	return nil
}

// watch stamps the phases a running system does not report: the reinit
// committed and the restore committed. A statement trigger on the users
// table (ENABLE ALWAYS, so a restore running as a replica still fires it)
// sends a notification that PostgreSQL delivers when, and only when, the
// transaction commits; its payload carries the transaction id and the
// users seen at that point. A reinit and a restore in one transaction (the
// atomic strategy) arrive together with one id: no window. When the trigger
// cannot be installed the watcher polls the table instead, which can miss a
// window shorter than its interval. Window actions start when the reinit is
// seen.
func (ru *run) watch(ctx context.Context, before int, errs chan<- error) {
	defer func() {
		select {
		case <-ru.win.ready:
		default:
			close(ru.win.ready)
		}
	}()
	cfg, err := pgx.ParseConfig(ru.win.dsn)
	if err != nil {
		errs <- fmt.Errorf("watch the target's database: %v", provider.Redact(err.Error(), ru.win.dsn))
		return
	}
	var mu sync.Mutex
	var pending []watchEvent
	cfg.OnNotification = func(_ *pgconn.PgConn, n *pgconn.Notification) {
		ev := watchEvent{received: time.Now()}
		if n.Channel == watchChannel && json.Unmarshal([]byte(n.Payload), &ev) == nil {
			mu.Lock()
			pending = append(pending, ev)
			mu.Unlock()
		}
	}
	conn, err := connectDBConfig(ctx, cfg)
	if err != nil {
		errs <- fmt.Errorf("watch the target's database: %v", provider.Redact(err.Error(), ru.win.dsn))
		return
	}
	defer conn.Close(context.Background())
	sys := ru.plan.System
	if err := installWatchTrigger(ctx, conn, sys); err != nil {
		ru.win.polling.Store(true)
		ru.rec.phase(results.PhaseWatcher, "watching by polling (no trigger: "+err.Error()+")", time.Now())
		close(ru.win.ready)
		ru.poll(ctx, conn, before, errs)
		return
	}
	defer removeWatchTrigger(conn, sys.usersTable())
	close(ru.win.ready)
	var reinitTx int64
	stopped := func(err error) {
		if ctx.Err() == nil {
			ru.rec.phase(results.PhaseWatcher, "stopped: "+err.Error(), time.Now())
		}
	}
	for {
		if err := conn.PgConn().WaitForNotification(ctx); err != nil {
			stopped(err)
			return
		}
		// A commit queues all of its transaction's notifications at once: a
		// round trip makes sure every one of them has been read, so that a
		// transaction is judged on all of its statements. Each keeps the
		// time it arrived.
		if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
			stopped(err)
			return
		}
		mu.Lock()
		batch := pending
		pending = nil
		mu.Unlock()
		for _, tx := range byTransaction(batch) {
			first, last := tx[0], tx[len(tx)-1]
			switch {
			case reinitTx == 0 && last.Users < before:
				reinitTx = last.TxID
				ru.win.opTxs = append(ru.win.opTxs, reinitTx)
				ru.win.reinitSeen.Store(true)
				ru.rec.phase(results.PhaseReinitCommitted, "", tx[0].received)
				ru.res.Facts.UsersInWindow, ru.res.Facts.AdminIDAfterReinit = &last.Users, last.AdminID
				ru.tokenUsersInRunningWindow(ctx)
				ru.startWindowActions(ctx, errs)
			case reinitTx == 0 && first.Users < before:
				// Users went and came back in one transaction: reinit and
				// restore committed together, nobody saw a window.
				ru.win.opTxs = append(ru.win.opTxs, tx[0].TxID)
				ru.rec.phase(results.PhaseCommittedTogether, "", tx[0].received)
				return
			case reinitTx != 0 && tx[0].TxID != reinitTx && insertsUsers(tx) && !ru.harnessTx(tx[0].TxID):
				// The first transaction after the reinit that brings users
				// back (not the harness's own create_user) is the restore,
				// whether or not it restores as many users as there were.
				ru.win.opTxs = append(ru.win.opTxs, tx[0].TxID)
				ru.rec.phase(results.PhaseRestoreCommitted, "", tx[0].received)
				return
			}
		}
	}
}

// tokenUsersInRunningWindow looks, as soon as the reinit is heard, whether
// the tokens' users exist. A running system does not wait: the answer
// counts only if the restore had not brought users back by then.
func (ru *run) tokenUsersInRunningWindow(ctx context.Context) {
	if err := ru.tokenUsersInWindow(ctx); err != nil {
		return
	}
	var n int
	ru.mu.Lock()
	err := ru.conn.QueryRow(ctx, `SELECT count(*) FROM `+ru.plan.System.usersTable()).Scan(&n)
	ru.mu.Unlock()
	if err != nil || n >= ru.res.Facts.UsersBefore {
		for i := range ru.res.Tokens {
			ru.res.Tokens[i].UserInWindow = "" // too late to tell
		}
	}
}

func insertsUsers(tx []watchEvent) bool {
	for _, ev := range tx {
		if ev.Op == "INSERT" {
			return true
		}
	}
	return false
}

// harnessTx reports whether txid is one of the harness's own window actions.
func (ru *run) harnessTx(txid int64) bool {
	_, ok := ru.win.ownTxs.Load(txid)
	return ok
}

// watchEvent is the payload of the watch trigger.
type watchEvent struct {
	Op      string `json:"op"`
	TxID    int64  `json:"txid"`
	Users   int    `json:"users"`
	AdminID int64  `json:"admin_id"`
	// received stamps the commit: PostgreSQL signals listeners after the
	// transaction became visible, so no probe sent later sees the state before.
	received time.Time
}

// byTransaction groups events by transaction, in the order they arrived.
func byTransaction(evs []watchEvent) [][]watchEvent {
	var out [][]watchEvent
	for _, ev := range evs {
		if n := len(out); n > 0 && out[n-1][0].TxID == ev.TxID {
			out[n-1] = append(out[n-1], ev)
			continue
		}
		out = append(out, []watchEvent{ev})
	}
	return out
}

func (ru *run) startWindowActions(ctx context.Context, errs chan<- error) {
	ru.win.actions.Add(1)
	go func() {
		defer ru.win.actions.Done()
		if err := ru.windowActions(ctx); err != nil {
			select {
			case errs <- err:
			default:
			}
		}
	}()
}

const (
	watchFunction = "rehearse_watch_notify"
	watchChannel  = "rehearse_watch"
)

func installWatchTrigger(ctx context.Context, conn *pgx.Conn, sys System) error {
	usersTable := sys.usersTable()
	if _, err := conn.Exec(ctx, "LISTEN "+watchChannel); err != nil {
		return err
	}
	fn := `CREATE OR REPLACE FUNCTION ` + watchFunction + `() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  -- clock_timestamp() keeps payloads distinct: NOTIFY drops duplicates
  -- within a transaction, and every statement's state counts.
  PERFORM pg_notify('` + watchChannel + `', json_build_object(
    'op', TG_OP, 'txid', txid_current(), 'at', clock_timestamp(),
    'users', (SELECT count(*) FROM ` + usersTable + `),
    'admin_id', COALESCE((SELECT id FROM ` + usersTable + ` WHERE ` + sys.loginColumn() + ` = ` + quoteLiteral(sys.Admin) + `), 0))::text);
  RETURN NULL;
END $f$`
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	for _, q := range []string{
		fn,
		"DROP TRIGGER IF EXISTS rehearse_watch ON " + usersTable,
		"CREATE TRIGGER rehearse_watch AFTER INSERT OR DELETE OR TRUNCATE ON " + usersTable + " FOR EACH STATEMENT EXECUTE FUNCTION " + watchFunction + "()",
		"ALTER TABLE " + usersTable + " ENABLE ALWAYS TRIGGER rehearse_watch",
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

func removeWatchTrigger(conn *pgx.Conn, usersTable string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn.Exec(ctx, "DROP TRIGGER IF EXISTS rehearse_watch ON "+usersTable)
	conn.Exec(ctx, "DROP FUNCTION IF EXISTS "+watchFunction+"()")
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// poll is the watcher without a trigger: it looks at the users table every
// watchInterval.
func (ru *run) poll(ctx context.Context, conn *pgx.Conn, before int, errs chan<- error) {
	sys := ru.plan.System
	q := "SELECT count(*), COALESCE(max(id) FILTER (WHERE " + sys.loginColumn() + " = $1), 0) FROM " + sys.usersTable()
	reinitSeen := false
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	for {
		var n int
		var adminID int64
		if err := conn.QueryRow(ctx, q, sys.Admin).Scan(&n, &adminID); err != nil {
			if ctx.Err() == nil {
				ru.rec.phase(results.PhaseWatcher, "stopped: "+err.Error(), time.Now())
			}
			return
		}
		now := time.Now()
		switch {
		case !reinitSeen && n < before:
			reinitSeen = true
			ru.win.reinitSeen.Store(true)
			ru.rec.phase(results.PhaseReinitCommitted, "", now)
			users := n
			ru.res.Facts.UsersInWindow, ru.res.Facts.AdminIDAfterReinit = &users, adminID
			ru.startWindowActions(ctx, errs)
		case reinitSeen && n >= before:
			ru.rec.phase(results.PhaseRestoreCommitted, "", now)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// mint issues an access token for a user as the target would, with its key.
func (ru *run) mint(spec PlannedToken) (string, error) {
	if ru.key == nil && ru.plan.System.target != nil {
		key, err := ru.plan.System.target.SigningKey()
		if err != nil {
			return "", fmt.Errorf("%s: mint: %w", spec.Pos, err)
		}
		ru.key = key
	}
	if len(ru.key) == 0 {
		return "", fmt.Errorf("%s: mint: true needs the target's signing key: set signing_key_env or signing_key_file in the target", spec.Pos)
	}
	id := ru.before.ids[spec.User]
	if id == 0 {
		a, _ := ru.plan.account(spec.User)
		id = a.ID
	}
	tok, _, err := token.Issuer{Key: ru.key}.Issue("access", id, time.Now())
	if err != nil {
		return "", fmt.Errorf("%s: mint a token for %s: %w", spec.Pos, spec.User, err)
	}
	return tok, nil
}

// SigningKey reads the key (nil when none is named) from the environment variable or file named.
func (t *TargetFile) SigningKey() ([]byte, error) {
	switch {
	case t.SigningKeyEnv != "":
		v := os.Getenv(t.SigningKeyEnv)
		if v == "" {
			return nil, fmt.Errorf("%s: signing_key_env names %s, which is not set", t.Pos, t.SigningKeyEnv)
		}
		return []byte(v), nil
	case t.SigningKeyFile != "":
		b, err := t.signingKeyFile()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", keyPos(t.Keys, "signing_key_file", t.Pos), err)
		}
		return b, nil
	}
	return nil, nil
}

func uploadHint(what string) string {
	if strings.HasPrefix(what, "restore_from_file") {
		return ", or give the backup to upload (backup_file:, or rehearse rehearse --backup FILE)"
	}
	return ""
}
