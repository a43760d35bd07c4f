# llmbatch — make targets. `make test` is what CI runs.
GO          ?= go
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck
STATICCHECK_VERSION ?= 2026.2.2
BIN         ?= bin/llmbatch

.PHONY: build test lint tools bench demo clean

build:
	$(GO) build -o $(BIN) .

# Installs the pinned staticcheck when it is missing (needs only the Go module proxy).
tools:
	@test -x $(STATICCHECK) || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: tools
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on: $$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

test: lint
	$(GO) test -race -count=1 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The offline demo: the whole pipeline against the built-in simulator, no API key needed.
demo: build
	$(BIN) estimate testdata/prompts.jsonl -c testdata/providers.sim.yaml
	$(BIN) run testdata/prompts.jsonl -c testdata/providers.sim.yaml -o testdata/out/demo.results.jsonl --fresh

clean:
	rm -rf bin testdata/out
