// Package password makes and checks Django-compatible PBKDF2-SHA256
// password hashes, the format Django's default PBKDF2PasswordHasher stores in
// auth_user.password:
//
//	pbkdf2_sha256$<iterations>$<salt>$<base64 of the 32-byte derived key>
//
// The derived key is PBKDF2-HMAC-SHA256(password as UTF-8, salt as UTF-8,
// iterations, 32 bytes), encoded with standard, padded base64 (Django's
// PBKDF2PasswordHasher.encode uses base64.b64encode). A hash made here
// verifies in Django and a hash taken from a Django dumpdata verifies here,
// whatever its iteration count.
//
// Only pbkdf2_sha256 is supported. Other Django formats (pbkdf2_sha1, argon2,
// bcrypt_sha256, scrypt, md5, ...) are recognised as such and refused with
// ErrUnknownAlgorithm; unusable passwords ("!" + random, Django's
// set_unusable_password) are refused with ErrUnusable.
//
// Errors never contain the encoded hash or a password: they name the part
// that is wrong and why.
package password

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Algorithm is the algorithm prefix of every hash this package makes.
const Algorithm = "pbkdf2_sha256"

// DefaultIterations is the PBKDF2 iteration count Make is called with by the
// reference system when it hashes a new password.
//
// It is deliberately far below Django's own default (260,000 in 3.2, 600,000
// in 4.2, 720,000 in 5.0, 870,000 in 5.1, 1,000,000 in 5.2): the harness
// probes logins every 10 ms while a restore runs, and one check at Django's
// cost takes about 0.3 s of CPU, which would turn the probe timeline into a
// measurement of the hasher instead of the restore. Nothing depends on the
// count being low: Verify honours whatever count a hash carries, so hashes
// restored from a real Django backup (600000 and up) verify correctly, just
// more slowly.
const DefaultIterations = 1000

// MaxIterations is the largest iteration count Parse and Verify accept. It is
// about ten times Django 5.2's default; a larger count is treated as malformed
// so that a corrupt or hostile hash cannot pin a CPU for minutes.
const MaxIterations = 10_000_000

// SaltLength is the length of the salts NewSalt draws: Django's
// BasePasswordHasher.salt() draws ceil(128 / log2(62)) = 22 characters.
const SaltLength = 22

// maxEncodedLen bounds the input Parse looks at. Django stores the hash in a
// varchar(128); 1024 leaves room for long salts without letting arbitrary
// blobs through.
const maxEncodedLen = 1024

// digestLen is the PBKDF2 output length Django uses for pbkdf2_sha256
// (hashlib.sha256().digest_size).
const digestLen = sha256.Size

// saltAlphabet is Django's RANDOM_STRING_CHARS.
const saltAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// Sentinel errors. Every error Parse returns, and every error Verify and Make
// return for bad input, matches exactly one of them with errors.Is.
var (
	// ErrUnknownAlgorithm: the hash is of another kind than pbkdf2_sha256
	// (another Django hasher, or something unrecognisable).
	ErrUnknownAlgorithm = errors.New("password: unknown password hashing algorithm")
	// ErrMalformed: the hash says pbkdf2_sha256 but is not a well-formed one
	// (wrong number of fields, bad iteration count, empty salt, bad base64,
	// wrong digest length), or the input is empty or too long.
	ErrMalformed = errors.New("password: malformed password hash")
	// ErrUnusable: the stored value is a Django unusable password ("!"
	// prefix). No password matches it.
	ErrUnusable = errors.New("password: unusable password (Django '!' marker)")
	// ErrInvalidInput: Make was called with arguments Django would refuse
	// (empty salt, salt containing '$', iteration count out of range).
	ErrInvalidInput = errors.New("password: invalid input to Make")
)

// Hash is a parsed pbkdf2_sha256 hash.
type Hash struct {
	Algorithm  string // always "pbkdf2_sha256"
	Iterations int
	Salt       string
	Digest     []byte // 32 bytes
}

