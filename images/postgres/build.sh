#!/usr/bin/env bash
# build.sh — build the PostgreSQL 15 image that rehearse's container provider
# (package pg/container) runs, locally, from Debian packages. No image registry
# is contacted: the root filesystem comes from mmdebstrap and the machine's
# configured Debian mirror, and "docker import" turns it into an image.
#
#   images/postgres/build.sh            # or: make pg-image
#
# Environment:
#   REHEARSE_PG_IMAGE  image name (default rehearse/postgres:15)
#   FORCE=1            rebuild even if the image exists (otherwise: skip)
#   MIRROR             Debian mirror URI (default: the one configured for
#                      bookworm in /etc/apt/sources.list{,.d/*}; its
#                      bookworm-updates and bookworm-security entries are
#                      used too when present)
#   KEEP_ROOTFS=1      keep the intermediate rootfs tarball (path printed)
#
# Needs: docker (a running engine), root or sudo (apt-get install mmdebstrap
# when it is missing; mmdebstrap in root mode). Measured on a 2-vCPU VM:
# 2-3 min, almost all of it mmdebstrap downloading and installing packages
# (plus ~30 s the first time for apt-get update + install mmdebstrap).
#
# The image (see docker-entrypoint.sh for the runtime contract):
#   ENTRYPOINT ["docker-entrypoint.sh"]  CMD ["postgres"]
#   ENV PATH=...:/usr/lib/postgresql/15/bin  PGDATA=/var/lib/postgresql/data
#   ENV LANG=C.UTF-8  EXPOSE 5432  STOPSIGNAL SIGINT  — and no VOLUME, so a
#   container that is not removed leaks no anonymous volume.
# Docker Engine 20.10 (Debian 12's docker.io) rejects STOPSIGNAL in
# "docker import --change" ("stopsignal is not a valid change command"): the
# script then adds it with a one-line, metadata-only "FROM <the imported
# image>" build (DOCKER_BUILDKIT=0, nothing pulled). pgcontainer also sets
# StopSignal=SIGINT on every container it creates, so either way works.
# The image also holds a cluster initdb'd at build time
# (/usr/local/lib/rehearse/pgdata-15, superuser "postgres") that the
# entrypoint copies instead of running initdb at each start.
# Debian's package would create a "main" cluster on install; a setup hook
# writes create_main_cluster = false first (as the official image does).
# Documentation, man pages, translations and the LLVM JIT (PostgreSQL then
# runs without JIT, which it does silently) are left out to keep it small.
set -Eeuo pipefail

IMAGE="${REHEARSE_PG_IMAGE:-rehearse/postgres:15}"
PG_MAJOR=15
SUITE=bookworm
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ENTRYPOINT_SRC="$HERE/docker-entrypoint.sh"

say() { printf '[pg-image] %s\n' "$*" >&2; }
die() { printf '[pg-image] error: %s\n' "$*" >&2; exit 1; }
run() { say "+ $*"; "$@"; }

t_start=$(date +%s)

command -v docker >/dev/null 2>&1 || die "docker is not installed"
docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info failed); start it and retry"
[ -r "$ENTRYPOINT_SRC" ] || die "missing $ENTRYPOINT_SRC"

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
	if [ "${FORCE:-0}" != 1 ]; then
		say "image $IMAGE already exists ($(docker image inspect -f '{{.Id}} {{.Size}} bytes' "$IMAGE")); nothing to do (FORCE=1 rebuilds)"
		exit 0
	fi
	say "image $IMAGE exists; FORCE=1: rebuilding"
fi
old_id=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)

SUDO=()
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null 2>&1 || die "run as root (apt-get and mmdebstrap need it) or install sudo"
	SUDO=(sudo)
fi

# 1. mmdebstrap
if ! command -v mmdebstrap >/dev/null 2>&1; then
	say "mmdebstrap is missing: installing it with apt-get"
	run "${SUDO[@]}" apt-get update
	run "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y mmdebstrap
fi

