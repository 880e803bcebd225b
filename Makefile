# The README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: test tools lint crds demo

## Build the pinned control-plane tools (cached outside the repository), lint, then run every test.
test: tools lint
	$(CARGO) test --workspace --locked --no-fail-fast

## Build etcd, kube-apiserver, kube-controller-manager, kubectl and Pebble from the Go module proxy.
tools:
	e2e/tools.sh

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

## Issue a real certificate on a local control plane, showing each step; cleans up after itself.
demo: tools
	$(CARGO) build --locked --bin certsmith
	$(CARGO) run --locked --quiet -p certsmith-e2e --bin demo -- target/debug/certsmith

## Regenerate crds/ from the API types.
crds:
	$(CARGO) run --quiet -- crds --dir crds
