GO ?= go
BIN := bin

.PHONY: all build run test test-long bench vet clean

all: build

# Our binaries, and tidb-server from the pinned TiDB module (a cold build of
# TiDB takes several minutes; later builds are cached).
build:
	$(GO) build -o $(BIN)/ ./cmd/... github.com/pingcap/tidb/cmd/tidb-server

# The local cluster: PD on 127.0.0.1:2379, a store on 127.0.0.1:20160 and TiDB
# on 127.0.0.1:4000, data under ./data; Ctrl-C stops it.
run: build
	$(BIN)/tinykv-playground --data data

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
