package container

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/rehearse-dev/rehearse/internal/loopback"
)

// publishAddr returns the address, on this machine, where a container of the
// engine at daemonHost (a Docker host URL: unix://, npipe://, tcp://, ...)
// publishes its port, and refuses an engine that is not on this machine:
// rehearse contacts only loopback addresses. A local socket (or "") gives
// 127.0.0.1; a tcp:// (http://, https://) engine on an IPv4 loopback
// address gives that address (the port is published there); localhost or
// ::1 give 127.0.0.1. ssh:// and every other host are refused.
func publishAddr(daemonHost string) (string, error) {
	if daemonHost == "" {
		return "127.0.0.1", nil
	}
	u, err := url.Parse(daemonHost)
	if err != nil {
		return "", fmt.Errorf("pgcontainer: Docker host %q is not a URL: %v", daemonHost, err)
	}
	switch u.Scheme {
	case "unix", "npipe":
		return "127.0.0.1", nil
	case "tcp", "http", "https":
		h := u.Hostname()
		if h != "" && !strings.HasPrefix(h, "/") && loopback.Host(h) {
			if ip := net.ParseIP(h).To4(); ip != nil {
				return ip.String(), nil
			}
			return "127.0.0.1", nil
		}
	}
	return "", fmt.Errorf("pgcontainer: the Docker engine at %q is not on this machine: rehearse contacts only loopback addresses (127.0.0.0/8, ::1, localhost) or a local socket, and the container's port would be published on that host; use this machine's engine (a unix socket or tcp://127.0.0.1:PORT) or --provider local", daemonHost)
}

// checkEnvHost refuses DOCKER_HOST before any connection when it names
// another machine.
func checkEnvHost() error {
	h := os.Getenv("DOCKER_HOST")
	if h == "" {
		return nil
	}
	_, err := publishAddr(h)
	return err
}
