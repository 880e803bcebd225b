# syntax=docker/dockerfile:1
# One image for `certsmith controller` and `certsmith solver`: a static musl binary on an empty
# base with CA certificates, running as a non-root user.

FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools=1.2.3-1 cmake=3.25.1-1 \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN cargo build --release --locked --target x86_64-unknown-linux-musl --bin certsmith \
 && cp target/x86_64-unknown-linux-musl/release/certsmith /certsmith

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /certsmith /usr/local/bin/certsmith
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/certsmith"]
CMD ["controller"]
