# Image that builds the example chain's node natively: the runtime builder image plus protoc,
# which sc-network and litep2p need at build time (their protobuf messages).
#
# A separate context from dockerfiles/, so the runtime builder image, its tag and every
# runtime cache key stay as they are. The pipeline passes the builder image id as BUILDER.
# The only network use is apt (signed packages, exact versions); crates come vendored.
ARG BUILDER
ARG PROTOBUF_VERSION=3.21.12-3+deb12u1

FROM ${BUILDER}
ARG BUILDER
ARG PROTOBUF_VERSION

RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      "protobuf-compiler=${PROTOBUF_VERSION}" \
      "libprotoc32=${PROTOBUF_VERSION}" \
      "libprotobuf32=${PROTOBUF_VERSION}" \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && protoc --version

LABEL org.runtime-pipeline.node-builder.base="${BUILDER}" \
      org.runtime-pipeline.toolchain.protobuf-compiler="${PROTOBUF_VERSION}"
