package harness

import (
	"context"
	"net"
	"testing"
	"time"
)

// A database server that accepts the connection and never answers must not
// hold a run for its whole timeout: the attempt ends at connectTimeout.
func TestConnectDBBoundsASilentServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	defer func(d time.Duration) { connectTimeout = d }(connectTimeout)
	connectTimeout = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	conn, err := connectDB(ctx, "postgres://u@"+ln.Addr().String()+"/db?sslmode=disable")
	took := time.Since(start)
	if err == nil {
		conn.Close(ctx)
		t.Fatal("connected to a server that never answers")
	}
	if took > 10*time.Second {
		t.Fatalf("the attempt took %v; want it bounded by connectTimeout (300ms)", took)
	}
	if ctx.Err() != nil {
		t.Fatalf("ended by the outer deadline, not connectTimeout: %v", err)
	}
}
