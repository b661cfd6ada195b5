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

func cmdBackup(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("backup", stderr)
	dsnFlag := addDSNFlag(fs, "to back up")
	output := fs.String("output", "", "file to write (.json or .json.gz)")
	var models, include, exclude stringList
	fs.Var(&models, "model", "TABLE=APP.MODEL: the label of a table with a custom db_table (repeatable)")
	fs.Var(&include, "include", "write only these models: APP or APP.MODEL, as dumpdata takes them (repeatable)")
	fs.Var(&exclude, "exclude", "leave these models out: APP or APP.MODEL (repeatable)")
	if code, ok := parseNoArgs(fs, args); !ok {
		return code
	}
	if *output == "" {
		return fail(stderr, "backup", fmt.Errorf("no output file: pass --output backup.json.gz"))
	}
	opts := restore.BackupOptions{Exclude: edms.Protected(), IncludeModels: include, ExcludeModels: exclude, Models: map[string]string{}}
	for _, m := range models {
		table, label, ok := strings.Cut(m, "=")
		if !ok || table == "" || label == "" {
			return fail(stderr, "backup", fmt.Errorf("--model %q: write TABLE=APP.MODEL (legacy_people=people.person)", m))
		}
		opts.Models[strings.TrimSpace(table)] = strings.TrimSpace(label)
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
	stats, err := restore.Backup(ctx, conn, w, opts)
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
	fmt.Fprintf(stdout, "wrote %s: %d objects (model labels from %s)\n", *output, stats.Objects, stats.Labels)
	printRows(stdout, toRows(stats.Models))
	printSkipped(stdout, stats.Skipped)
	return exitOK
}

// printSkipped tells what the backup left out and why, one line each.
func printSkipped(w io.Writer, skipped []restore.Skipped) {
	if len(skipped) == 0 {
		return
	}
	fmt.Fprintf(w, "left out:\n")
	for _, s := range skipped {
		name := s.Table
		switch {
		case name == "":
			name = s.Model
		case s.Model != "":
			name += " (" + s.Model + ")"
		}
		fmt.Fprintf(w, "  %s: %s\n", name, s.Detail)
	}
}

func toRows(m map[string]int) map[string]int64 {
	out := map[string]int64{}
	for k, v := range m {
		out[k] = int64(v)
	}
	return out
}
