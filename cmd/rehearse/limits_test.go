package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rehearse-dev/rehearse/internal/pgtest"
)

// paddedFixture is edms-small as a dumpdata list whose object #index holds
// pad bytes of white space after its opening brace.
func paddedFixture(t *testing.T, index, pad int) []byte {
	t.Helper()
	raw, err := os.ReadFile("../../fixtures/edms-small.json")
	if err != nil {
		t.Fatal(err)
	}
	var objs []json.RawMessage
	if err := json.Unmarshal(raw, &objs); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i, o := range objs {
		if i > 0 {
			b.WriteByte(',')
		}
		if i == index {
			b.WriteByte('{')
			b.Write(bytes.Repeat([]byte{' '}, pad))
			o = o[1:]
		}
		b.Write(o)
	}
	b.WriteByte(']')
	return b.Bytes()
}

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func countUsers(t *testing.T, dsn string) int {
	t.Helper()
	var n int
	if err := pgtest.Connect(t, dsn).QueryRow(context.Background(), `SELECT count(*) FROM users_user`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The scanner's limits on the command line: a backup beyond one is refused
// with the object (or the stream) named, before the reinit touches anything;
// the same backup passes with the limit raised.
func TestRestoreLimitFlags(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fat := write("fat.json", paddedFixture(t, 5, 3000))
	// 80 MiB of white space between the objects: past ExpansionGrace, and
	// gzip shrinks it some 1000 fold.
	plain := paddedFixture(t, 0, 0)
	bomb := write("bomb.json.gz", gzipped(t, append(append([]byte{'['}, bytes.Repeat([]byte{' '}, 80<<20)...), plain[1:]...)))
	small := write("small.json.gz", gzipped(t, plain))
	cases := []struct {
		name, file string
		refused    []string // flags that make the restore refuse it
		want       string   // in the refusal
		passes     []string // flags that let it through
	}{
		{"object size", fat, []string{"--max-object-size", "2KiB"}, "backup refused: object #5: the object is larger than 2.0 KiB", []string{"--max-object-size", "4KB"}},
		{"expansion", bomb, []string{"--max-expansion", "100"}, "expands more than 100 fold", []string{"--max-expansion", "0"}},
		{"decompressed size", small, []string{"--max-decompressed-size", "4KiB"}, "decompresses to more than 4.0 KiB, the limit", []string{"--max-decompressed-size", "1MiB"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dsn := pgtest.SeededDB(t)
			conn := pgtest.Connect(t, dsn)
			if _, err := conn.Exec(context.Background(), `INSERT INTO users_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
VALUES ('!', false, 'not_in_backup', '', '', '', false, true, now())`); err != nil {
				t.Fatal(err)
			}
			args := []string{"restore", "--dsn", dsn, "--from-file", c.file, "--with-reinit", "--strategy", "two-phase"}
			code, out, errs := rehearse(t, append(args, c.refused...)...)
			if code != exitError || !strings.Contains(errs, c.want) {
				t.Fatalf("%v: exit %d, want 2 and %q\n%s\n%s", c.refused, code, c.want, out, errs)
			}
			if strings.Contains(out, "reinit committed") {
				t.Errorf("the reinit ran before the refusal:\n%s", out)
			}
			if n := countUsers(t, dsn); n != 8 {
				t.Errorf("users after the refused restore: %d, want the 8 before it", n)
			}
			code, out, errs = rehearse(t, append(args, c.passes...)...)
			if code != exitOK || !strings.Contains(out, "restored 40 objects") {
				t.Fatalf("%v: exit %d\n%s\n%s", c.passes, code, out, errs)
			}
			if n := countUsers(t, dsn); n != 7 {
				t.Errorf("users after the restore: %d, want 7", n)
			}
		})
	}
}

// Bad limit values are refused before anything is opened, saying what to give.
func TestRestoreLimitFlagsBadValues(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-object-size", "12 parsecs"}, `invalid value "12 parsecs" for flag -max-object-size: "12 parsecs" is not a size: give a number of bytes with or without a unit, e.g. 64MiB`},
		{[]string{"--max-object-size", "-5MiB"}, `is not a size`},
		{[]string{"--max-object-size", "0"}, "--max-object-size must be more than 0 bytes (the default is 64 MiB)"},
		{[]string{"--max-decompressed-size", "lots"}, `invalid value "lots" for flag -max-decompressed-size`},
		{[]string{"--max-expansion", "-3"}, "--max-expansion -3 is negative: give a ratio such as 500, or 0 for no limit"},
		{[]string{"--max-expansion", "ten"}, `invalid value "ten" for flag -max-expansion`},
	} {
		for _, cmd := range []string{"restore", "serve"} {
			args := append([]string{cmd, "--dsn", "host=/nonexistent dbname=x", "--from-file", "../../fixtures/edms-small.json"}, c.args...)
			if cmd == "serve" {
				args = append([]string{cmd, "--dsn", "host=/nonexistent dbname=x"}, c.args...)
			}
			code, _, errs := rehearse(t, args...)
			if code != exitError || !strings.Contains(errs, c.want) {
				t.Errorf("%s %v: exit %d, want 2 and %q:\n%s", cmd, c.args, code, c.want, errs)
			}
		}
	}
	if code, _, errs := rehearse(t, "serve", "--dsn", "host=/nonexistent dbname=x", "--max-upload-size", "0"); code != exitError || !strings.Contains(errs, "--max-upload-size must be more than 0 bytes") {
		t.Errorf("serve --max-upload-size 0: exit %d %s", code, errs)
	}
}
