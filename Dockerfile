# keyflow, built from this repository.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin keyflow

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/keyflow /usr/local/bin/keyflow
ENV KEYFLOW_DATA_DIR=/var/lib/keyflow KEYFLOW_API_ADDR=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["keyflow"]
CMD ["run"]
