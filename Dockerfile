# hci-admission container image: built on Debian bookworm from the same
# packages as the project's CI, run as non-root on bookworm-slim.
#   docker build -t hci-admission:0.1.0 .
FROM debian:bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ meson ninja-build pkg-config \
      libcpp-httplib-dev libssl-dev nlohmann-json3-dev libspdlog-dev catch2 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY meson.build ./
COPY include include
COPY src src
COPY webhooks webhooks
COPY test test
RUN meson setup /build --buildtype=release -Dstrip=true \
 && ninja -C /build hci-admission

FROM debian:bookworm-slim
# Run-time libraries only: OpenSSL 3, spdlog (and fmt), cpp-httplib (and the
# zlib/brotli it links), CA certificates for the Kubernetes API.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl3 libspdlog1.10 libfmt9 libcpp-httplib0.11 \
      zlib1g libbrotli1 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/hci-admission /usr/local/bin/hci-admission
USER 65532:65532
EXPOSE 9443
ENTRYPOINT ["/usr/local/bin/hci-admission"]
CMD ["--cert-dir=/certs"]
