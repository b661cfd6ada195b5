# rehearse — make targets. `make test` is the test command CI runs.
GO ?= go
PKGS := ./...

.PHONY: test vet fmt build bench run serve clean fuzz test-large

build:
	$(GO) build -o bin/rehearse ./cmd/rehearse

# The README's test command: formatting, vet, the packages the tests need
# (.ci/deps: installed with apt-get as root, else the command is printed),
# then every test against a real PostgreSQL (a throwaway cluster started
# from the installed binaries; the DSN-provider tests start a server of
# their own), then each fuzz target for a bounded time. Where
# Docker runs, the container tests need the local image: it is built first
# (once; ~1 min) unless REHEARSE_SKIP_CONTAINER=1. .ci/deps has installed
# Django or failed with the command to run, so a Django test that would
# skip fails instead (REHEARSE_REQUIRE_DJANGO=1).
test: fmt vet
	@bash .ci/deps
	@if [ "$$REHEARSE_SKIP_CONTAINER" != 1 ] && docker info >/dev/null 2>&1 && ! bash images/postgres/build.sh; then \
		echo "make test: could not build the PostgreSQL image the container tests need (see above), or set REHEARSE_SKIP_CONTAINER=1"; exit 1; fi
	REHEARSE_REQUIRE_DJANGO=1 $(GO) test -count=1 -timeout 20m $(PKGS)
	@$(MAKE) --no-print-directory fuzz

vet:
	$(GO) vet $(PKGS)

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# Restores the ~1M-row edms-large backup several ways in one run, into an
# empty schema and, with reinit, over the populated database (both
# strategies, beside pg_restore --clean and a row-by-row baseline), and
# prints rows/s, ratios and the engine's peak memory; then times the reinit
# at two sizes. REHEARSE_BENCH_USERS=1000 for a quick, ~100k-row run; the
# full one takes minutes.
bench:
	$(GO) test -run '^$$' -bench 'BenchmarkRestore$$' -benchtime 1x -timeout 60m -v ./restore
	$(GO) test -run '^$$' -bench 'BenchmarkReinit$$' -benchtime 1x -timeout 60m -v ./reinit

# The shipped scenarios at a realistic size (edms-large: ~1M rows over
# 10,007 users, restored over a populated system), both engines; a few
# minutes, so not part of make test. Reports in results/large.
test-large:
	$(GO) run ./cmd/rehearse run --parallel 1 --report-dir results/large scenarios/large

# Each fuzz target for a bounded number of executions (about 10 s each
# here; make test ends with it); the seed corpora in restore/testdata/fuzz
# and harness/testdata/fuzz run with every go test. A count, not a time:
# a -fuzztime duration can end in a spurious "context deadline exceeded"
# when the machine is busy as it runs out (Go issue 75804, fixed in 1.27).
FUZZ = -fuzztime=100000x -fuzzminimizetime=5000x
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzScanner$$' $(FUZZ) ./restore
	$(GO) test -run '^$$' -fuzz '^FuzzConvert$$' $(FUZZ) ./restore
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' $(FUZZ) ./harness
	$(GO) test -run '^$$' -fuzz '^FuzzTargetFile$$' $(FUZZ) ./harness

serve:
	$(GO) run ./cmd/rehearse serve

clean:
	rm -rf bin

# Builds the PostgreSQL 15 image the container provider (pg/container) runs —
# rehearse/postgres:15, or the REHEARSE_PG_IMAGE env var — from Debian packages with
# mmdebstrap + docker import: no image registry needed. Skips when the image
# exists; FORCE=1 rebuilds. Installs mmdebstrap with apt-get when missing.
.PHONY: pg-image
pg-image:
	bash images/postgres/build.sh
