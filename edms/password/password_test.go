package password

import (
	"errors"
	"strings"
	"testing"
)

// djangoVector is a hash published in Django's own test suite,
// tests/auth_tests/test_hashers.py, for the password "lètmein" (UTF-8, with
// a non-ASCII 'è').
type djangoVector struct {
	name    string // Django version and test method
	salt    string
	iter    int
	encoded string
}

// Cheap vectors: they run on every test run.
var djangoVectors = []djangoVector{
	// Django 1.10 (django/django@d7087c3), PBKDF2PasswordHasher.iterations = 30000.
	{"django-1.10 test_pbkdf2", "seasalt", 30000,
		"pbkdf2_sha256$30000$seasalt$VrX+V8drCGo68wlvy6rfu8i1d1pfkdeXA4LJkRGJodY="},
	{"django-1.10 test_low_level_pbkdf2", "seasalt2", 30000,
		"pbkdf2_sha256$30000$seasalt2$a75qzbogeVhNFeMqhdgyyoqGKpIzYUo651sq57RERew="},
}

// Heavy vectors (600,000 iterations, about 0.1-0.3 s each): only these two,
// the ones the brief names, from the Django 4.2 test file.
var djangoHeavyVectors = []djangoVector{
	{"django-4.2 test_pbkdf2", "seasalt", 600000,
		"pbkdf2_sha256$600000$seasalt$OAXyhAQ/4ZDA9V5RMExt3C1OwQdUpLZ99vm1McFlLRA="},
	{"django-4.2 test_low_level_pbkdf2", "seasalt2", 600000,
		"pbkdf2_sha256$600000$seasalt2$OSllgFdJjYQjb0RfMzrx8u0XYl4Fkt+wKpI1yq4lZlo="},
}

// Vectors at DefaultIterations, computed independently with Python's
// hashlib.pbkdf2_hmac (OpenSSL) + base64.b64encode, i.e. Django's
// PBKDF2PasswordHasher.encode with iterations=1000.
var localVectors = []struct {
	plain, encoded string
}{
	{"test123", "pbkdf2_sha256$1000$seasalt$VJJcaRx3UAx4u2gYJsKk53DzXJ59gxBQYLh/jbGeW5I="},
	{"", "pbkdf2_sha256$1000$seasalt$XHfRVmyEZRTCcSbqGP00JKv0fRwYHK0ogjPZdSJxCXk="},
}

const djangoPlain = "lètmein"

func checkVector(t *testing.T, v djangoVector) {
	t.Helper()
	got, err := Make(djangoPlain, v.salt, v.iter)
	if err != nil {
		t.Fatalf("Make: %v", err)
	}
	if got != v.encoded {
		t.Fatalf("Make(%q, %q, %d) = %q, want %q", djangoPlain, v.salt, v.iter, got, v.encoded)
	}
	ok, err := Verify(djangoPlain, v.encoded)
	if err != nil || !ok {
		t.Fatalf("Verify(right password) = %v, %v; want true, nil", ok, err)
	}
	// Django's tests also check "lètmeinz" is refused; Verify on the
	// heavy vectors is the expensive part, so keep it to one wrong check.
	ok, err = Verify(djangoPlain+"z", v.encoded)
	if err != nil || ok {
		t.Fatalf("Verify(wrong password) = %v, %v; want false, nil", ok, err)
	}
}

func TestDjangoVectors(t *testing.T) {
	for _, v := range djangoVectors {
		t.Run(v.name, func(t *testing.T) { t.Parallel(); checkVector(t, v) })
	}
	for _, v := range djangoHeavyVectors {
		t.Run(v.name, func(t *testing.T) { t.Parallel(); checkVector(t, v) })
	}
}

func TestLocalVectors(t *testing.T) {
	for _, v := range localVectors {
		got, err := Make(v.plain, "seasalt", DefaultIterations)
		if err != nil {
			t.Fatal(err)
		}
		if got != v.encoded {
			t.Errorf("Make(%q) = %q, want %q", v.plain, got, v.encoded)
		}
		ok, err := Verify(v.plain, v.encoded)
		if err != nil || !ok {
			t.Errorf("Verify(%q) = %v, %v; want true, nil", v.plain, ok, err)
		}
	}
	// Django's blank-password check: "" matches, " " does not.
	ok, err := Verify(" ", localVectors[1].encoded)
	if err != nil || ok {
		t.Errorf("Verify(\" \", hash of \"\") = %v, %v; want false, nil", ok, err)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, plain := range []string{"s3cret!", "", "pässwörd ünïcode ✓", strings.Repeat("x", 200)} {
		salt := NewSalt()
		enc, err := Make(plain, salt, DefaultIterations)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(enc, "pbkdf2_sha256$1000$"+salt+"$") {
			t.Fatalf("unexpected prefix: %q", enc)
		}
		ok, err := Verify(plain, enc)
		if err != nil || !ok {
			t.Fatalf("Verify(right) = %v, %v", ok, err)
		}
		ok, err = Verify(plain+"x", enc)
		if err != nil || ok {
			t.Fatalf("Verify(wrong) = %v, %v", ok, err)
		}
		h, err := Parse(enc)
		if err != nil {
			t.Fatal(err)
		}
		if h.Algorithm != Algorithm || h.Iterations != DefaultIterations || h.Salt != salt || len(h.Digest) != 32 {
			t.Fatalf("Parse = %+v", h)
		}
		if h.String() != enc {
			t.Fatalf("String() = %q, want %q", h.String(), enc)
		}
	}
}

func TestVerifyHonoursIterationCount(t *testing.T) {
	enc, err := Make("pw", "salt", 1)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := Verify("pw", enc); err != nil || !ok {
		t.Fatalf("1 iteration: %v, %v", ok, err)
	}
	// Same digest under another count must not match.
	other := strings.Replace(enc, "$1$", "$2$", 1)
	if ok, err := Verify("pw", other); err != nil || ok {
		t.Fatalf("changed count: %v, %v; want false, nil", ok, err)
	}
}

func TestNewSalt(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		s := NewSalt()
		if len(s) != SaltLength {
			t.Fatalf("len(%q) = %d", s, len(s))
		}
		for _, c := range s {
			if !strings.ContainsRune(saltAlphabet, c) {
				t.Fatalf("salt %q has %q outside Django's alphabet", s, c)
			}
		}
		if seen[s] {
			t.Fatalf("salt repeated: %q", s)
		}
		seen[s] = true
	}
}

