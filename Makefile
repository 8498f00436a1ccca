# Taxiway: the two commands README starts with are `make run` and `make test`.
GO ?= go
BIN := bin

STATICCHECK_VERSION := v0.8.2
# Modules of this repository: the root one (what xcaddy users pull) and
# deploy/, whose compose-file tests need compose-go.
MODULES := . deploy

.PHONY: run cluster test test-compose test-pgbouncer test-faults soak build vet fmt-check tidy-check staticcheck bench tools fuzz

## run: the whole stack locally on http://localhost:9000 (Ctrl-C stops it)
run: tools build
	$(BIN)/taxiway local --gateway-bin $(BIN)/gateway

## cluster: the stack past one machine, on this one: a front on http://localhost:9000,
## 2 gateways, 2 cores, 2 token services, Postgres primary + synchronous hot standby
cluster: tools build
	$(BIN)/taxiway local -replicas 2 --gateway-bin $(BIN)/gateway

## test: formatting, tidy modules, vet, staticcheck, every test against a real
## Postgres and a real Caddy, and docker-compose.yml on a real Docker engine
## (test-compose). The binaries are built once and shared.
test: tools fmt-check tidy-check vet staticcheck build
	@set -e; for m in $(MODULES); do \
		echo "go test ($$m)"; \
		(cd $$m && TAXIWAY_TEST_TAXIWAY_BIN=$(CURDIR)/$(BIN)/taxiway TAXIWAY_TEST_GATEWAY_BIN=$(CURDIR)/$(BIN)/gateway \
			$(GO) test -count=1 -timeout 30m ./...); \
	done
	@$(MAKE) --no-print-directory test-pgbouncer
	@$(MAKE) --no-print-directory test-faults
	@$(MAKE) --no-print-directory test-compose

## test-compose: docker-compose.yml for real: builds the images and runs the stack on a real
## Docker engine, walks README's compose section, isolation, hardening, operations and scaling
## (installs docker.io, mmdebstrap and the compose/buildx plugins when missing; starts and stops
## its own dockerd if none runs; the last step of `make test`)
test-compose:
	bash scripts/test-compose.sh

## test-pgbouncer: the database tests again, through pgbouncer in transaction pooling mode
test-pgbouncer: tools
	TAXIWAY_TEST_PGBOUNCER=1 $(GO) test -count=1 -timeout 10m ./taxiicore ./tokenservice ./internal/...

## test-faults: kill -9 a core, a token service and a gateway, restart the Postgres primary and
## fail over to the standby, under load through the clustered stack; the clustered stack
## through pgbouncer; client addresses and the admin API in the clustered stack
## (about 3 min; part of `make test`)
test-faults: tools build
	TAXIWAY_TEST_TAXIWAY_BIN=$(CURDIR)/$(BIN)/taxiway TAXIWAY_TEST_GATEWAY_BIN=$(CURDIR)/$(BIN)/gateway \
		$(GO) test -tags cluster -count=1 -timeout 10m -run "TestFaults|TestClusterThroughPgBouncer|TestClusterTrust" -v ./e2e/cluster

## soak: a mixed workload through the clustered stack for SOAK (default 10m), sampling every
## process every 10 s and reporting slopes (not part of `make test`)
SOAK ?= 10m
soak: tools build
	TAXIWAY_TEST_TAXIWAY_BIN=$(CURDIR)/$(BIN)/taxiway TAXIWAY_TEST_GATEWAY_BIN=$(CURDIR)/$(BIN)/gateway \
		$(GO) test -tags cluster -count=1 -timeout 0 -run TestSoak -v ./e2e/cluster -soak=$(SOAK)

build:
	$(GO) build -o $(BIN)/taxiway ./cmd/taxiway
	$(GO) build -o $(BIN)/gateway ./cmd/gateway

vet:
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done
	$(GO) vet -tags cluster ./e2e/cluster

tidy-check:
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) mod tidy -diff) || \
		{ echo "go.mod or go.sum of $$m is not tidy: run go mod tidy there"; exit 1; }; done

staticcheck: $(BIN)/staticcheck
	@set -e; for m in $(MODULES); do (cd $$m && $(CURDIR)/$(BIN)/staticcheck -tags cluster ./...); done

$(BIN)/staticcheck:
	GOBIN=$(CURDIR)/$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

tools:
	@bash scripts/ensure-tools.sh

## bench: Go benchmarks and the loopback load runs; figures go to BENCHMARKS.md
bench: build
	@bash scripts/ensure-tools.sh --bench
	bash scripts/bench.sh

## fuzz: every native fuzz target for FUZZTIME each (default 30s; e.g. make fuzz FUZZTIME=5m)
FUZZTIME ?= 30s
fuzz:
	FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh
