package main

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/restore"
)

func init() {
	register("backup", "write the database's application tables as a Django dumpdata backup", cmdBackup)
}

func cmdBackup(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("backup", `backup --dsn DSN --output FILE.json[.gz]

Writes every application table in Django dumpdata format (model label, pk,
fields; foreign keys as the target pk; many-to-many as lists), ordered by model
and pk so the same data always gives the same file. Gzipped when FILE ends in
.gz. Token bookkeeping is never backed up.`, stderr)
	dsnFlag := fs.String("dsn", "", "database to back up (or REHEARSE_DSN)")
	output := fs.String("output", "", "file to write (.json or .json.gz)")
	if pos, code, ok := parse(fs, args); !ok {
		return code
	} else if !noArgs(fs, pos) {
		return exitError
	}
	if *output == "" {
		return fail(stderr, "backup", fmt.Errorf("no output file: pass --output backup.json.gz"))
	}
	conn, err := openDB(ctx, *dsnFlag)
	if err != nil {
		return fail(stderr, "backup", err)
	}
	defer conn.Close(context.Background())
	// Write beside the target and rename, so a failed backup never leaves a
	// truncated file under the name a restore would use.
	tmp, err := os.CreateTemp(filepath.Dir(*output), ".rehearse-backup-*")
	if err != nil {
		return fail(stderr, "backup", err)
	}
	defer os.Remove(tmp.Name())
	var w io.Writer = tmp
	var gz *gzip.Writer
	if strings.HasSuffix(*output, ".gz") {
		gz = gzip.NewWriter(tmp)
		w = gz
	}
	stats, err := restore.Backup(ctx, conn, w, restore.BackupOptions{Exclude: edms.Protected()})
	if err == nil && gz != nil {
		err = gz.Close()
	}
	if err == nil {
		err = tmp.Close()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), *output)
	}
	if err != nil {
		tmp.Close()
		return fail(stderr, "backup", err)
	}
	fmt.Fprintf(stdout, "wrote %s: %d objects\n", *output, stats.Objects)
	printRows(stdout, toRows(stats.Models))
	return exitOK
}

func toRows(m map[string]int) map[string]int64 {
	out := map[string]int64{}
	for k, v := range m {
		out[k] = int64(v)
	}
	return out
}
