package container

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

const dockerTimeout = 10 * time.Second

// dockerClient connects to the engine testcontainers would use (DOCKER_HOST,
// docker context, ~/.testcontainers.properties) and checks that it answers.
// An engine on another machine is refused (before any connection when
// DOCKER_HOST names it).
func dockerClient(ctx context.Context) (*testcontainers.DockerClient, error) {
	if err := checkEnvHost(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	cli, err := newDockerClient(ctx)
	if err == nil {
		if _, err = publishAddr(cli.DaemonHost()); err != nil {
			_ = cli.Close()
			return nil, err
		}
		if _, err = cli.Ping(ctx, client.PingOptions{}); err != nil {
			_ = cli.Close()
		}
	}
	if err != nil {
		where := "the default socket"
		if h := os.Getenv("DOCKER_HOST"); h != "" {
			where = "DOCKER_HOST=" + h
		}
		return nil, fmt.Errorf("pgcontainer: no Docker engine answers (%s): %v; start Docker (or use the local provider)", where, err)
	}
	return cli, nil
}

// newDockerClient wraps testcontainers.NewDockerClientWithOpts, which panics
// in some versions when no engine can be found. testcontainers resolves its
// engine once per process; a DOCKER_HOST set is read again on every call
// (client.FromEnv, which takes priority), so the engine it names is used.
func newDockerClient(ctx context.Context) (cli *testcontainers.DockerClient, err error) {
	defer func() {
		if r := recover(); r != nil {
			cli, err = nil, fmt.Errorf("%v", r)
		}
	}()
	var opts []client.Opt
	if os.Getenv("DOCKER_HOST") != "" {
		opts = append(opts, client.FromEnv)
	}
	return testcontainers.NewDockerClientWithOpts(ctx, opts...)
}

// Available returns nil when a Docker engine answers, and an error that says
// what failed otherwise.
func Available(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	cli, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	return cli.Close()
}

// ImagePresent reports whether image (resolved as by ImageName) exists in
// the local engine. The error is nil when the engine answered.
func ImagePresent(ctx context.Context, image string) (bool, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	cli, err := dockerClient(ctx)
	if err != nil {
		return false, err
	}
	defer cli.Close()
	_, _, err = checkImage(ctx, cli, ImageName(image))
	if errors.Is(err, ErrImageMissing) {
		return false, nil
	}
	return err == nil, err
}

// checkImage fails fast when image is not in the local engine (no registry
// is reachable: testcontainers would try to pull it, with retries). It
// returns the image's PGDATA (default /var/lib/postgresql/data) and id.
func checkImage(ctx context.Context, cli *testcontainers.DockerClient, image string) (pgdata, id string, err error) {
	ctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	res, err := cli.ImageInspect(ctx, image)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			hint := makeHint + " (it builds " + DefaultImage + " from Debian packages; no registry is needed)"
			if image != DefaultImage {
				hint = makeHint + " with " + ImageEnv + "=" + image + ", or load that image into Docker, or unset " + ImageEnv
			}
			return "", "", fmt.Errorf("pgcontainer: %w: %q is not in the local Docker engine and nothing is pulled: %s", ErrImageMissing, image, hint)
		}
		return "", "", fmt.Errorf("pgcontainer: inspect image %q: %w", image, err)
	}
	pgdata = defaultPGDATA
	if res.Config != nil {
		for _, e := range res.Config.Env {
			if v, ok := strings.CutPrefix(e, "PGDATA="); ok && strings.HasPrefix(v, "/") {
				pgdata = v
			}
		}
	}
	return pgdata, res.ID, nil
}

// forceRemove removes a container (SIGKILL if running); gone already is fine.
func forceRemove(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	cli, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	return removeContainer(ctx, cli, id)
}

func removeContainer(ctx context.Context, cli *testcontainers.DockerClient, id string) error {
	_, err := cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	switch {
	case err == nil, cerrdefs.IsNotFound(err):
		return nil
	case cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "already in progress"):
		// Another process (a concurrent sweep) is removing it: removed
		// means gone, so wait for that.
		return waitGone(ctx, cli, id)
	}
	return err
}

// waitGone polls until the container no longer exists (at most 30 s).
func waitGone(ctx context.Context, cli *testcontainers.DockerClient, id string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		_, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("another process is removing it, and it is still there: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopAndRemove stops a container (SIGINT, its stop signal; SIGKILL after
// stopGrace) and removes it with its tmpfs; gone already is fine.
func stopAndRemove(ctx context.Context, id string) error {
	cli, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	grace := int(stopGrace / time.Second)
	_, stopErr := cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &grace})
	if err := removeContainer(ctx, cli, id); err != nil {
		if stopErr != nil && !cerrdefs.IsNotFound(stopErr) {
			err = errors.Join(stopErr, err)
		}
		return err
	}
	return nil
}

// containerLogTail is the last n lines of a container's output ("" when
// it cannot be read).
func containerLogTail(ctx context.Context, id string, n int) string {
	cli, err := dockerClient(ctx)
	if err != nil {
		return ""
	}
	defer cli.Close()
	rc, err := cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(n)})
	if err != nil {
		return ""
	}
	defer rc.Close()
	var b bytes.Buffer
	if _, err := stdcopy.StdCopy(&b, &b, io.LimitReader(rc, 1<<20)); err != nil && b.Len() == 0 {
		return ""
	}
	return strings.TrimSpace(string(bytes.ToValidUTF8(b.Bytes(), nil)))
}
