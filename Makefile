SHELL := /bin/sh

# Compose command: `docker compose` (v2 plugin, or the docker-offline shim) when it
# answers, else the standalone `docker-compose`. Override with `make COMPOSE=...`.
COMPOSE ?= $(shell if docker compose version >/dev/null 2>&1; then echo "docker compose"; \
	elif command -v docker-compose >/dev/null 2>&1; then echo docker-compose; \
	else echo "docker compose"; fi)
COMPOSE_FILE ?= docker-compose-dev.yaml
# Used only when $(COMPOSE_FILE) does not exist yet, or by `make compose`.
CLIENTS ?= 5
# Server replicas sharing a postgres:15 service (1..9; empty or 0: the single server on the
# file store). Taken from the command line (`make docker-compose-up SERVER_REPLICAS=3`) or
# the environment. When it is set, docker-compose-up always rewrites $(COMPOSE_FILE) (for
# $(CLIENTS) clients, CLIENT_MODE), so the file matches what was asked for.
SERVER_REPLICAS ?=
# Seconds `docker-compose-down` lets the containers shut down after SIGTERM.
GRACE ?= 10

default: build

all: build docker-image

# `npm ci` installs exactly the lock file; where the registry lacks other platforms'
# optional packages npm refuses the lock, and `npm install` (same lock) is used instead.
deps: node_modules
node_modules: package.json package-lock.json
	npm ci || { echo "npm ci refused the lock file; using npm install" >&2; npm install; }
	@touch node_modules
.PHONY: deps

build: node_modules
	npm run build
.PHONY: build

test: node_modules
	npm test
.PHONY: test

# Docker end-to-end suite (builds the images once, runs every scenario, ~3 min).
test-e2e:
	./scripts/e2e.sh
.PHONY: test-e2e

# The legacy builder leaves every intermediate stage behind as a dangling image; run
# `docker image prune -f` from time to time (not here: those images are the build
# cache that makes the next build fast).
docker-image:
	docker build --force-rm -f ./server/Dockerfile -t "server:latest" .
	docker build --force-rm -f ./client/Dockerfile -t "client:latest" .
.PHONY: docker-image

# Writes $(COMPOSE_FILE) for $(CLIENTS) clients; CLIENT_MODE=echo|bet|batch (default batch),
# SERVER_REPLICAS=N for N server replicas on PostgreSQL.
compose:
	SERVER_REPLICAS="$(SERVER_REPLICAS)" ./generar-compose.sh $(COMPOSE_FILE) $(CLIENTS)
.PHONY: compose

# Created only when missing: docker-compose-up never overwrites a file you generated
# (unless SERVER_REPLICAS is given: then it is rewritten through `compose`, below).
$(COMPOSE_FILE):
	SERVER_REPLICAS="$(SERVER_REPLICAS)" ./generar-compose.sh $@ $(CLIENTS)

ifneq ($(strip $(SERVER_REPLICAS)),)
COMPOSE_DEP := compose
else
COMPOSE_DEP := $(COMPOSE_FILE)
endif

# Batch agencies need .data/agency-N.csv: missing files are filled in first (the course's
# files when they are around, else synthetic ones shaped like them; see .data/README.md).
# DATA=check only reports missing files (and fails) instead.
DATA ?= prepare
agency-data: docker-image $(COMPOSE_DEP)
	sh ./scripts/agency-data.sh prepare $(COMPOSE_FILE)
.PHONY: agency-data

# --remove-orphans: containers of project tp0 that the file no longer lists (say the
# replicas of an earlier SERVER_REPLICAS run) are removed, so the name `server` never
# reaches a leftover server.
docker-compose-up: docker-image $(COMPOSE_DEP)
	sh ./scripts/agency-data.sh $(DATA) $(COMPOSE_FILE)
	$(COMPOSE) -f $(COMPOSE_FILE) up -d --remove-orphans
.PHONY: docker-compose-up

# SIGTERM with a grace period, then `down -v`: containers, network and the anonymous
# volumes go (with replicas, the PostgreSQL data: the next run starts from an empty
# database, as the single server starts from an empty bets.csv in a new container).
docker-compose-down:
	$(COMPOSE) -f $(COMPOSE_FILE) stop -t $(GRACE)
	$(COMPOSE) -f $(COMPOSE_FILE) down -v --remove-orphans
.PHONY: docker-compose-down

docker-compose-logs:
	$(COMPOSE) -f $(COMPOSE_FILE) logs -f
.PHONY: docker-compose-logs

# Health check of a running server (Part 1, ex. 3).
validate-echo:
	sh ./validar-echo-server.sh
.PHONY: validate-echo
