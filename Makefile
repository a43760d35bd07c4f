# llmbatch — make targets. `make test` is what CI runs.
GO          ?= go
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck
STATICCHECK_VERSION ?= v0.8.2
BIN         ?= bin/llmbatch

.PHONY: build test lint tools deps bench bench-run bench-estimate bench-loopback bench-batch demo clean

build:
	$(GO) build -buildvcs=auto -o $(BIN) .  # -buildvcs: `llmbatch version` names the git revision even when GOFLAGS turns stamping off

# Installs the pinned staticcheck when it is missing (needs only the Go module proxy).
tools:
	@test -x $(STATICCHECK) || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: tools
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on: $$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

# The tests start a real redis-server (shared limits) and headless Chromium (the run report): installs
# the Debian packages when either is missing (as root, or through sudo).
deps:
	@if ! command -v redis-server >/dev/null || ! command -v chromium >/dev/null; then \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get update && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y --no-install-recommends redis-server chromium; \
	fi

test: lint deps
	$(GO) test -race -count=1 -timeout 25m ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The offline demo: the whole pipeline against the built-in simulator, no API key needed.
demo: build
	$(BIN) estimate testdata/prompts.jsonl -c testdata/providers.sim.yaml -o testdata/out/demo.results.jsonl --fresh
	$(BIN) run testdata/prompts.jsonl -c testdata/providers.sim.yaml -o testdata/out/demo.results.jsonl --fresh

clean:
	rm -rf bin testdata/out

# Memory and overhead at scale: one million prompts through the in-process simulator with no limits
# and no latency (peak RSS is printed by /usr/bin/time when it exists).
bench-run: build
	mkdir -p testdata/out
	$(BIN) sim prompts 1000000 > testdata/out/million.jsonl
	@if [ -x /usr/bin/time ]; then /usr/bin/time -f 'wall %es, peak RSS %M KiB' $(BIN) run testdata/out/million.jsonl -c testdata/unlimited.sim.yaml --fresh --quiet --cache off; \
	 else time $(BIN) run testdata/out/million.jsonl -c testdata/unlimited.sim.yaml --fresh --quiet --cache off; fi

# Issue 2's scale target: `estimate` over a 1 GiB file of 8.7 million short prompts, counted exactly
# with both OpenAI encodings; prints wall time and peak RSS (target under 200 MiB). About a minute.
bench-estimate: build
	mkdir -p testdata/out
	$(BIN) sim prompts 8700000 > testdata/out/gib.jsonl
	@ls -l testdata/out/gib.jsonl
	@if [ -x /usr/bin/time ]; then /usr/bin/time -f 'wall %es, peak RSS %M KiB' $(BIN) estimate testdata/out/gib.jsonl -c testdata/estimate.sim.yaml; \
	 else time $(BIN) estimate testdata/out/gib.jsonl -c testdata/estimate.sim.yaml; fi

# Issue 11's shares over real HTTP: `llmbatch sim serve` on loopback enforcing per-minute limits over
# a 60 s window, a 10 s window and 1 s quanta, and `llmbatch run` (real OpenAI adapter, limits
# learned from the headers) against each: prints the least time the limits allow, the time taken and
# the share of 429s (cmd/loopback_pacing_test.go). About 100 s.
bench-loopback: build
	$(BIN) sim serve --addr 127.0.0.1:8089 --config testdata/loopback.sim.yaml & pid=$$!; \
	  trap "kill $$pid" EXIT; sleep 1; \
	  LLMBATCH_LOOPBACK_ADDR=127.0.0.1:8089 $(GO) test -count=1 -run TestLoopbackPacing -v ./cmd/ | grep -E 'loopback HTTP|^(---|ok|FAIL)'

# Batch mode at scale: 200,000 prompts through `run --via batch` (four 50,000-line OpenAI batch jobs)
# against `llmbatch sim serve` on loopback; prints the client's wall time and peak RSS (the simulator,
# which holds every uploaded file and its results, runs in its own process). About half a minute.
bench-batch: build
	mkdir -p testdata/out
	$(BIN) sim prompts 200000 > testdata/out/batch200k.jsonl
	$(BIN) sim serve --addr 127.0.0.1:8089 --config testdata/batch.bench.sim.yaml > /dev/null & pid=$$!; \
	  trap "kill $$pid" EXIT; sleep 1; \
	  export XDG_STATE_HOME=testdata/out/state; \
	  if [ -x /usr/bin/time ]; then /usr/bin/time -f 'wall %es, peak RSS %M KiB' $(BIN) run testdata/out/batch200k.jsonl -c testdata/batch.bench.client.yaml --via batch --fresh --quiet; \
	  else time $(BIN) run testdata/out/batch200k.jsonl -c testdata/batch.bench.client.yaml --via batch --fresh --quiet; fi