// String re-encodes h in Django's format.
func (h Hash) String() string {
	return h.Algorithm + "$" + strconv.Itoa(h.Iterations) + "$" + h.Salt + "$" +
		base64.StdEncoding.EncodeToString(h.Digest)
}

// Make hashes plain with the given salt and iteration count and returns the
// Django-encoded hash, exactly as Django's
// make_password(plain, salt, "pbkdf2_sha256") does with the hasher's
// iterations set to iterations. It refuses an empty salt or one containing
// '$' (as Django does) and an iteration count outside 1..MaxIterations.
func Make(plain, salt string, iterations int) (string, error) {
	if salt == "" {
		return "", fmt.Errorf("%w: salt must not be empty", ErrInvalidInput)
	}
	if strings.Contains(salt, "$") {
		return "", fmt.Errorf("%w: salt must not contain '$'", ErrInvalidInput)
	}
	if iterations < 1 || iterations > MaxIterations {
		return "", fmt.Errorf("%w: iterations must be between 1 and %d, got %d",
			ErrInvalidInput, MaxIterations, iterations)
	}
	dk, err := derive(plain, salt, iterations)
	if err != nil {
		return "", err
	}
	return Hash{Algorithm: Algorithm, Iterations: iterations, Salt: salt, Digest: dk}.String(), nil
}

// NewSalt returns a fresh 22-character salt drawn uniformly from Django's
// alphabet [a-zA-Z0-9] with crypto/rand (about 131 bits of entropy, which
// satisfies Django's 128-bit salt check, so Django will not ask to re-hash).
func NewSalt() string {
	out := make([]byte, 0, SaltLength)
	var buf [64]byte
	for len(out) < SaltLength {
		rand.Read(buf[:]) // never returns an error (crypto/rand, Go >= 1.24)
		for _, b := range buf {
			// 248 = 4*62: rejecting larger bytes keeps the choice uniform.
			if b >= 248 {
				continue
			}
			out = append(out, saltAlphabet[int(b)%len(saltAlphabet)])
			if len(out) == SaltLength {
				break
			}
		}
	}
	return string(out)
}

// Verify reports whether plain matches the encoded pbkdf2_sha256 hash. The
// digest comparison is constant-time.
//
// It returns (false, nil) for a well-formed hash that does not match, and
// (false, err) when the hash cannot be checked: ErrUnknownAlgorithm for
// another hasher's format, ErrUnusable for an unusable-password marker,
// ErrMalformed for anything else that is not a well-formed pbkdf2_sha256
// hash. It never panics.
func Verify(plain, encoded string) (bool, error) {
	h, err := Parse(encoded)
	if err != nil {
		return false, err
	}
	dk, err := derive(plain, h.Salt, h.Iterations)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(dk, h.Digest) == 1, nil
}

