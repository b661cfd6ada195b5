package container

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/client"
	"github.com/rehearse-dev/rehearse/internal/procowner"
	"github.com/testcontainers/testcontainers-go"
)

// StaleAfter is how old a container must be before Sweep removes it when its
// owner cannot be checked: the owner ran on another machine, in another PID
// namespace (e.g. inside a container sharing the Docker socket) or before a
// reboot, or the container has no owner labels.
const StaleAfter = 24 * time.Hour

// Sweep removes containers labelled dev.rehearse.run whose owner process is
// dead (checked by pid, process start time, boot id and PID namespace), and
// those whose owner cannot be checked once they are older than StaleAfter.
// Containers of live owners are never touched. It returns how many it
// removed. logf may be nil. Start calls it.
func Sweep(ctx context.Context, logf func(string, ...any)) (int, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	cli, err := dockerClient(ctx)
	if err != nil {
		return 0, err
	}
	defer cli.Close()
	return sweep(ctx, cli, logf)
}

func sweep(ctx context.Context, cli *testcontainers.DockerClient, logf func(string, ...any)) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*dockerTimeout)
	defer cancel()
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", LabelRun),
	})
	if err != nil {
		return 0, fmt.Errorf("pgcontainer: list containers: %w", err)
	}
	self := currentOwner()
	now := time.Now()
	n := 0
	var errs []string
	for _, c := range res.Items {
		created := time.Unix(c.Created, 0)
		if v, err := strconv.ParseInt(c.Labels[LabelCreated], 10, 64); err == nil {
			created = time.Unix(v, 0)
		}
		stale, why := staleOwner(c.Labels, created, now, self)
		if !stale {
			continue
		}
		name := strings.TrimPrefix(strings.Join(c.Names, ","), "/")
		if err := removeContainer(ctx, cli, c.ID); err != nil {
			errs = append(errs, fmt.Sprintf("%s (%.12s): %v", name, c.ID, err))
			continue
		}
		n++
		logf("pgcontainer: removed stale container %s (%.12s, run %s): %s", name, c.ID, c.Labels[LabelRun], why)
	}
	if len(errs) > 0 {
		return n, fmt.Errorf("pgcontainer: could not remove stale containers: %s", strings.Join(errs, "; "))
	}
	return n, nil
}

// owner identifies a process robustly against PID reuse (as in pglocal).
type owner struct {
	pid   int
	start uint64
	boot  string
	pidns string
}

func currentOwner() owner {
	o := owner{pid: os.Getpid(), boot: bootID(), pidns: pidNS()}
	_, o.start, _ = procStat(o.pid)
	return o
}

// ownerLabels returns the labels of a container created now by this process.
// Without /proc (not Linux) only run, pid and created are known.
func ownerLabels(runID string, now time.Time) map[string]string {
	o := currentOwner()
	l := map[string]string{
		LabelRun:     runID,
		LabelPID:     strconv.Itoa(o.pid),
		LabelCreated: strconv.FormatInt(now.Unix(), 10),
	}
	if o.start != 0 && o.boot != "" && o.pidns != "" {
		l[LabelStart] = strconv.FormatUint(o.start, 10)
		l[LabelBoot] = o.boot
		l[LabelPIDNS] = o.pidns
	}
	return l
}

// staleOwner decides whether a labelled container may be removed.
func staleOwner(labels map[string]string, created, now time.Time, self owner) (bool, string) {
	age := now.Sub(created).Round(time.Second)
	old := age > StaleAfter
	pid, err := strconv.Atoi(labels[LabelPID])
	if err != nil || pid <= 0 {
		if old {
			return true, fmt.Sprintf("no owner pid label and %v old", age)
		}
		return false, ""
	}
	boot, ns := labels[LabelBoot], labels[LabelPIDNS]
	if self.boot == "" || self.pidns == "" || (boot != "" && boot != self.boot) || (ns != "" && ns != self.pidns) {
		// No /proc here, or the owner lived elsewhere: only age tells.
		if old {
			return true, fmt.Sprintf("owner pid %d ran on another machine, boot or PID namespace, and the container is %v old", pid, age)
		}
		return false, ""
	}
	if pid == self.pid {
		return false, "" // ours
	}
	state, start, err := procStat(pid)
	switch {
	case err != nil:
		return true, fmt.Sprintf("owner pid %d is gone", pid)
	case state == 'Z' || state == 'X' || state == 'x':
		return true, fmt.Sprintf("owner pid %d is a zombie", pid)
	}
	if want, err := strconv.ParseUint(labels[LabelStart], 10, 64); err == nil && want != start {
		return true, fmt.Sprintf("owner pid %d was reused by another process", pid)
	}
	return false, ""
}

// Read from /proc by package procowner.
var (
	bootID   = procowner.BootID
	pidNS    = procowner.PIDNamespace
	procStat = procowner.Stat
)
