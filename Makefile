SHELL := /bin/sh

# Compose command: `docker compose` (v2 plugin, or the docker-offline shim) when it
# answers, else the standalone `docker-compose`. Override with `make COMPOSE=...`.
COMPOSE ?= $(shell if docker compose version >/dev/null 2>&1; then echo "docker compose"; \
	elif command -v docker-compose >/dev/null 2>&1; then echo docker-compose; \
	else echo "docker compose"; fi)
COMPOSE_FILE ?= docker-compose-dev.yaml
# Used only when $(COMPOSE_FILE) does not exist yet, or by `make compose`.
CLIENTS ?= 5
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

# Writes $(COMPOSE_FILE) for $(CLIENTS) clients; CLIENT_MODE=echo|bet|batch (default batch).
compose:
	./generar-compose.sh $(COMPOSE_FILE) $(CLIENTS)
.PHONY: compose

# Created only when missing: docker-compose-up never overwrites a file you generated.
$(COMPOSE_FILE):
	./generar-compose.sh $@ $(CLIENTS)

# Batch agencies need .data/agency-N.csv: missing files are filled in first (the course's
# files when they are around, else synthetic ones shaped like them; see .data/README.md).
# DATA=check only reports missing files (and fails) instead.
DATA ?= prepare
agency-data: docker-image $(COMPOSE_FILE)
	sh ./scripts/agency-data.sh prepare $(COMPOSE_FILE)
.PHONY: agency-data

docker-compose-up: docker-image $(COMPOSE_FILE)
	sh ./scripts/agency-data.sh $(DATA) $(COMPOSE_FILE)
	$(COMPOSE) -f $(COMPOSE_FILE) up -d
.PHONY: docker-compose-up

docker-compose-down:
	$(COMPOSE) -f $(COMPOSE_FILE) stop -t $(GRACE)
	$(COMPOSE) -f $(COMPOSE_FILE) down
.PHONY: docker-compose-down

docker-compose-logs:
	$(COMPOSE) -f $(COMPOSE_FILE) logs -f
.PHONY: docker-compose-logs

# Health check of a running server (Part 1, ex. 3).
validate-echo:
	sh ./validar-echo-server.sh
.PHONY: validate-echo
