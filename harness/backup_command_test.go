package harness

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The target file's backup command is the app's own: it runs in the target
// file's folder with {file} quoted, and a command that fails or writes
// nothing is an error that names it.
func TestRunBackupCommand(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(t.TempDir(), "it's a backup.json")
	ctx := context.Background()
	spec := BackupSpec{Pos: Pos{File: "t.yaml", Line: 3, Col: 3}, Command: `printf '[]' > {file} && test -f marker`}
	if err := runBackupCommand(ctx, spec, dir, file); err == nil || !strings.Contains(err.Error(), "t.yaml:3:3: backup.command") {
		t.Fatalf("a failing command: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "marker"), nil, 0o644)
	if err := runBackupCommand(ctx, spec, dir, file); err != nil {
		t.Fatalf("in the target file's folder: %v", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "[]" {
		t.Fatalf("wrote %q", b)
	}
	empty := filepath.Join(t.TempDir(), "empty.json")
	os.WriteFile(empty, nil, 0o644)
	if err := runBackupCommand(ctx, BackupSpec{Command: "true"}, dir, empty); err == nil || !strings.Contains(err.Error(), "wrote nothing") {
		t.Fatalf("a command that writes nothing: %v", err)
	}
}

// A scenario cannot make rehearse run a program: backup.command is taken
// only from a target file given on the command line.
func TestBackupCommandOnlyFromTheCommandLine(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target.yaml")
	os.WriteFile(target, []byte("backup:\n  command: touch {file}\n"), 0o644)
	scenario := filepath.Join(dir, "s.yaml")
	os.WriteFile(scenario, []byte("target: http\ntarget_file: target.yaml\noperation: {restore_from_file: {}}\nexpect:\n  - server_errors: {}\n"), 0o644)
	if _, err := LoadFile(scenario); err == nil || !strings.Contains(err.Error(), "target.yaml:2:3: backup.command runs a program") {
		t.Fatalf("a scenario's target file with a command: %v", err)
	}
	if tf, err := LoadTargetFile(target); err != nil || tf.Backup.Command == "" {
		t.Fatalf("the same file on the command line: %v", err)
	}
}