func TestMakeRefusesBadInput(t *testing.T) {
	cases := []struct {
		name, salt string
		iter       int
	}{
		{"empty salt", "", 1000},
		{"salt with dollar", "sea$salt", 1000},
		{"zero iterations", "salt", 0},
		{"negative iterations", "salt", -5},
		{"too many iterations", "salt", MaxIterations + 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Make("pw", c.salt, c.iter)
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("Make = %q, %v; want ErrInvalidInput", got, err)
			}
			if got != "" {
				t.Fatalf("Make returned %q with an error", got)
			}
		})
	}
}

const goodDigest = "VrX+V8drCGo68wlvy6rfu8i1d1pfkdeXA4LJkRGJodY="

func TestVerifyErrors(t *testing.T) {
	cases := []struct {
		name, encoded string
		want          error
	}{
		{"empty", "", ErrMalformed},
		{"no dollar", "lètmein", ErrMalformed},
		{"bare unsalted md5", "88a434c88cca4e900f7874cd98123f43", ErrUnknownAlgorithm},
		{"unusable", "!" + strings.Repeat("a", 40), ErrUnusable},
		{"unusable bare", "!", ErrUnusable},
		{"argon2", "argon2$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$YC9+jJCrQhs5R6db7LlN8Q", ErrUnknownAlgorithm},
		{"md5", "md5$seasalt$3f86d0d3d465b7b458c231bf3555c0e3", ErrUnknownAlgorithm},
		{"unsalted md5 alt", "md5$$88a434c88cca4e900f7874cd98123f43", ErrUnknownAlgorithm},
		{"sha1", "sha1$seasalt$cff36ea83f5706ce9aa7454e63e431fc726b2dc8", ErrUnknownAlgorithm},
		{"pbkdf2_sha1", "pbkdf2_sha1$600000$seasalt2$2CLsaL1MZhq6JOG6QOHtVbiopHE=", ErrUnknownAlgorithm},
		{"bcrypt_sha256", "bcrypt_sha256$$2b$12$abcdefghijklmnopqrstuuVrQ4zCyEDfwKOXCre954in7jn/y/.ua", ErrUnknownAlgorithm},
		{"lolcat", "lolcat$salt$hash", ErrUnknownAlgorithm},
		{"empty algorithm", "$30000$seasalt$" + goodDigest, ErrUnknownAlgorithm},
		{"case matters", "PBKDF2_SHA256$30000$seasalt$" + goodDigest, ErrUnknownAlgorithm},
		{"too few fields", "pbkdf2_sha256$30000$seasalt", ErrMalformed},
		{"algorithm only", "pbkdf2_sha256$", ErrMalformed},
		{"too many fields", "pbkdf2_sha256$30000$sea$salt$" + goodDigest, ErrMalformed},
		{"non-numeric iterations", "pbkdf2_sha256$abc$seasalt$" + goodDigest, ErrMalformed},
		{"empty iterations", "pbkdf2_sha256$$seasalt$" + goodDigest, ErrMalformed},
		{"signed iterations", "pbkdf2_sha256$+30000$seasalt$" + goodDigest, ErrMalformed},
		{"negative iterations", "pbkdf2_sha256$-1$seasalt$" + goodDigest, ErrMalformed},
		{"zero iterations", "pbkdf2_sha256$0$seasalt$" + goodDigest, ErrMalformed},
		{"leading zero", "pbkdf2_sha256$030000$seasalt$" + goodDigest, ErrMalformed},
		{"float iterations", "pbkdf2_sha256$3e4$seasalt$" + goodDigest, ErrMalformed},
		{"absurd iterations", "pbkdf2_sha256$99999999$seasalt$" + goodDigest, ErrMalformed},
		{"overflowing iterations", "pbkdf2_sha256$99999999999999999999999$seasalt$" + goodDigest, ErrMalformed},
		{"empty salt", "pbkdf2_sha256$30000$$" + goodDigest, ErrMalformed},
		{"empty digest", "pbkdf2_sha256$30000$seasalt$", ErrMalformed},
		{"bad base64", "pbkdf2_sha256$30000$seasalt$not*base64!", ErrMalformed},
		{"url-safe base64", "pbkdf2_sha256$30000$seasalt$VrX-V8drCGo68wlvy6rfu8i1d1pfkdeXA4LJkRGJodY=", ErrMalformed},
		{"unpadded base64", "pbkdf2_sha256$30000$seasalt$VrX+V8drCGo68wlvy6rfu8i1d1pfkdeXA4LJkRGJodY", ErrMalformed},
		{"short digest", "pbkdf2_sha256$30000$seasalt$AAAA", ErrMalformed},
		{"long digest", "pbkdf2_sha256$30000$seasalt$" + goodDigest[:43] + "AAAA", ErrMalformed},
		{"trailing newline", "pbkdf2_sha256$30000$seasalt$" + goodDigest + "\n", ErrMalformed},
		{"too long", "pbkdf2_sha256$30000$" + strings.Repeat("s", 2000) + "$" + goodDigest, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ok, err := Verify(djangoPlain, c.encoded)
			if ok {
				t.Fatal("Verify returned true")
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("Verify err = %v; want %v", err, c.want)
			}
			// Exactly one sentinel matches.
			n := 0
			for _, s := range []error{ErrMalformed, ErrUnknownAlgorithm, ErrUnusable, ErrInvalidInput} {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d sentinels match %v", n, err)
			}
			// The message never echoes the hash (nor its salt or digest).
			msg := err.Error()
			if len(c.encoded) > 8 && strings.Contains(msg, c.encoded) {
				t.Fatalf("error echoes the hash: %q", msg)
			}
			if strings.Contains(msg, "seasalt") || strings.Contains(msg, "VrX+") || strings.Contains(msg, djangoPlain) {
				t.Fatalf("error leaks salt, digest or password: %q", msg)
			}
			if _, perr := Parse(c.encoded); !errors.Is(perr, c.want) {
				t.Fatalf("Parse err = %v; want %v", perr, c.want)
			}
		})
	}
}

