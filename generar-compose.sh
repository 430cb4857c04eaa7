#!/bin/sh
# generar-compose.sh — writes a Docker Compose file for the TP0 lottery.
#
#   ./generar-compose.sh [--mode echo|bet|batch] [--replicas N] <output-file> <clients>
#   CLIENT_MODE=echo ./generar-compose.sh docker-compose-dev.yaml 3
#   SERVER_REPLICAS=3 ./generar-compose.sh docker-compose-dev.yaml 5
#
# The file has a service/container `server` and `client1` … `clientN` on the network
# `testing_net` (172.25.125.0/24) of the compose project `tp0`, so the network is
# `tp0_testing_net`. Configuration is injected, not baked into the images:
# ./server/config.ini and ./client/config.yaml are bind-mounted into the containers
# (editing them needs no rebuild) and no environment variable shadows their keys.
# The server is told through AGENCIES=N how many agencies the draw waits for.
#
# Client mode (flag --mode, else env CLIENT_MODE, else batch):
#   batch  agency N streams ./.data/agency-N.csv (the folder is mounted read-only;
#          `make docker-compose-up` fills in missing files: scripts/agency-data.sh)
#   bet    agency N sends one bet given by NOMBRE/APELLIDO/DOCUMENTO/NACIMIENTO/NUMERO
#   echo   Part 1 echo client (loop.amount messages, loop.period apart)
#
# Server replicas (flag --replicas, else env SERVER_REPLICAS; unset, empty or 0 = none):
# with N (1..9) the single `server` becomes `server1` … `serverN`, all sharing a `postgres`
# service (postgres:15, healthcheck with pg_isready) through DATABASE_URL and all carrying
# the network alias `server`, so the one name `server` resolves to every replica and the
# agencies keep `server.address: server:12345` (an agency starts at replica (id-1) mod N
# and moves to the next when a connection fails). Without replicas the file is the
# single server on the file store, exactly as before the option existed.
#
# TLS (env TLS=1; unset, empty or 0 = off): the server and the agencies talk over mutual TLS.
# The certificates must be in ./.certs (make them with `npm run certs -- --agencies N --out
# .certs`): each container gets only its own files, read-only, as /app/certs/...: the server
# server.crt, server.key and ca.crt; agency N ca.crt, agency-N.crt and agency-N.key (the
# CA's key is never mounted). The server's certificate must carry the name `server`.
# Echo clients stay plain text (the echo check does not use TLS).
#
# Written for POSIX sh (the course's tests run it with `sh`); needs only coreutils.
# Bad arguments: usage on stderr, exit 2, nothing written.

set -eu

PROG=generar-compose.sh
MAX_CLIENTS=250 # 172.25.125.0/24: 253 usable addresses, minus the gateway and the server
MAX_REPLICAS=9
# The PostgreSQL service of the replica layout (a throwaway database of this project: the
# data lives in the image's anonymous volume, which `make docker-compose-down` removes).
PG_USER=quiniela
PG_PASSWORD=quiniela
PG_DB=quiniela

