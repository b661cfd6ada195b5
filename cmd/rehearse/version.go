package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// printVersion prints the module version and the VCS revision the binary
// was built from, as the Go toolchain recorded them.
func printVersion(w io.Writer) {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintf(w, "rehearse (no build information) %s\n", runtime.Version())
		return
	}
	vcs := map[string]string{}
	for _, s := range info.Settings {
		vcs[s.Key] = s.Value
	}
	fmt.Fprintf(w, "rehearse %s (module %s)", info.Main.Version, info.Main.Path)
	if rev := vcs["vcs.revision"]; rev != "" {
		fmt.Fprintf(w, " revision %s", rev)
		if t := vcs["vcs.time"]; t != "" {
			fmt.Fprintf(w, " of %s", t)
		}
		if vcs["vcs.modified"] == "true" {
			fmt.Fprint(w, ", with uncommitted changes")
		}
	}
	fmt.Fprintf(w, ", %s\n", info.GoVersion)
}
