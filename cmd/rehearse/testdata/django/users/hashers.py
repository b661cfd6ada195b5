from django.contrib.auth.hashers import PBKDF2PasswordHasher


class FixturePBKDF2(PBKDF2PasswordHasher):
    """pbkdf2_sha256 as the fixture stores it: 1000 iterations. Django would
    otherwise re-hash every fixture password at its first login (their salts
    are short), and hashes would change under the harness."""

    iterations = 1000

    def must_update(self, encoded):
        return self.decode(encoded)["iterations"] != self.iterations
