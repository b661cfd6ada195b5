package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rehearse-dev/rehearse/reports"
)

func cmdReport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("report", stderr)
	format := fs.String("format", "", "md, json, junit or html")
	out := fs.String("out", "", "write to this file instead of standard output")
	normalize := fs.Bool("normalize", false, "replace timings and timestamps with placeholders (for golden files)")
	positional, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if len(positional) != 1 {
		fmt.Fprintln(stderr, "rehearse report: give exactly one results file (from rehearse run --out FILE)")
		fs.Usage()
		return exitError
	}
	f := *format
	if f == "" {
		f = formatFromExt(*out)
	}
	if !slices.Contains(reports.FormatNames(), f) {
		return fail(stderr, "report", fmt.Errorf("unknown format %q: use %s", f, strings.Join(reports.FormatNames(), ", ")))
	}
	var in io.Reader = os.Stdin
	source := "standard input"
	if name := positional[0]; name != "-" {
		source = name
		file, err := os.Open(name)
		if err != nil {
			return fail(stderr, "report", err)
		}
		defer file.Close()
		in = file
	}
	rf, err := reports.ReadJSON(in)
	if err != nil {
		return fail(stderr, "report", fmt.Errorf("%s: %w", source, err))
	}
	var buf bytes.Buffer
	if err := reports.Write(&buf, f, rf, reports.Options{Normalize: *normalize}); err != nil {
		return fail(stderr, "report", err)
	}
	if *out == "" {
		if _, err := stdout.Write(buf.Bytes()); err != nil {
			return fail(stderr, "report", err)
		}
		return exitOK
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return fail(stderr, "report", err)
	}
	if err := reports.WriteFileAtomic(*out, buf.Bytes()); err != nil {
		return fail(stderr, "report", err)
	}
	fmt.Fprintf(stderr, "report written to %s\n", *out)
	return exitOK
}

func formatFromExt(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		return "json"
	case ".xml":
		return "junit"
	case ".html", ".htm":
		return "html"
	}
	return "md"
}
