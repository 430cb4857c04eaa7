#!/bin/sh
# agency-data.sh — makes sure every batch agency of a compose file has its bets file.
#
#   scripts/agency-data.sh prepare [compose-file]   # fill in missing .data/agency-N.csv
#   scripts/agency-data.sh check   [compose-file]   # only say what is missing (exit 1)
#
# The agencies are the `CLI_ID=N` services of the file (default docker-compose-dev.yaml)
# whose mode is batch. A missing .data/agency-N.csv is taken from the first source that
# has it:
#   1. .data/dataset.zip        the course's files, carried by the repository as the course
#                               skeleton carries them
#   2. $COURSE_DATA, $SHARED_DIR/data or ../shared/data
#                               a folder with the course's agency-N.csv files
#   3. synthetic data shaped like the course's (26,936 / 25,518 / 16,014 / 9,238 / 991
#      bets with 2, 3, 3, 2, 0 winners, repeated), written by the project's generator
#      inside the client:latest image (so only Docker is needed)
# Files already in .data/ are never touched. POSIX sh; unzip, python3 or Docker's busybox
# image for the zip.
set -eu

# Folders given relative to where we were called from stay meaningful after the cd below.
absolute() { case $1 in '' | /*) printf '%s' "$1" ;; *) printf '%s/%s' "$(pwd -P)" "$1" ;; esac; }
COURSE_DATA=$(absolute "${COURSE_DATA:-}")
SHARED_DIR=$(absolute "${SHARED_DIR:-}")
cd -- "$(dirname -- "$0")/.."
PROG=agency-data.sh
DATA=.data
IMAGE=${CLIENT_IMAGE:-client:latest}

usage() {
  echo "usage: $PROG prepare|check [compose-file]" >&2
  exit 2
}
say() { printf '%s: %s\n' "$PROG" "$*" >&2; }

[ $# -ge 1 ] && [ $# -le 2 ] || usage
action=$1
compose=${2:-docker-compose-dev.yaml}
case $action in prepare | check) ;; *) usage ;; esac
[ -f "$compose" ] || {
  say "$compose does not exist (write it with ./generar-compose.sh $compose <clients>)"
  exit 1
}

# Agency ids of the batch clients: each service lists CLI_ID=N, then CLI_MODE=<mode>.
agencies=$(awk '
  /CLI_ID=/ { split($0, kv, "="); id = kv[2] + 0 }
  /CLI_MODE=batch/ && id { print id; id = 0 }
' "$compose")

missing() {
  for id in $agencies; do
    [ -f "$DATA/agency-$id.csv" ] || printf '%s\n' "$id"
  done
}

from_zip() { # from_zip <id>: extracts agency-<id>.csv (at any depth) from the archive
  zip=$DATA/dataset.zip
  [ -f "$zip" ] || return 1
  if command -v unzip >/dev/null 2>&1; then
    unzip -o -j -q "$zip" "agency-$1.csv" "*/agency-$1.csv" -d "$DATA" 2>/dev/null || true
  elif command -v python3 >/dev/null 2>&1; then
    python3 - "$zip" "agency-$1.csv" "$DATA" <<'EOF'
import sys, zipfile, os
archive, name, out = sys.argv[1:]
with zipfile.ZipFile(archive) as z:
    for member in z.namelist():
        if os.path.basename(member) == name:
            with z.open(member) as src, open(os.path.join(out, name + ".tmp"), "wb") as dst:
                dst.write(src.read())
            os.replace(os.path.join(out, name + ".tmp"), os.path.join(out, name))
            break
EOF
  elif docker run --rm --user "$(id -u):$(id -g)" -v "$(pwd -P)/$DATA:/data" busybox:latest \
    unzip -o -j -q /data/dataset.zip "agency-$1.csv" "*/agency-$1.csv" -d /data >/dev/null 2>&1; then
    : # neither unzip nor python3 here, but make docker-compose-up has Docker
  else
    say "found $zip but neither unzip, python3 nor Docker's busybox image to open it"
    return 1
  fi
  [ -f "$DATA/agency-$1.csv" ]
}

course_dir() { # prints the first folder that holds the course's agency files
  for d in "${COURSE_DATA:-}" "${SHARED_DIR:+$SHARED_DIR/data}" ../shared/data; do
    if [ -n "$d" ] && [ -f "$d/agency-1.csv" ]; then
      printf '%s\n' "$d"
      return 0
    fi
  done
  return 1
}

synthesize() { # synthesize <ids...>: course-shaped synthetic files for these agencies
  max=0
  for id in "$@"; do [ "$id" -gt "$max" ] && max=$id; done
  tmp=$(mktemp -d "$DATA/.synthetic.XXXXXX")
  # The generator runs in the agency image as the calling user, so the files are ours.
  if ! docker run --rm --user "$(id -u):$(id -g)" -v "$(pwd -P)/$tmp:/out" \
    --entrypoint node "$IMAGE" dist/tools/gen-data.js --course --agencies "$max" --out /out \
    >/dev/null; then
    rm -rf "$tmp"
    say "could not run the data generator in $IMAGE (build it first: make docker-image)"
    return 1
  fi
  for id in "$@"; do mv "$tmp/agency-$id.csv" "$DATA/agency-$id.csv"; done
  rm -rf "$tmp"
}

todo=$(missing)
if [ "$action" = prepare ] && [ -n "$todo" ]; then
  mkdir -p "$DATA"
  for id in $todo; do
    if from_zip "$id"; then say "$DATA/agency-$id.csv: from $DATA/dataset.zip"; fi
  done
  todo=$(missing)
  if [ -n "$todo" ] && dir=$(course_dir); then
    for id in $todo; do
      if [ -f "$dir/agency-$id.csv" ]; then
        cp "$dir/agency-$id.csv" "$DATA/agency-$id.csv"
        chmod u+w "$DATA/agency-$id.csv" # the course's tests overwrite agency-1.csv
        say "$DATA/agency-$id.csv: the course's file from $dir"
      fi
    done
    todo=$(missing)
  fi
  if [ -n "$todo" ]; then
    # shellcheck disable=SC2086 # ids are digits
    if synthesize $todo; then
      for id in $todo; do say "$DATA/agency-$id.csv: synthetic, shaped like the course's data"; done
    fi
    todo=$(missing)
  fi
fi

if [ -n "$todo" ]; then
  for id in $todo; do say "missing $DATA/agency-$id.csv (agency $id of $compose)"; done
  say "put the course's files there (or its dataset.zip in $DATA/), or run: make agency-data"
  exit 1
fi
