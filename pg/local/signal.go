package local

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// One handler for every cluster registered with CloseOnSignal, so that all of
// them are closed before the signal is re-raised.
var sigReg struct {
	mu       sync.Mutex
	clusters map[*Cluster]struct{}
	ch       chan os.Signal
	quit     chan struct{}
}

// CloseOnSignal is a convenience for simple programs: on the first SIGINT or
// SIGTERM it closes c (and every other cluster registered this way), then
// re-raises the signal so that the process ends as it would have without the
// handler — unless the program has its own handler for that signal, which
// then receives it instead. stop unregisters c; Close unregisters it too.
// Programs that already turn signals into a cancelled context should simply
// call Close.
func (c *Cluster) CloseOnSignal() (stop func()) {
	if c == nil {
		return func() {}
	}
	sigReg.mu.Lock()
	defer sigReg.mu.Unlock()
	if sigReg.clusters == nil {
		sigReg.clusters = make(map[*Cluster]struct{})
	}
	sigReg.clusters[c] = struct{}{}
	if sigReg.ch == nil {
		ch, quit := make(chan os.Signal, 1), make(chan struct{})
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		sigReg.ch, sigReg.quit = ch, quit
		go signalLoop(ch, quit)
	}
	return func() { unregisterSignal(c) }
}

func unregisterSignal(c *Cluster) {
	sigReg.mu.Lock()
	defer sigReg.mu.Unlock()
	if _, ok := sigReg.clusters[c]; !ok {
		return
	}
	delete(sigReg.clusters, c)
	if len(sigReg.clusters) == 0 && sigReg.ch != nil {
		signal.Stop(sigReg.ch)
		close(sigReg.quit)
		sigReg.ch, sigReg.quit = nil, nil
	}
}

func signalLoop(ch chan os.Signal, quit chan struct{}) {
	var sig os.Signal
	select {
	case <-quit:
		return
	case sig = <-ch:
	}
	sigReg.mu.Lock()
	cs := make([]*Cluster, 0, len(sigReg.clusters))
	for c := range sigReg.clusters {
		cs = append(cs, c)
	}
	sigReg.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.Close() // unregisters c
		}()
	}
	wg.Wait()
	signal.Stop(ch)
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Signal(sig)
	}
}
