package results

import (
	"crypto/sha256"
	"encoding/hex"
)

// Fingerprint returns a short, stable label for any secret (a token, a
// password, a password hash, a signing key) so logs and reports can tell
// secrets apart and match them across runs without printing them:
// "sha256:" followed by the first 8 hex digits of SHA-256(secret).
//
// It identifies; it does not protect a guessable secret. 32 bits of an
// unsalted hash are enough to confirm a guess, so the fingerprint of a
// dictionary password such as "test123" gives it away to anyone who tries
// it. Tokens and keys are high-entropy and safe to fingerprint.
func Fingerprint(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(sum[:4])
}