// Parse splits a Django pbkdf2_sha256 hash into its parts and checks each of
// them. The accepted form is the canonical one Django writes: exactly four
// '$'-separated fields, a decimal iteration count without sign or leading
// zeros in 1..MaxIterations, a non-empty salt, and standard padded base64 of
// exactly 32 bytes.
func Parse(encoded string) (Hash, error) {
	if encoded == "" {
		return Hash{}, fmt.Errorf("%w: empty", ErrMalformed)
	}
	if strings.HasPrefix(encoded, "!") {
		return Hash{}, ErrUnusable
	}
	if len(encoded) > maxEncodedLen {
		return Hash{}, fmt.Errorf("%w: %d bytes long, limit is %d", ErrMalformed, len(encoded), maxEncodedLen)
	}
	algo, rest, found := strings.Cut(encoded, "$")
	if !found {
		// Django reads a bare 32-char hex string as unsalted MD5; anything
		// else without '$' is not a hash at all. Do not echo it: it may
		// be a password pasted into the wrong field.
		if len(encoded) == 32 && isHex(encoded) {
			return Hash{}, fmt.Errorf("%w: unsalted MD5 (bare hex digest) is not supported", ErrUnknownAlgorithm)
		}
		return Hash{}, fmt.Errorf("%w: no '$'-separated algorithm prefix", ErrMalformed)
	}
	if algo != Algorithm {
		return Hash{}, fmt.Errorf("%w: %s; only %s is supported", ErrUnknownAlgorithm, describeAlgorithm(algo), Algorithm)
	}
	fields := strings.Split(rest, "$")
	if len(fields) != 3 {
		return Hash{}, fmt.Errorf("%w: want 4 '$'-separated fields, got %d", ErrMalformed, len(fields)+1)
	}
	iterStr, salt, digestStr := fields[0], fields[1], fields[2]

	iterations, err := parseIterations(iterStr)
	if err != nil {
		return Hash{}, err
	}
	if salt == "" {
		return Hash{}, fmt.Errorf("%w: empty salt", ErrMalformed)
	}
	if digestStr == "" {
		return Hash{}, fmt.Errorf("%w: empty digest", ErrMalformed)
	}
	// encoding/base64 silently skips '\r' and '\n'; Django's digest never
	// has them, so only the base64 alphabet is let through.
	digest, err := base64.StdEncoding.Strict().DecodeString(digestStr)
	if err != nil || !isStdBase64(digestStr) {
		return Hash{}, fmt.Errorf("%w: digest is not standard padded base64", ErrMalformed)
	}
	if len(digest) != digestLen {
		return Hash{}, fmt.Errorf("%w: digest is %d bytes, want %d", ErrMalformed, len(digest), digestLen)
	}
	return Hash{Algorithm: Algorithm, Iterations: iterations, Salt: salt, Digest: digest}, nil
}

func parseIterations(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("%w: empty iteration count", ErrMalformed)
	}
	// At most 8 digits are ever valid (MaxIterations has 8); checking the
	// length first keeps huge digit runs out of strconv and out of the
	// message.
	if len(s) > len(strconv.Itoa(MaxIterations)) {
		return 0, fmt.Errorf("%w: iteration count has %d digits, limit is %d", ErrMalformed, len(s), MaxIterations)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: iteration count is not a decimal number", ErrMalformed)
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("%w: iteration count has a leading zero", ErrMalformed)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%w: iteration count is not a decimal number", ErrMalformed)
	}
	if n < 1 || n > MaxIterations {
		return 0, fmt.Errorf("%w: iteration count %d is outside 1..%d", ErrMalformed, n, MaxIterations)
	}
	return n, nil
}

func derive(plain, salt string, iterations int) ([]byte, error) {
	dk, err := pbkdf2.Key(sha256.New, plain, []byte(salt), iterations, digestLen)
	if err != nil {
		// crypto/pbkdf2 fails only for parameters refused in FIPS 140-3
		// "only" mode; its message does not contain the password.
		return nil, fmt.Errorf("password: pbkdf2 key derivation failed: %w", err)
	}
	return dk, nil
}

// knownDjangoAlgorithms are the algorithm prefixes of Django's other
// hashers; naming them in errors helps whoever reads the log.
var knownDjangoAlgorithms = map[string]bool{
	"pbkdf2_sha1": true, "argon2": true, "bcrypt_sha256": true, "bcrypt": true,
	"scrypt": true, "sha1": true, "md5": true, "unsalted_md5": true,
	"unsalted_sha1": true, "crypt": true,
}

// describeAlgorithm names a prefix for an error message without echoing
// arbitrary input: a known Django hasher is named, anything else is not.
func describeAlgorithm(algo string) string {
	if knownDjangoAlgorithms[algo] {
		return fmt.Sprintf("Django hasher %q", algo)
	}
	if algo == "" {
		return "empty algorithm prefix"
	}
	return "unrecognised algorithm prefix"
}

func isStdBase64(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