func TestErrorNamesKnownHasher(t *testing.T) {
	_, err := Verify("x", "argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdA$aGFzaA")
	if err == nil || !strings.Contains(err.Error(), `"argon2"`) {
		t.Fatalf("want the hasher named, got %v", err)
	}
	// An unrecognised prefix (possibly a password typed into the wrong
	// field) is not echoed.
	_, err = Verify("x", "hunter2$whatever")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("unknown prefix echoed or no error: %v", err)
	}
}

// FuzzVerify checks that Verify never panics, whatever it is given, and that
// its result is consistent: true only with a nil error, and every error
// matches one of the sentinels. Without -fuzz it runs only the seeds.
func FuzzVerify(f *testing.F) {
	for _, v := range djangoVectors {
		f.Add(djangoPlain, v.encoded)
	}
	// The 600000-iteration vectors are seeded with the count lowered, so
	// the seed run stays fast; they still exercise the same shape.
	for _, v := range djangoHeavyVectors {
		f.Add(djangoPlain, strings.Replace(v.encoded, "$600000$", "$600$", 1))
	}
	for _, v := range localVectors {
		f.Add(v.plain, v.encoded)
	}
	for _, s := range []string{
		"", "$", "$$$", "!", "pbkdf2_sha256$", "pbkdf2_sha256$$$", "pbkdf2_sha256$1$$",
		"pbkdf2_sha256$1$a$", "pbkdf2_sha256$1$a$====", "pbkdf2_sha256$-0$a$" + goodDigest,
		"md5$seasalt$3f86d0d3d465b7b458c231bf3555c0e3", "88a434c88cca4e900f7874cd98123f43",
		"argon2$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$YC9+jJCrQhs5R6db7LlN8Q",
		"pbkdf2_sha256$\x00$\xff$\xfe", "pbkdf2_sha256$10000001$a$" + goodDigest,
	} {
		f.Add("lètmein", s)
	}
	f.Fuzz(func(t *testing.T, plain, encoded string) {
		// Keep fuzzing fast: huge counts are valid input but slow.
		if h, err := Parse(encoded); err == nil && h.Iterations > 100_000 {
			t.Skip("iteration count above 100,000: valid input, too slow to fuzz")
		}
		ok, err := Verify(plain, encoded)
		if ok && err != nil {
			t.Fatalf("ok with error %v", err)
		}
		if err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownAlgorithm) && !errors.Is(err, ErrUnusable) {
			t.Fatalf("error matches no sentinel: %v", err)
		}
		if err == nil {
			// A well-formed hash re-encodes to itself (canonical form).
			h, _ := Parse(encoded)
			if h.String() != encoded {
				t.Fatalf("non-canonical hash accepted: %q -> %q", encoded, h.String())
			}
		}
	})
}
