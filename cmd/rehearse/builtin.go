package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/rehearse-dev/rehearse/harness"
	"github.com/rehearse-dev/rehearse/scenarios"
)

// builtinPrefix names the shipped scenarios in positions and reports: they
// are the files of scenarios/ in rehearse's source.
const builtinPrefix = "scenarios/"

// loadScenarios loads the files and folders given; with none, ./scenarios
// when there is such a folder, else the shipped scenarios built into
// rehearse. what says which it took.
func loadScenarios(paths []string) (list []*harness.Scenario, what string, err error) {
	if len(paths) > 0 {
		list, err = harness.LoadPaths(paths)
		return list, "", err
	}
	if st, err := os.Stat("scenarios"); err == nil && st.IsDir() {
		list, err = harness.LoadPaths([]string{"scenarios"})
		return list, "", err
	}
	list, err = loadBuiltin(scenarios.FS)
	return list, "built-in ", err
}

// loadBuiltin parses every *.yaml file at the root of fsys.
func loadBuiltin(fsys fs.FS) ([]*harness.Scenario, error) {
	names, err := fs.Glob(fsys, "*.yaml")
	if err != nil || len(names) == 0 {
		return nil, fmt.Errorf("no built-in scenarios (%v): this rehearse was built without them", err)
	}
	var out []*harness.Scenario
	var errs []error
	for _, n := range names {
		data, err := fs.ReadFile(fsys, n)
		if err == nil {
			var s *harness.Scenario
			if s, err = harness.Parse(builtinPrefix+n, data); err == nil {
				out = append(out, s)
			}
		}
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}
