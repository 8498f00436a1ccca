# Taxiway: the two commands README starts with are `make run` and `make test`.
GO ?= go
BIN := bin

.PHONY: run cluster test test-faults soak build vet fmt-check bench tools

## run: the whole stack locally on http://localhost:9000 (Ctrl-C stops it)
run: tools build
	$(BIN)/taxiway local --gateway-bin $(BIN)/gateway

## cluster: the stack past one machine, on this one: a front on http://localhost:9000,
## 2 gateways, 2 cores, 2 token services, Postgres primary + synchronous hot standby
cluster: tools build
	$(BIN)/taxiway local -replicas 2 --gateway-bin $(BIN)/gateway

## test: formatting, vet, and every test against a real Postgres and a real Caddy
test: tools fmt-check vet
	$(GO) test -count=1 -timeout 30m ./...
	$(MAKE) --no-print-directory test-pgbouncer
	$(MAKE) --no-print-directory test-faults

## test-faults: kill -9 a core, a token service and a gateway, restart the Postgres primary and
## fail over to the standby, under load through the clustered stack (about 70 s; part of `make test`)
test-faults: tools
	$(GO) test -tags cluster -count=1 -timeout 10m -run "TestFaults|TestClusterThroughPgBouncer" -v ./e2e/cluster

## soak: a mixed workload through the clustered stack for SOAK (default 10m), sampling every
## process every 10 s and reporting slopes (not part of `make test`)
SOAK ?= 10m
soak: tools
	$(GO) test -tags cluster -count=1 -timeout 0 -run TestSoak -v ./e2e/cluster -soak=$(SOAK)

## test-pgbouncer: the database tests again, through pgbouncer in transaction pooling mode
test-pgbouncer: tools
	TAXIWAY_TEST_PGBOUNCER=1 $(GO) test -count=1 -timeout 10m ./taxiicore ./tokenservice ./internal/...

build:
	$(GO) build -o $(BIN)/taxiway ./cmd/taxiway
	$(GO) build -o $(BIN)/gateway ./cmd/gateway

vet:
	$(GO) vet ./...
	$(GO) vet -tags cluster ./e2e/cluster

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

tools:
	@bash scripts/ensure-tools.sh

## bench: Go benchmarks and the loopback load runs; figures go to BENCHMARKS.md
bench: build
	@bash scripts/ensure-tools.sh --bench
	bash scripts/bench.sh
