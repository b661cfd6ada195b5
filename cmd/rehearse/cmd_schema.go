package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/rehearse-dev/rehearse/harness"
	"github.com/rehearse-dev/rehearse/reports"
)

// schemas are what rehearse schema prints, by name.
var schemas = map[string]func() []byte{
	"scenario": harness.JSONSchema,
	"target":   harness.TargetJSONSchema,
	"results":  reports.Schema,
}

func cmdSchema(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("schema", stderr)
	positional, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	names := slices.Sorted(maps.Keys(schemas))
	if len(positional) != 1 || schemas[positional[0]] == nil {
		return fail(stderr, "schema", fmt.Errorf("give one of %s (e.g. rehearse schema scenario > scenario.schema.json)", strings.Join(names, ", ")))
	}
	stdout.Write(schemas[positional[0]]())
	return exitOK
}
