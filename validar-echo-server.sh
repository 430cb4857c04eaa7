#!/bin/sh
# validar-echo-server.sh — checks that the TP0 server echoes, from inside Docker.
#
#   sh validar-echo-server.sh
#
# Starts a throwaway busybox container attached to the compose network
# (tp0_testing_net), sends one line to server:SERVER_PORT with netcat, and compares
# the first line of the answer with what was sent. No netcat is needed on the host
# and no port is published. Prints exactly one line on stdout:
#   action: test_echo_server | result: success      (exit status 0)
#   action: test_echo_server | result: fail         (exit status 1)
# Every wait is bounded: a server that keeps the connection open, answers nothing or
# is absent gives `fail` after at most ~NC_TIMEOUT+15 seconds, never a hang.
#
# Environment (all optional): NETWORK (tp0_testing_net), SERVER_HOST (server),
# SERVER_PORT (from ./server/config.ini next to this script, else 12345),
# NC_TIMEOUT (seconds to wait for the echo, 5), NC_IMAGE (busybox:latest).
# POSIX sh only: the course's tests run it with `sh`.

NETWORK=${NETWORK:-tp0_testing_net}
SERVER_HOST=${SERVER_HOST:-server}
NC_TIMEOUT=${NC_TIMEOUT:-5}
NC_IMAGE=${NC_IMAGE:-busybox:latest}

if [ -z "${SERVER_PORT:-}" ]; then
  config="$(dirname -- "$0")/server/config.ini"
  if [ -r "$config" ]; then
    SERVER_PORT=$(sed -n 's/^[[:space:]]*SERVER_PORT[[:space:]]*[=:][[:space:]]*\([0-9][0-9]*\).*$/\1/p' "$config" | head -n 1)
  fi
  SERVER_PORT=${SERVER_PORT:-12345}
fi

result() {
  printf 'action: test_echo_server | result: %s\n' "$1"
  [ "$1" = success ]
  exit $?
}

case $NC_TIMEOUT in '' | *[!0-9]*) NC_TIMEOUT=5 ;; esac
command -v docker >/dev/null 2>&1 || result fail

# A message that no stale answer can match.
message="tp0 echo check $$ $(date +%s 2>/dev/null)"
name="tp0-echo-check-$$"

# Inside the container, busybox `timeout` bounds nc (the server may keep the
# connection open after echoing); on the host, `timeout` (when present) bounds the
# docker call itself (image or daemon trouble), and the container is removed anyway.
host_timeout=""
if command -v timeout >/dev/null 2>&1; then
  host_timeout="timeout -k 5 $((NC_TIMEOUT + 15))"
fi
# shellcheck disable=SC2016 # $1.. are expanded by the container's shell
reply=$($host_timeout docker run --rm --name "$name" --network "$NETWORK" "$NC_IMAGE" \
  sh -c 'printf "%s\n" "$1" | timeout -k 1 "$4" nc -w "$4" "$2" "$3"' \
  sh "$message" "$SERVER_HOST" "$SERVER_PORT" "$NC_TIMEOUT" 2>/dev/null </dev/null)
docker rm -f "$name" >/dev/null 2>&1

# First line of the answer, without a trailing CR.
first=$(printf '%s\n' "$reply" | head -n 1 | tr -d '\r')
if [ -n "$reply" ] && [ "$first" = "$message" ]; then
  result success
fi
result fail
