package pgguard

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// When ctx is done, the server's "canceling statement due to user request"
// (the answer to the cancel request sent for ctx) still says why: callers
// tell a deadline or an interrupt apart with errors.Is, whichever of the
// two errors pgx happened to return.
func TestExplainKeepsWhyTheContextEnded(t *testing.T) {
	userCancel := &pgconn.PgError{Code: "57014", Message: "canceling statement due to user request"}
	for _, want := range []error{context.Canceled, context.DeadlineExceeded} {
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		if want == context.Canceled {
			cancel()
			ctx, cancel = context.WithCancel(context.Background())
		}
		cancel()
		err := Explain(ctx, userCancel, time.Second, time.Second, "reinit", "Config", "the data")
		if !errors.Is(err, want) || !errors.As(err, new(*pgconn.PgError)) || !strings.Contains(err.Error(), "user request") {
			t.Errorf("ctx %v: %v", want, err)
		}
	}
	// A lock timeout with ctx alive is the server's own refusal: explained.
	lock := &pgconn.PgError{Code: "55P03", Message: "canceling statement due to lock timeout"}
	if err := Explain(context.Background(), lock, time.Second, 300*time.Millisecond, "reinit", "Config", "the data"); !strings.Contains(err.Error(), "raise Config.LockTimeout") || errors.Is(err, context.Canceled) {
		t.Errorf("lock timeout: %v", err)
	}
}
