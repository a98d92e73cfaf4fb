# hci-admission container image: built on Debian bookworm from the same
# packages as the project's CI, run as non-root on bookworm-slim.
#   buildah bud --isolation chroot -t hci-admission:0.1.0 .   (or docker build)
# scripts/image-test.sh builds it and checks the result (README: "Container image").
FROM debian:bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ meson ninja-build pkg-config python3 \
      libcpp-httplib-dev libssl-dev nlohmann-json3-dev libspdlog-dev libyaml-cpp-dev libsimdjson-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY meson.build meson_options.txt ./
COPY scripts/include_view.py scripts/
COPY include include
COPY src src
COPY webhooks webhooks
# -Dtests=false: the image needs neither Catch2 nor Node.js.
RUN meson setup /build --buildtype=release -Dstrip=true -Dtests=false \
 && ninja -C /build hci-admission

FROM debian:bookworm-slim
# Run-time libraries only (what `ldd hci-admission` lists): OpenSSL 3,
# spdlog and fmt, cpp-httplib and the zlib/brotli it links, yaml-cpp; CA
# certificates for the Kubernetes API; simdjson.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl3 libspdlog1.10 libfmt9 libcpp-httplib0.11 \
      libyaml-cpp0.7 libsimdjson14 zlib1g libbrotli1 ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log
COPY --from=build /build/hci-admission /usr/local/bin/hci-admission
USER 65532:65532
EXPOSE 9443
ENTRYPOINT ["/usr/local/bin/hci-admission"]
CMD ["--cert-dir=/certs"]
