package reports

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rehearse-dev/rehearse/results"
)

// Options change how reports are rendered.
type Options struct {
	// Normalize replaces every measured time, timestamp and sample count that
	// varies from run to run with a placeholder (‹ms›, ‹n›, ...), keeping the
	// deterministic parts: statuses, verdicts, held/refuted. For golden files.
	Normalize bool
}

type renderer func(w io.Writer, rf *results.RunFile, f fmtr) error

var renderers = map[string]renderer{
	"md":    writeMarkdown,
	"json":  writeJSON,
	"junit": writeJUnit,
	"html":  writeHTML,
}

// FormatNames lists the formats Write accepts.
func FormatNames() []string { return []string{"md", "json", "junit", "html"} }

// Write renders rf in format (one of FormatNames) to w.
func Write(w io.Writer, format string, rf *results.RunFile, opts Options) error {
	render, ok := renderers[format]
	if !ok {
		return fmt.Errorf("unknown report format %q: use %s", format, strings.Join(FormatNames(), ", "))
	}
	if rf == nil {
		return fmt.Errorf("no results to report")
	}
	return render(w, redactRun(rf), fmtr{normalize: opts.Normalize})
}

// WriteResults writes rf as a results file at path (rehearse run --out,
// results.json): in the current version, with its secrets replaced by
// fingerprints like in every report, and atomically. Every results file is
// written here, so a results file and the reports made from it never differ
// in what they reveal.
func WriteResults(path string, rf *results.RunFile) error {
	var buf bytes.Buffer
	if err := Write(&buf, "json", rf, Options{}); err != nil {
		return err
	}
	return WriteFileAtomic(path, buf.Bytes())
}

// reportFiles names the files WriteAll writes, in the order it returns them.
var reportFiles = []struct{ name, format string }{
	{"report.md", "md"},
	{"report.html", "html"},
	{"junit.xml", "junit"},
	{"results.json", "json"},
}

// WriteAll writes every format into dir (created if needed) and returns the
// paths written. Each file is rendered in memory first, so a failed render
// leaves no half-written report behind.
func WriteAll(dir string, rf *results.RunFile, opts Options) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	for _, rep := range reportFiles {
		var buf bytes.Buffer
		if err := Write(&buf, rep.format, rf, opts); err != nil {
			return paths, fmt.Errorf("%s: %w", rep.name, err)
		}
		path := filepath.Join(dir, rep.name)
		if err := WriteFileAtomic(path, buf.Bytes()); err != nil {
			return paths, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// WriteFileAtomic writes data to a temporary file beside path and renames it
// over path: a reader (a CI job, a browser) sees the old file or the new one,
// never a torn one.
func WriteFileAtomic(path string, data []byte) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return err
	}
	clean := func(err error) error {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return clean(err)
	}
	if err := tmp.Sync(); err != nil {
		return clean(err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return clean(err)
	}
	if err := tmp.Close(); err != nil {
		return clean(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
