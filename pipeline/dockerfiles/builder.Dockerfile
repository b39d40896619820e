# Hermetic builder for Substrate runtimes (srtool-like).
#
# Every input is pinned: the base by digest, the toolchain by exact Debian
# version. When the base cannot be pulled, the pipeline builds an equivalent
# bookworm rootfs with debootstrap, imports it and passes its tag as BASE; the
# label org.runtime-pipeline.base-source records which path was taken.
# The only network use is apt (signed packages); crates come vendored from the host.
ARG BASE=debian:bookworm-slim@sha256:3783cc01769c7b2b1b83a5c5ad96c815348e28ed7da68e2e3687004faa906251
ARG BASE_SOURCE=pulled
# rustc-web 1.85 is in bookworm main; bookworm-security carries a newer one, hence exact pins.
ARG RUST_VERSION=1.85.0+dfsg3-1~deb12u3
ARG LLD_VERSION=1:19.1.7-3~deb12u1
ARG GXX_VERSION=4:12.2.0-3

FROM ${BASE} AS toolchain
ARG RUST_VERSION
ARG LLD_VERSION
ARG GXX_VERSION

ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    TZ=UTC \
    SOURCE_DATE_EPOCH=0 \
    CARGO_HOME=/cargo \
    CARGO_TERM_COLOR=never \
    PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin

# rustc is built on LLVM 19: lld-19 links the wasm, under the name rustc looks for.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      "rustc-web=${RUST_VERSION}" \
      "cargo-web=${RUST_VERSION}" \
      "rust-web-src=${RUST_VERSION}" \
      "rustfmt-web=${RUST_VERSION}" \
      "libstd-rust-web-dev=${RUST_VERSION}" \
      "libstd-rust-web-1.85=${RUST_VERSION}" \
      "lld-19=${LLD_VERSION}" \
      "g++=${GXX_VERSION}" \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && ln -s /usr/lib/llvm-19/bin/lld /usr/local/bin/rust-lld

# The pipeline reads std's Cargo.lock from the stage above and vendors the
# crates it names on the host, passed here as `std-vendor/` in the context.
FROM toolchain AS builder
ARG BASE
ARG BASE_SOURCE
ARG RUST_VERSION
ARG LLD_VERSION
ARG GXX_VERSION

# rustc-web ships no wasm32v1-none sysroot. Build core/alloc/compiler_builtins
# from rust-web-src once, with bitcode (the runtime links with LTO), and install
# them where rustc looks, so substrate-wasm-builder sees an ordinary target.
COPY sysroot /tmp/sysroot
COPY std-vendor /tmp/std-vendor
RUN cd /tmp/sysroot \
 && RUSTC_BOOTSTRAP=1 RUSTFLAGS="-C embed-bitcode=yes" CARGO_TARGET_DIR=/tmp/sysroot-target \
      cargo build --offline --release -Z build-std=core,alloc --target wasm32v1-none \
        --config 'source.crates-io.replace-with="std-vendor"' \
        --config 'source.std-vendor.directory="/tmp/std-vendor"' \
 && libdir="$(rustc --print sysroot)/lib/rustlib/wasm32v1-none/lib" \
 && mkdir -p "$libdir" \
 && find /tmp/sysroot-target/wasm32v1-none/release/deps -name 'lib*.rlib' ! -name 'libsysroot_probe-*' \
      -exec cp {} "$libdir/" \; \
 && cd / \
 && rm -rf /tmp/sysroot /tmp/sysroot-target /tmp/std-vendor "$CARGO_HOME" \
 && mkdir -p "$CARGO_HOME" \
 && rustc -vV

LABEL org.runtime-pipeline.base="${BASE}" \
      org.runtime-pipeline.base-source="${BASE_SOURCE}" \
      org.runtime-pipeline.toolchain.rustc-web="${RUST_VERSION}" \
      org.runtime-pipeline.toolchain.cargo-web="${RUST_VERSION}" \
      org.runtime-pipeline.toolchain.rust-web-src="${RUST_VERSION}" \
      org.runtime-pipeline.toolchain.rustfmt-web="${RUST_VERSION}" \
      org.runtime-pipeline.toolchain.lld-19="${LLD_VERSION}" \
      org.runtime-pipeline.toolchain.g++="${GXX_VERSION}" \
      org.runtime-pipeline.target=wasm32v1-none

WORKDIR /build
