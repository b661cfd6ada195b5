#!/usr/bin/env bash
# docker-entrypoint.sh — entrypoint of the locally built rehearse/postgres:15
# image (see build.sh). It honours the same variables as the official postgres
# image's entrypoint, for the parts rehearse and testcontainers-go's postgres
# module use:
#
#   POSTGRES_USER             superuser to create (default: postgres)
#   POSTGRES_PASSWORD         its password (required unless
#                             POSTGRES_HOST_AUTH_METHOD=trust)
#   POSTGRES_DB               database to create (default: $POSTGRES_USER)
#   POSTGRES_HOST_AUTH_METHOD auth for TCP clients (default: scram-sha-256;
#                             md5 and trust are accepted too)
#   POSTGRES_INITDB_ARGS      extra initdb arguments (split on whitespace)
#   PGDATA                    data directory (image default /var/lib/postgresql/data)
#
# Arguments: "postgres [-c key=value ...]" (the image's CMD), or only flags
# ("-c fsync=off ..."), which are passed to postgres; any other command is
# exec'ed as is.
#
# Unlike the official image, the server is started exactly ONCE: the cluster
# is copied from one initdb'd at build time (superuser "postgres"; any other
# POSTGRES_USER, or POSTGRES_INITDB_ARGS, runs initdb instead), the password
# is set and the database created in single-user mode (postgres --single,
# which logs no "ready" line), and only then is the real server exec'ed as
# PID 1. So "database system is ready to accept connections"
# appears ONCE per container start — wait for one occurrence, not two
# (testcontainers-go's postgres.BasicWaitStrategies() waits for two and would
# time out). /docker-entrypoint-initdb.d is not processed.
#
# Initialisation runs only when $PGDATA holds no cluster (PG_VERSION missing).
# initdb runs with --no-sync: the image is for throwaway servers (rehearse puts
# PGDATA on a tmpfs). REHEARSE_NO_TEMPLATE=1 forces initdb.
set -Eeo pipefail

log() { printf '%s [entrypoint] %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S.%3N UTC')" "$*" >&2; }

# "-c x=y" (or any first argument starting with "-") means flags for postgres.
if [ "${1:0:1}" = '-' ]; then
	set -- postgres "$@"
fi

if [ "$1" != 'postgres' ]; then
	exec "$@"
fi

: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA

# As root: prepare the directories, then re-exec this script as "postgres"
# (initdb and postgres refuse to run as root).
if [ "$(id -u)" = '0' ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chown postgres:postgres "$PGDATA" /var/run/postgresql
	chmod 0700 "$PGDATA"
	chmod 3777 /var/run/postgresql
	exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
fi

# Quote an SQL identifier ("name", embedded " doubled) and a literal ('x', ' doubled).
quote_ident() { local s=${1//\"/\"\"}; printf '"%s"' "$s"; }
quote_literal() { local s=${1//\'/\'\'}; printf "'%s'" "$s"; }

# Run SQL in single-user mode (no listening server, so no "ready" log line).
# Statements end with ";" + an empty line (-j). On failure the output is
# printed with the password masked.
single_user() {
	local what=$1 sql=$2 out rc=0
	out=$(printf '%s\n' "$sql" | postgres --single -j -D "$PGDATA" \
		-c fsync=off -c full_page_writes=off -c log_min_messages=warning postgres 2>&1) || rc=$?
	if [ "$rc" != 0 ] || grep -q 'ERROR:' <<<"$out"; then
		log "error: $what failed:"
		if [ -n "$POSTGRES_PASSWORD" ]; then out=${out//"$POSTGRES_PASSWORD"/********}; fi
		printf '%s\n' "$out" >&2
		exit 1
	fi
}

# A cluster initdb'd at image build time for the superuser "postgres"
# (see build.sh); copying it is ~0.7 s faster than initdb.
TEMPLATE=/usr/local/lib/rehearse/pgdata-${PG_MAJOR:-15}

write_hba() {
	cat >"$PGDATA/pg_hba.conf" <<-EOF
		# written by docker-entrypoint.sh
		local all         all     trust
		host  all         all     all $1
		local replication all     trust
		host  replication all     all $1
	EOF
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	: "${POSTGRES_USER:=postgres}"
	: "${POSTGRES_DB:=$POSTGRES_USER}"
	auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
	case "$auth" in
	scram-sha-256 | md5 | trust | password) ;;
	*)
		log "error: POSTGRES_HOST_AUTH_METHOD=$auth is not supported (use scram-sha-256, md5 or trust)"
		exit 1
		;;
	esac
	if [ -z "$POSTGRES_PASSWORD" ] && [ "$auth" != 'trust' ]; then
		log 'error: database is uninitialized and POSTGRES_PASSWORD is not set.'
		log '       Set POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust to allow'
		log '       connections without a password; never do that on a shared host).'
		exit 1
	fi
	t0=$(date +%s%N)
	sql=
	if [ "$POSTGRES_USER" = postgres ] && [ -z "$POSTGRES_INITDB_ARGS" ] &&
		[ -s "$TEMPLATE/PG_VERSION" ] && [ -z "${REHEARSE_NO_TEMPLATE:-}" ]; then
		how="copied the build-time cluster"
		cp -a "$TEMPLATE/." "$PGDATA/"
		if [ -n "$POSTGRES_PASSWORD" ]; then
			sql+="ALTER ROLE postgres PASSWORD $(quote_literal "$POSTGRES_PASSWORD");"$'\n\n'
		fi
	else
		how="initdb"
		pwfile=
		if [ -n "$POSTGRES_PASSWORD" ]; then
			pwfile=$(mktemp)
			printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
		fi
		# TZ: without it initdb scans /usr/share/zoneinfo (~0.5 s).
		# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is split on purpose
		TZ=${TZ:-UTC} initdb --no-sync --username="$POSTGRES_USER" ${pwfile:+--pwfile="$pwfile"} \
			--encoding=UTF8 --locale=C.UTF-8 \
			--auth-local=trust --auth-host="$auth" \
			$POSTGRES_INITDB_ARGS >/dev/null
		if [ -n "$pwfile" ]; then rm -f "$pwfile"; fi
		# Reachable through Docker's port mapping: listen on every interface.
		printf "\n# added by docker-entrypoint.sh\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
	fi
	# Password auth from any address (initdb's default allows only loopback).
	write_hba "$auth"
	if [ "$POSTGRES_DB" != postgres ]; then
		sql+="CREATE DATABASE $(quote_ident "$POSTGRES_DB");"$'\n\n'
	fi
	if [ -n "$sql" ]; then
		single_user "setting up user \"$POSTGRES_USER\" / database \"$POSTGRES_DB\"" "$sql"
	fi
	log "initialised in $((($(date +%s%N) - t0) / 1000000)) ms ($how; superuser \"$POSTGRES_USER\", database \"$POSTGRES_DB\", host auth $auth); starting postgres once"
fi

exec "$@"
