# Taxiway: the two commands README starts with are `make run` and `make test`.
GO ?= go
BIN := bin

.PHONY: run test build vet fmt-check bench tools fuzz

## run: the whole stack locally on http://localhost:9000 (Ctrl-C stops it)
run: tools build
	$(BIN)/taxiway local --gateway-bin $(BIN)/gateway

## test: formatting, vet, and every test against a real Postgres and a real Caddy
test: tools fmt-check vet
	$(GO) test -count=1 -timeout 30m ./...

build:
	$(GO) build -o $(BIN)/taxiway ./cmd/taxiway
	$(GO) build -o $(BIN)/gateway ./cmd/gateway

vet:
	$(GO) vet ./...

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
