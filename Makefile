GO ?= go
BIN := bin

.PHONY: all build run test test-long bench vet clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# The local cluster: PD on 127.0.0.1:2379 with data under ./data.
run: build
	$(BIN)/tinyscheduler-server --data-dir data/pd

vet:
	$(GO) vet ./...

# The default test run: everything that finishes in a few minutes on 2 cores.
test: build vet
	$(GO) test -count=1 -timeout 25m ./...

# Long randomized and soak runs, not part of the default test.
test-long: build
	TINYKV_LONG=1 $(GO) test -count=1 -timeout 120m ./...

bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf $(BIN)
