package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/edms/server"
	"github.com/rehearse-dev/rehearse/fixtures"
	"github.com/rehearse-dev/rehearse/harness"
	pglocal "github.com/rehearse-dev/rehearse/pg/local"
	"github.com/rehearse-dev/rehearse/restore"
)

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("serve", stderr)
	addr := fs.String("addr", "127.0.0.1:8000", "loopback address to listen on (port 0 picks a free one)")
	dsnFlag := fs.String("dsn", "", "the system's database, initialised with 'rehearse init' (default: a throwaway one)")
	fixture := fs.String("fixture", "edms-small", "fixture for the throwaway database")
	strategy := fs.String("strategy", string(restore.TwoPhase), "engine strategy of restore_from_file: two-phase or atomic")
	keyFile := fs.String("signing-key-file", "", "file holding the HS256 key (default: the --routes file's signing key, else a random key per run)")
	adminPW := fs.String("admin-password", edms.DefaultAdminPassword, "admin's password after a reinit (default: the --routes file's admin.default_password, else test123)")
	routesFile := fs.String("routes", "", "YAML/JSON file overriding endpoint paths and field names")
	quiet := fs.Bool("quiet", false, "do not log requests")
	allow := fs.Bool("allow-unmarked", false, "serve (and so allow restore_from_file on) a database not marked as a rehearsal target")
	limits := limitFlags(fs)
	maxUpload := byteSize(server.DefaultMaxUploadBytes)
	fs.Var(&maxUpload, "max-upload-size", "largest restore_from_file request body, as a `size` such as 2GiB")
	auth := authFlags(fs)
	var defects stringList
	fs.Var(&defects, "defect", "start with a named defect (repeatable): "+strings.Join(server.DefectNames(), ", "))
	if code, ok := parseNoArgs(fs, args); !ok {
		return code
	}
	cfg := server.Config{DefaultAdminPassword: *adminPW, Limits: limits.Limits(), MaxUploadBytes: int64(maxUpload)}
	if err := limits.check(); err != nil {
		return fail(stderr, "serve", err)
	}
	if maxUpload <= 0 {
		return fail(stderr, "serve", fmt.Errorf("--max-upload-size must be more than 0 bytes"))
	}
	var err error
	if cfg.Strategy, err = restore.ParseStrategy(*strategy); err != nil {
		return fail(stderr, "serve", err)
	}
	if cfg.Defects, err = server.ParseDefects(defects); err != nil {
		return fail(stderr, "serve", err)
	}
	if cfg.Auth, err = auth(); err != nil {
		return fail(stderr, "serve", err)
	}
	if err := checkLoopbackAddr(*addr); err != nil {
		return fail(stderr, "serve", err)
	}
	routes, tf, err := loadRoutes(*routesFile)
	if err != nil {
		return fail(stderr, "serve", err)
	}
	cfg.Routes = routes
	if tf != nil && tf.Admin.DefaultPassword != "" && !isSet(fs, "admin-password") {
		cfg.DefaultAdminPassword = tf.Admin.DefaultPassword
	}
	if cfg.SigningKey, err = signingKey(*keyFile, tf, stderr); err != nil {
		return fail(stderr, "serve", err)
	}
	if !*quiet {
		cfg.Logf = func(format string, args ...any) {
			fmt.Fprintf(stderr, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
		}
	}
	dsn, closeDB, err := serveDatabase(ctx, *dsnFlag, *fixture, stdout)
	if err != nil {
		return fail(stderr, "serve", err)
	}
	defer closeDB()
	if err := serve(ctx, dsn, *addr, *allow, cfg, stdout); err != nil {
		return fail(stderr, "serve", err)
	}
	fmt.Fprintln(stdout, "stopped")
	return exitOK
}

// authFlags are the auth: block of an embedded scenario as flags; the
// returned func checks them and gives the server's AuthMode.
func authFlags(fs *flag.FlagSet) func() (server.AuthMode, error) {
	sessions := fs.String("sessions", "keep", "what the reinit does with django_session: keep (the rows stay) or flush (it deletes them all)")
	tokens := fs.Bool("drf-tokens-in-backup", true, "whether the system's backup holds authtoken.token (false: the restore does not bring DRF tokens back; serve prints the target file's backup: for it)")
	jwt := fs.String("jwt", "stateful", "how profile authenticates access tokens: stateful (the user is looked up) or stateless (no database lookup)")
	return func() (server.AuthMode, error) {
		if *sessions != "keep" && *sessions != "flush" {
			return server.AuthMode{}, fmt.Errorf("--sessions %q: use keep or flush", *sessions)
		}
		if *jwt != "stateful" && *jwt != "stateless" {
			return server.AuthMode{}, fmt.Errorf("--jwt %q: use stateful or stateless", *jwt)
		}
		a := &harness.EmbeddedAuth{Sessions: *sessions, DRFTokensInBackup: tokens, JWT: *jwt}
		return a.Mode(), nil
	}
}

// checkLoopbackAddr refuses an --addr that is not host:port on loopback.
func checkLoopbackAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %v", addr, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("--addr %q: the port must be a number from 0 to 65535 (0 picks a free one)", addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--addr %q is not a loopback address; rehearse serves on 127.0.0.1 or ::1 only", addr)
	}
	return nil
}