# 2. The mirror: the machine's own apt configuration for $SUITE.
# Prints "deb URI SUITE COMPONENTS" lines for SUITE, SUITE-updates and
# SUITE-security from one-line (.list) and deb822 (.sources) files.
apt_lines() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		awk -v s="$SUITE" '
			/^[[:space:]]*deb[[:space:]]/ {
				i = 2
				if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
				uri = $i; suite = $(i + 1); comps = ""
				for (j = i + 2; j <= NF; j++) comps = comps " " $j
				if (suite == s || suite == s "-updates" || suite == s "-security")
					print "deb " uri " " suite comps
			}' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk -v s="$SUITE" '
			function flush(   n, u, k, su, i, j) {
				if (types ~ /(^|[[:space:]])deb([[:space:]]|$)/ && enabled !~ /^[[:space:]]*no/) {
					n = split(uris, u, /[[:space:]]+/); k = split(suites, su, /[[:space:]]+/)
					for (i = 1; i <= n; i++) for (j = 1; j <= k; j++)
						if (u[i] != "" && (su[j] == s || su[j] == s "-updates" || su[j] == s "-security"))
							print "deb " u[i] " " su[j] " " comps
				}
				types = uris = suites = comps = enabled = ""
			}
			/^[[:space:]]*#/ { next }
			/^[[:space:]]*$/ { flush(); next }
			{
				key = tolower($1); sub(/:$/, "", key); val = $0; sub(/^[^:]*:[[:space:]]*/, "", val)
				if (key == "types") types = val
				else if (key == "uris") uris = val
				else if (key == "suites") suites = val
				else if (key == "components") comps = val
				else if (key == "enabled") enabled = tolower(val)
			}
			END { flush() }' "$f"
	done
}

MIRRORS=()
if [ -n "${MIRROR:-}" ]; then
	MIRRORS=("deb $MIRROR $SUITE main")
else
	while IFS= read -r line; do
		[ -n "$line" ] && MIRRORS+=("$line")
	done < <(apt_lines | awk '!seen[$0]++')
	found=0
	for l in "${MIRRORS[@]}"; do
		[ "$(awk '{print $3}' <<<"$l")" = "$SUITE" ] && found=1
	done
	[ "$found" = 1 ] || die "no '$SUITE' entry in /etc/apt/sources.list or /etc/apt/sources.list.d/; set MIRROR=http://your.debian.mirror/debian"
fi
for l in "${MIRRORS[@]}"; do say "apt source: $l"; done

