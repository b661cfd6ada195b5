package container

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/rehearse-dev/rehearse/internal/procowner"
	"github.com/testcontainers/testcontainers-go"
)

// StaleAfter is how old a container must be before Sweep removes it when its
// owner cannot be checked: the owner ran on another machine or in another PID
// namespace (e.g. inside a container sharing the Docker socket), or the
// container has no owner labels.
const StaleAfter = 24 * time.Hour

// Sweep removes containers labelled dev.rehearse.run whose owner process is
// gone (package procowner's rule: pid, process start time, boot id, machine
// and PID namespace), and those whose owner cannot be checked once they are
// older than StaleAfter. A running reusable container (Options.Reuse) is
// removed when no live process holds it and it has not been used for
// ReuseIdle (one that is not running goes by its creator, as any other). Containers in use are never touched. It returns how many it
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
	host, err := publishAddr(cli.DaemonHost())
	if err != nil {
		return 0, err
	}
	here := procowner.Here()
	now := time.Now()
	n := 0
	var errs []string
	for _, c := range res.Items {
		created := time.Unix(c.Created, 0)
		if v, err := strconv.ParseInt(c.Labels[LabelCreated], 10, 64); err == nil {
			created = time.Unix(v, 0)
		}
		stale, why := false, ""
		// A reusable container that is not running (being created, or
		// stopped) goes by its creator, as any other.
		if reuseLabelled(c.Labels) && c.State == container.StateRunning {
			stale, why = reusableStale(ctx, cli, c, host, created, now)
		} else {
			stale, why = staleOwner(c.Labels, created, now, here)
		}
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

// ownerLabels returns the labels of a container created now by this process.
// Without /proc (not Linux) only run, pid and created are known.
func ownerLabels(runID string, now time.Time) map[string]string {
	l := map[string]string{
		LabelRun:     runID,
		LabelPID:     strconv.Itoa(os.Getpid()),
		LabelCreated: strconv.FormatInt(now.Unix(), 10),
	}
	if o, err := procowner.Self(); err == nil {
		l[LabelStart] = strconv.FormatUint(o.Start, 10)
		l[LabelBoot] = o.Boot
		l[LabelMachine] = o.Machine
		l[LabelPIDNS] = o.PIDNS
	}
	return l
}

// labelOwner reads the owner back from a container's labels.
func labelOwner(labels map[string]string) procowner.Owner {
	o := procowner.Owner{Boot: labels[LabelBoot], Machine: labels[LabelMachine], PIDNS: labels[LabelPIDNS]}
	o.PID, _ = strconv.Atoi(labels[LabelPID])
	o.Start, _ = strconv.ParseUint(labels[LabelStart], 10, 64)
	return o
}

// staleOwner decides whether a labelled container may be removed: its owner
// is gone (procowner's rule), or cannot be checked from here and the
// container is older than StaleAfter.
func staleOwner(labels map[string]string, created, now time.Time, here procowner.Host) (bool, string) {
	verdict, why := here.Check(labelOwner(labels))
	switch verdict {
	case procowner.Gone:
		return true, why
	case procowner.Unknown:
		if age := now.Sub(created).Round(time.Second); age > StaleAfter {
			return true, fmt.Sprintf("%s, and the container is %v old", why, age)
		}
	}
	return false, ""
}
