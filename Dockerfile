# sqlite-ops container image: a static musl binary on a distroless base, running as non-root.
#   docker build -t sqlite-ops .
#   docker run --rm -v /var/lib/app:/data:ro -p 9934:9934 sqlite-ops run --db /data/app.db
# The database volume is mounted read-only: sqlite-ops never writes to it.

FROM rust:1.95-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl \
    && apt-get update \
    && apt-get install -y --no-install-recommends musl-tools=1.2.3-1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY tests ./tests
RUN cargo build --release --locked --target x86_64-unknown-linux-musl \
    && cp target/x86_64-unknown-linux-musl/release/sqlite-ops /sqlite-ops

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /sqlite-ops /usr/local/bin/sqlite-ops
USER 65532:65532
EXPOSE 9934
ENTRYPOINT ["/usr/local/bin/sqlite-ops"]
CMD ["run", "--config", "/etc/sqlite-ops/config.yaml"]