# 3. Root filesystem.
work=$(mktemp -d "${TMPDIR:-/tmp}/rehearse-pg-image.XXXXXX")
cleanup() {
	if [ "${KEEP_ROOTFS:-0}" = 1 ]; then
		say "kept $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
rootfs="$work/rootfs.tar"

excludes=(
	'/usr/share/doc/*'
	'/usr/share/man/*'
	'/usr/share/info/*'
	'/usr/share/locale/*'
	'/usr/share/lintian/*'
	'/usr/share/linda/*'
	"/usr/lib/postgresql/$PG_MAJOR/lib/bitcode/*"
	"/usr/lib/postgresql/$PG_MAJOR/lib/llvmjit*"
	'/usr/lib/*/libLLVM*'
	'/usr/lib/*/libz3.so*'
)
dpkgopts=()
for p in "${excludes[@]}"; do dpkgopts+=(--dpkgopt="path-exclude=$p"); done
dpkgopts+=(--dpkgopt='path-include=/usr/share/doc/*/copyright')

# Runs after the packages are installed, with the rootfs as $1.
cat >"$work/customize-rootfs.sh" <<EOF
#!/bin/sh
set -eu
root=\$1
chmod 0755 "\$root/usr/local/bin/docker-entrypoint.sh"
# In case the package created a cluster anyway.
rm -rf "\$root/etc/postgresql/$PG_MAJOR" "\$root/var/lib/postgresql/$PG_MAJOR"
# (mmdebstrap empties /run afterwards: docker-entrypoint.sh creates the
# socket directory /run/postgresql at start.)
mkdir -p "\$root/var/lib/postgresql/data" "\$root/usr/local/lib/rehearse"
chroot "\$root" chown postgres:postgres /var/lib/postgresql /var/lib/postgresql/data /usr/local/lib/rehearse
chmod 0700 "\$root/var/lib/postgresql/data"
# A cluster for superuser "postgres" that docker-entrypoint.sh copies
# instead of running initdb at every container start.
chroot "\$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TZ=UTC LANG=C.UTF-8 \\
	setpriv --reuid=postgres --regid=postgres --init-groups \\
	/usr/lib/postgresql/$PG_MAJOR/bin/initdb --no-sync --username=postgres \\
	--encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 \\
	-D /usr/local/lib/rehearse/pgdata-$PG_MAJOR >/dev/null
printf "\\n# added by build.sh\\nlisten_addresses = '*'\\ndynamic_shared_memory_type = posix\\n" \\
	>>"\$root/usr/local/lib/rehearse/pgdata-$PG_MAJOR/postgresql.conf"
# Trim.
rm -rf "\$root"/usr/share/doc/*/[!c]* "\$root"/usr/share/man/* "\$root"/usr/share/info/* \\
	"\$root"/usr/share/locale/* "\$root"/usr/share/postgresql/*/man \\
	"\$root"/var/cache/apt/* "\$root"/var/lib/apt/lists/* "\$root"/var/log/*.log \\
	"\$root"/var/cache/debconf/*-old
EOF
chmod 0755 "$work/customize-rootfs.sh"

t_rootfs=$(date +%s)
say "building the root filesystem (mmdebstrap minbase + postgresql-$PG_MAJOR) in $work"
run "${SUDO[@]}" mmdebstrap \
	--variant=minbase \
	--include="postgresql-$PG_MAJOR" \
	--aptopt='APT::Install-Recommends "false"' \
	"${dpkgopts[@]}" \
	--setup-hook='mkdir -p "$1/etc/postgresql-common/createcluster.d"' \
	--setup-hook='printf "create_main_cluster = false\n" > "$1/etc/postgresql-common/createcluster.d/rehearse.conf"' \
	--customize-hook="copy-in $ENTRYPOINT_SRC /usr/local/bin" \
	--customize-hook="$work/customize-rootfs.sh" \
	"$SUITE" "$rootfs" "${MIRRORS[@]}"
say "root filesystem: $(du -h "$rootfs" | cut -f1) in $(($(date +%s) - t_rootfs)) s"

# 4. Image.
pgversion=$( { tar -xOf "$rootfs" ./var/lib/dpkg/status 2>/dev/null || tar -xOf "$rootfs" var/lib/dpkg/status; } |
	awk -v pkg="postgresql-$PG_MAJOR" '$0 == "Package: " pkg {p = 1} p && /^Version:/ {print $2; exit}' || true)
say "postgresql-$PG_MAJOR package version: ${pgversion:-unknown}"
changes=(
	'ENTRYPOINT ["docker-entrypoint.sh"]'
	'CMD ["postgres"]'
	"ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/$PG_MAJOR/bin"
	'ENV PGDATA=/var/lib/postgresql/data'
	'ENV LANG=C.UTF-8'
	"ENV PG_MAJOR=$PG_MAJOR"
	'EXPOSE 5432'
	"LABEL dev.rehearse.image=postgres dev.rehearse.pg-version=${pgversion:-unknown}"
)
msg="rehearse: mmdebstrap $SUITE minbase + postgresql-$PG_MAJOR ${pgversion:-}"
do_import() {
	local args=() c
	for c in "$@"; do args+=(--change "$c"); done
	docker import "${args[@]}" --message "$msg" "$rootfs" "$IMAGE" >/dev/null 2>"$work/import.err"
}
t_import=$(date +%s)
say "docker import $rootfs $IMAGE"
for c in "${changes[@]}" 'STOPSIGNAL SIGINT'; do say "  --change '$c'"; done
if ! do_import "${changes[@]}" 'STOPSIGNAL SIGINT'; then
	grep -qi 'stopsignal' "$work/import.err" || die "docker import failed: $(cat "$work/import.err")"
	# Docker Engine 20.10 (Debian 12's docker.io) answers "stopsignal is not
	# a valid change command". Import without it, then add it with a
	# metadata-only build (no layer, no pull: FROM is the local image).
	say "this engine's docker import rejects STOPSIGNAL ($(tr -d '\n' <"$work/import.err")); importing without it"
	do_import "${changes[@]}" || die "docker import failed: $(cat "$work/import.err")"
	mkdir -p "$work/ctx"
	printf 'FROM %s\nSTOPSIGNAL SIGINT\n' "$IMAGE" >"$work/ctx/Dockerfile"
	say "adding STOPSIGNAL SIGINT: DOCKER_BUILDKIT=0 docker build (FROM the local image, nothing pulled)"
	if ! DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" "$work/ctx" >/dev/null 2>"$work/build.err"; then
		say "warning: could not add STOPSIGNAL ($(tail -n 3 "$work/build.err" | tr '\n' ' '))"
		say "         pgcontainer sets StopSignal=SIGINT on every container it creates anyway"
	fi
fi
say "imported in $(($(date +%s) - t_import)) s"

new_id=$(docker image inspect -f '{{.Id}}' "$IMAGE")
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
	say "removing the previous image $old_id (if no container uses it)"
	docker image rm "$old_id" >/dev/null 2>&1 || say "  (still in use: left alone)"
fi

# 5. Check the metadata the Go side relies on.
stop=$(docker image inspect -f '{{.Config.StopSignal}}' "$IMAGE")
vols=$(docker image inspect -f '{{json .Config.Volumes}}' "$IMAGE")
[ "$stop" = SIGINT ] || say "warning: image has StopSignal '$stop' (pgcontainer sets SIGINT per container)"
case "$vols" in null | '{}') ;; *) die "image declares volumes $vols; it must not" ;; esac
say "built $IMAGE ($new_id, $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')) in $(($(date +%s) - t_start)) s"