usage() {
  cat >&2 <<EOF
usage: $PROG [--mode echo|bet|batch] [--replicas N] <output-file> <clients>
  <output-file>  compose file to write (e.g. docker-compose-dev.yaml)
  <clients>      number of agencies/clients, an integer from 0 to $MAX_CLIENTS
                 (0 to $((MAX_CLIENTS - 1)) with 1 replica … $((MAX_CLIENTS - MAX_REPLICAS)) with $MAX_REPLICAS)
  --mode MODE    what the clients do (default: \$CLIENT_MODE, else batch):
                 batch = send .data/agency-N.csv in batches, bet = one bet each
                 (NOMBRE, APELLIDO, DOCUMENTO, NACIMIENTO, NUMERO), echo = Part 1 echo client
  --replicas N   server replicas sharing a postgres:15 service, reachable as \`server\`
                 (default: \$SERVER_REPLICAS; unset, empty or 0: one server, file store)
                 an integer from 0 to $MAX_REPLICAS
  env TLS=1      server and agencies over mutual TLS, certificates from ./.certs
                 (make them: npm run certs -- --agencies N --out .certs)
EOF
}

die_usage() {
  printf '%s: %s\n' "$PROG" "$1" >&2
  usage
  exit 2
}

# set_option <--mode|--replicas> <value>
set_option() {
  case $1 in
    --mode) mode=$2 ;;
    --replicas) replicas=$2 ;;
  esac
}

mode=${CLIENT_MODE:-batch}
replicas=${SERVER_REPLICAS:-}
tls=${TLS:-}
while [ $# -gt 0 ]; do
  case $1 in
    -h | --help)
      usage
      exit 0
      ;;
    --mode | --replicas)
      [ $# -ge 2 ] || die_usage "$1 needs a value"
      set_option "$1" "$2"
      shift 2
      ;;
    --mode=* | --replicas=*)
      set_option "${1%%=*}" "${1#*=}"
      shift
      ;;
    --)
      shift
      break
      ;;
    -?*) die_usage "unknown option: $1" ;;
    *) break ;;
  esac
done

[ $# -eq 2 ] || die_usage "expected 2 arguments, got $#"
output=$1
clients=$2

case $tls in
  '' | 0) tls=0 ;;
  1) ;;
  *) die_usage "TLS must be 1 (on) or 0 (off), got '$tls'" ;;
esac
case $mode in
  echo | bet | batch) ;;
  *) die_usage "invalid client mode '$mode' (expected echo, bet or batch)" ;;
esac
[ -n "$output" ] || die_usage "the output file name is empty"
[ ! -d "$output" ] || die_usage "the output '$output' is a directory"
# Drops leading zeros (sh arithmetic would read 010 as octal): decimal <digits>.
decimal() {
  d=${1#"${1%%[!0]*}"}
  printf '%s\n' "${d:-0}"
}

# Replicas: empty (or unset) and 0 mean none; else an integer 1..MAX_REPLICAS.
case $replicas in
  *[!0-9]*) die_usage "the server replicas (--replicas / SERVER_REPLICAS) must be an integer from 0 to $MAX_REPLICAS, got '$replicas'" ;;
esac
if [ -n "$replicas" ]; then
  r=$(decimal "$replicas")
  if [ ${#r} -gt 1 ] || [ "$r" -gt "$MAX_REPLICAS" ]; then
    die_usage "the server replicas (--replicas / SERVER_REPLICAS) must be at most $MAX_REPLICAS, got '$replicas'"
  fi
  replicas=$r
else
  replicas=0
fi

case $clients in
  '' | *[!0-9]*) die_usage "<clients> must be a non-negative integer, got '$clients'" ;;
esac
# Bound the value: every container takes an address of the /24 (253 for containers; two
# are kept free, e.g. for validar-echo-server.sh's netcat container). Without replicas the
# server and up to MAX_CLIENTS clients; N replicas and postgres take N + 1 addresses where
# the server took one, so N fewer clients fit.
max_clients=$MAX_CLIENTS
[ "$replicas" -eq 0 ] || max_clients=$((MAX_CLIENTS - replicas))
digits=$(decimal "$clients")
if [ ${#digits} -gt 3 ] || [ "$digits" -gt "$max_clients" ]; then
  if [ "$replicas" -eq 0 ]; then
    die_usage "<clients> must be at most $MAX_CLIENTS (the /24 network), got '$clients'"
  fi
  die_usage "<clients> must be at most $max_clients with $replicas server replicas and postgres (the /24 network), got '$clients'"
fi
clients=$digits

out_dir=$(dirname -- "$output")
[ -d "$out_dir" ] || die_usage "directory '$out_dir' does not exist"

# Bind-mount sources are relative to the compose file. When it is written at the
# repository root (the usual case) they stay relative, so the file is portable;
# elsewhere they point at this repository with absolute paths.
repo_root=$(cd -- "$(dirname -- "$0")" && pwd -P)
out_dir_abs=$(cd -- "$out_dir" && pwd -P)
if [ "$repo_root" = "$out_dir_abs" ]; then
  root=.
else
  # YAML double-quoted string body: escape backslashes and double quotes.
  root=$(printf '%s\n' "$repo_root" | sed 's/[\\"]/\\&/g')
fi

# Distinct, deterministic single bets for CLIENT_MODE=bet (agency i gets entry
# ((i - 1) mod 10) of these lists, and a document and number of its own).
bet_field() { # bet_field <list> <index>
  printf '%s\n' "$1" | tr ',' '\n' | sed -n "$(($2 % 10 + 1))p"
}
NOMBRES='Santiago Lionel,María José,Agustín,Lucía,Martín,Sofía,Joaquín,Valentina,Tomás,Camila'
APELLIDOS='Lorca,Fornerón,Álvarez,Gómez,Pereyra,Núñez,Domínguez,Benítez,Ibáñez,Suárez'

# A service's first lines, through the given entries of its environment:
# service <name> <image> [NAME=value ...]
service() {
  cat <<EOF
  $1:
    container_name: $1
    image: $2
    environment:
EOF
  shift 2
  [ $# -eq 0 ] || printf '      - %s\n' "$@"
}

# The single server on the file store (./bets.csv inside its container).
single_server() {
  cat <<EOF
# Generated by $PROG — clients: $clients, mode: $mode. Regenerate, do not edit.
name: tp0

services:
EOF
  service server server:latest "AGENCIES=$clients"
  server_tls_env
  cat <<EOF
    networks:
      - testing_net
    volumes:
      - "$root/server/config.ini:/app/config.ini:ro"
EOF
  server_tls_volumes
}

# With TLS=1: the server's certificate, key and the CA its agencies' certificates come from.
server_tls_env() {
  [ "$tls" -eq 1 ] || return 0
  cat <<EOF
      - TLS_CERT_FILE=/app/certs/server.crt
      - TLS_KEY_FILE=/app/certs/server.key
      - TLS_CLIENT_CA_FILE=/app/certs/ca.crt
EOF
}

# Mounts each file on its own: a container sees only its certificates, never the CA's key.
tls_volumes() {
  for f in "$@"; do
    echo "      - \"$root/.certs/$f:/app/certs/$f:ro\""
  done
}

server_tls_volumes() {
  [ "$tls" -eq 1 ] || return 0
  tls_volumes server.crt server.key ca.crt
}

# PostgreSQL and the replicas server1..serverN. Each replica has the network alias `server`:
# Docker's DNS answers that name with every replica's address, which the agencies take as
# their list of servers (and the config's SERVER_IP = server still binds all interfaces).
# The replicas start once PostgreSQL accepts TCP connections: the healthcheck asks over
# 127.0.0.1 because the image's first-start initialisation runs a server on the Unix socket
# only, which pg_isready would otherwise report as ready before the database exists.
replicated_servers() {
  url="postgres://$PG_USER:$PG_PASSWORD@postgres:5432/$PG_DB"
  cat <<EOF
# Generated by $PROG — clients: $clients, mode: $mode, server replicas: $replicas (PostgreSQL). Regenerate, do not edit.
name: tp0

services:
EOF
  service postgres postgres:15 \
    "POSTGRES_USER=$PG_USER" "POSTGRES_PASSWORD=$PG_PASSWORD" "POSTGRES_DB=$PG_DB"
  cat <<EOF
    healthcheck:
      test: ["CMD", "pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432", "-U", "$PG_USER", "-d", "$PG_DB"]
      interval: 1s
      timeout: 5s
      retries: 120
    networks:
      - testing_net
EOF
  n=1
  while [ "$n" -le "$replicas" ]; do
    echo
    service "server$n" server:latest "AGENCIES=$clients" "DATABASE_URL=$url"
    server_tls_env
    cat <<EOF
    networks:
      testing_net:
        aliases:
          - server
    depends_on:
      postgres:
        condition: service_healthy
    volumes:
      - "$root/server/config.ini:/app/config.ini:ro"
EOF
    server_tls_volumes
    n=$((n + 1))
  done
}

generate() {
  if [ "$replicas" -eq 0 ]; then single_server; else replicated_servers; fi

  i=1
  while [ "$i" -le "$clients" ]; do
    echo
    service "client$i" client:latest "CLI_ID=$i" "CLI_MODE=$mode"
    if [ "$mode" != echo ]; then
      # A whole lottery takes well under a second; the course's tests attach
      # `docker compose logs -f` after `up -d` returns and need the draw to show up before
      # the agencies' results. Starting the agencies a moment later keeps the log stream
      # in real time instead of a race between per-container backlogs.
      cat <<EOF
      - CLI_START_DELAY=${AGENCY_START_DELAY:-2s}
EOF
    fi
    if [ "$tls" -eq 1 ] && [ "$mode" != echo ]; then
      cat <<EOF
      - CLI_TLS_CA_FILE=/app/certs/ca.crt
      - CLI_TLS_CERT_FILE=/app/certs/agency-$i.crt
      - CLI_TLS_KEY_FILE=/app/certs/agency-$i.key
EOF
    fi
    if [ "$mode" = bet ]; then
      k=$((i - 1))
      cat <<EOF
      - NOMBRE=$(bet_field "$NOMBRES" "$k")
      - APELLIDO=$(bet_field "$APELLIDOS" "$((k * 3))")
      - DOCUMENTO=$((30904464 + i * 1117))
      - NACIMIENTO=$((1960 + i % 45))-$(printf '%02d' $((i % 12 + 1)))-$(printf '%02d' $((i % 28 + 1)))
      - NUMERO=$(((7574 + i * 379) % 10000))
EOF
    fi
    cat <<EOF
    networks:
      - testing_net
    depends_on:
EOF
    if [ "$replicas" -eq 0 ]; then
      echo "      - server"
    else
      n=1
      while [ "$n" -le "$replicas" ]; do
        echo "      - server$n"
        n=$((n + 1))
      done
    fi
    cat <<EOF
    volumes:
      - "$root/client/config.yaml:/app/config.yaml:ro"
EOF
    if [ "$mode" = batch ]; then
      # The folder, not the file: the repository always has .data/, so the mount never
      # points at a missing path (Docker would refuse to start the whole project); an
      # agency whose file is missing says so itself and exits 1.
      # `make docker-compose-up` fills in missing files first (scripts/agency-data.sh).
      cat <<EOF
      - "$root/.data:/app/.data:ro"
EOF
    fi
    if [ "$tls" -eq 1 ] && [ "$mode" != echo ]; then
      tls_volumes ca.crt "agency-$i.crt" "agency-$i.key"
    fi
    i=$((i + 1))
  done

  cat <<EOF

networks:
  testing_net:
    ipam:
      driver: default
      config:
        - subnet: 172.25.125.0/24
EOF
}

# Write to a temporary file next to the output, then rename: the output is either
# the complete new file or left untouched.
tmp=$(mktemp "$out_dir/.generar-compose.XXXXXX")
trap 'rm -f "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
generate >"$tmp"
chmod 644 "$tmp"
mv -f -- "$tmp" "$output"
trap - EXIT
if [ "$replicas" -eq 0 ]; then
  printf '%s: wrote %s (server + %s %s client(s))\n' "$PROG" "$output" "$clients" "$mode" >&2
else
  printf '%s: wrote %s (postgres + %s server replica(s) + %s %s client(s))\n' \
    "$PROG" "$output" "$replicas" "$clients" "$mode" >&2
fi
if [ "$tls" -eq 1 ]; then
  printf '%s: TLS on: the certificates must be in %s/.certs (server.crt, server.key, ca.crt, agency-N.crt, agency-N.key); make them with: npm run certs -- --agencies %s --out .certs\n' \
    "$PROG" "$repo_root" "$clients" >&2
  missing=
  for f in server.crt server.key ca.crt; do
    [ -f "$repo_root/.certs/$f" ] || missing="$missing $f"
  done
  [ "$mode" = echo ] || [ "$clients" -eq 0 ] || [ -f "$repo_root/.certs/agency-$clients.crt" ] ||
    missing="$missing agency-$clients.crt"
  [ -z "$missing" ] || printf '%s: note: missing in .certs:%s\n' "$PROG" "$missing" >&2
fi
if [ "$mode" = batch ]; then
  missing=0 first=
  i=1
  while [ "$i" -le "$clients" ]; do
    if [ ! -f "$repo_root/.data/agency-$i.csv" ]; then
      missing=$((missing + 1))
      [ -n "$first" ] || first=.data/agency-$i.csv
    fi
    i=$((i + 1))
  done
  [ "$missing" -eq 0 ] ||
    printf '%s: note: %s of the agencies'"'"' files are not in .data/ yet (first: %s); make docker-compose-up fills them in (scripts/agency-data.sh)\n' \
      "$PROG" "$missing" "$first" >&2
fi