// signingKey is the key in keyFile, else the target file's (so that minted
// tokens work), else a random one.
func signingKey(keyFile string, tf *harness.TargetFile, stderr io.Writer) ([]byte, error) {
	if keyFile != "" {
		key, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, err
		}
		return []byte(strings.TrimSpace(string(key))), nil
	}
	if tf != nil {
		if k, err := tf.SigningKey(); err != nil {
			fmt.Fprintf(stderr, "note: %v; signing tokens with a random key\n", err)
		} else if k != nil {
			return k, nil
		}
	}
	key := make([]byte, 32)
	rand.Read(key)
	return key, nil
}

// serveDatabase returns the system's database: --dsn (or REHEARSE_DSN), else
// a throwaway cluster seeded with fixture, removed by closeDB.
func serveDatabase(ctx context.Context, dsnFlag, fixture string, stdout io.Writer) (dsn string, closeDB func(), err error) {
	if dsn := cmp.Or(dsnFlag, os.Getenv("REHEARSE_DSN")); dsn != "" {
		return dsn, func() {}, nil
	}
	f, err := fixtures.Get(fixture)
	if err != nil {
		return "", nil, err
	}
	fmt.Fprintln(stdout, "starting a throwaway PostgreSQL...")
	cl, err := pglocal.Start(ctx, pglocal.Options{})
	if err != nil {
		return "", nil, err
	}
	if err := initDatabase(ctx, cl.DSN("postgres"), cl.DSN("edms"), f); err != nil {
		cl.Close()
		return "", nil, err
	}
	fmt.Fprintf(stdout, "database: %s (seeded with %s; removed on exit)\n", cl.TCPDSN("edms"), f.Name)
	printUsers(stdout, f)
	return cl.DSN("edms"), func() { cl.Close() }, nil
}

// serve checks that the database may be restored into, then serves the API
// on addr until ctx is done.
func serve(ctx context.Context, dsn, addr string, allowUnmarked bool, cfg server.Config, stdout io.Writer) error {
	conn, err := connect(ctx, dsn)
	if err != nil {
		return err
	}
	err = checkTarget(ctx, conn, "serve restore_from_file on", allowUnmarked)
	if err == nil {
		// Session and DRF token logins need their tables, in every mode.
		err = server.InstallAuthTables(ctx, conn)
	}
	conn.Close(context.Background())
	if err != nil {
		return err
	}
	pool, err := server.NewPool(ctx, dsn, 16)
	if err != nil {
		return err
	}
	defer pool.Close()
	cfg.Pool = pool
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	r := srv.Routes()
	fmt.Fprintf(stdout, "serving http://%s (strategy %s%s); Ctrl-C stops\n", ln.Addr(), srv.Strategy(), defectNote(cfg.Defects))
	fmt.Fprintf(stdout, "  login    POST %s\n  profile  GET  %s\n  restore  POST %s\n", r.Login, r.Profile, r.Restore)
	fmt.Fprintf(stdout, "  session  POST %s (cookie %s)\n  token    POST %s\n", r.SessionLogin, r.SessionCookie, r.TokenLogin)
	printAuthMode(stdout, cfg.Auth)
	return srv.Serve(ctx, ln)
}

// printAuthMode says how the credentials behave and, since the backup is
// taken by whoever restores (rehearse with --dsn, or rehearse backup), the
// target file's backup: that makes it this system's.
func printAuthMode(w io.Writer, m server.AuthMode) {
	sessions, jwt := "kept", "stateful"
	if m.FlushSessions {
		sessions = "flushed"
	}
	if m.Stateless {
		jwt = "stateless"
	}
	fmt.Fprintf(w, "auth: sessions %s by the reinit, access tokens %s\n", sessions, jwt)
	var models []string
	for table, label := range m.BackupModels() {
		models = append(models, table+": "+label)
	}
	slices.Sort(models)
	fmt.Fprintf(w, "  this system's backup (target file): backup: {models: {%s}, exclude: [%s]}\n", strings.Join(models, ", "), strings.Join(m.BackupExclude(), ", "))
}

func defectNote(d server.Defects) string {
	if !d.Any() {
		return ""
	}
	return ", DEFECTS: " + strings.Join(d.Names(), ", ")
}

// initDatabase creates dbname, installs the schema and seeds the fixture.
func initDatabase(ctx context.Context, adminDSN, dsn string, f *fixtures.Fixture) error {
	admin, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return err
	}
	cfg, _ := pgx.ParseConfig(dsn)
	_, err = admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{cfg.Database}.Sanitize())
	admin.Close(context.Background())
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if err := edms.Install(ctx, conn); err != nil {
		return err
	}
	_, err = edms.Seed(ctx, conn, f)
	return err
}

func printUsers(w io.Writer, f *fixtures.Fixture) {
	var names []string
	for i, u := range f.Users {
		if i == 7 {
			names = append(names, fmt.Sprintf("... %d more", len(f.Users)-7))
			break
		}
		names = append(names, u.Username)
	}
	fmt.Fprintf(w, "users: %s (passwords: see fixtures/README.md)\n", strings.Join(names, ", "))
}

// loadRoutes reads endpoint paths and field names from a target file.
func loadRoutes(path string) (server.Routes, *harness.TargetFile, error) {
	if path == "" {
		return server.DefaultRoutes(), nil, nil
	}
	t, err := harness.LoadTargetFile(path)
	if err != nil {
		return server.Routes{}, nil, err
	}
	return t.Routes(), t, nil
}
