# Taxiway: the two commands README starts with are `make run` and `make test`.
GO ?= go
BIN := bin

STATICCHECK_VERSION := v0.8.2
# Modules of this repository: the root one (what xcaddy users pull) and
# deploy/, whose compose-file tests need compose-go.
MODULES := . deploy

.PHONY: run test build vet fmt-check tidy-check staticcheck bench tools fuzz

## run: the whole stack locally on http://localhost:9000 (Ctrl-C stops it)
run: tools build
	$(BIN)/taxiway local --gateway-bin $(BIN)/gateway

## test: formatting, tidy modules, vet, staticcheck, and every test against a
## real Postgres and a real Caddy. The binaries are built once and shared.
test: tools fmt-check tidy-check vet staticcheck build
	@set -e; for m in $(MODULES); do \
		echo "go test ($$m)"; \
		(cd $$m && TAXIWAY_TEST_TAXIWAY_BIN=$(CURDIR)/$(BIN)/taxiway TAXIWAY_TEST_GATEWAY_BIN=$(CURDIR)/$(BIN)/gateway \
			$(GO) test -count=1 -timeout 30m ./...); \
	done

build:
	$(GO) build -o $(BIN)/taxiway ./cmd/taxiway
	$(GO) build -o $(BIN)/gateway ./cmd/gateway

vet:
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done

tidy-check:
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) mod tidy -diff) || \
		{ echo "go.mod or go.sum of $$m is not tidy: run go mod tidy there"; exit 1; }; done

staticcheck: $(BIN)/staticcheck
	@set -e; for m in $(MODULES); do (cd $$m && $(CURDIR)/$(BIN)/staticcheck ./...); done

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
