#!/bin/sh
# Entrypoint of the local redis:7-alpine image (Debian redis-server 7), following the
# official image: `redis-server` by default, options or a .conf as first argument go to
# redis-server, /data owned by redis, runs as the redis user, and protected mode is off
# unless a config file given on the command line sets it.
set -e

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

if [ "$1" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
	find . \! -user redis -exec chown redis '{}' +
	exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

if [ "$1" = 'redis-server' ]; then
	shift
	conf=
	case "${1:-}" in *.conf) conf="$1"; shift ;; esac
	if [ -n "$conf" ] && grep -qs '^[[:space:]]*protected-mode' "$conf"; then
		set -- redis-server "$conf" "$@"
	elif [ -n "$conf" ]; then
		set -- redis-server "$conf" --protected-mode no "$@"
	else
		set -- redis-server --protected-mode no "$@"
	fi
fi

umask 0077
exec "$@"
