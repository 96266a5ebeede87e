# syntax=docker/dockerfile:1
#
# Dispatch24: one image with both binaries, api and dispatcher, on PATH.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t dispatch24 .
#   docker run --rm -p 8080:8080 dispatch24                  # api, embedded mode (SQLite + NATS in-process)
#   docker run --rm dispatch24 dispatcher                    # delivery workers (production shape)
#
# There is no HEALTHCHECK on purpose: the orchestrator probes /healthz and /readyz
# (docker-compose.yml, deployments/kubernetes/). The runtime stage is alpine rather than
# distroless so that compose health checks have busybox wget to call.

ARG GO_VERSION=1.26
ARG ALPINE_VERSION=3.22

# ---- build -------------------------------------------------------------------------------
# Runs on the build machine's platform and cross-compiles, so multi-arch builds stay fast.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-alpine AS build
WORKDIR /src
# Pure Go throughout (modernc.org/sqlite), so static binaries without cgo. No VCS stamping:
# .git is not in the build context; the version comes from the VERSION build arg.
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false

COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X github.com/dispatch24/dispatch24/internal/app.Version=${VERSION}" -o /out/ ./cmd/api ./cmd/dispatcher

# ---- runtime -----------------------------------------------------------------------------
FROM alpine:${ALPINE_VERSION}
ARG VERSION=dev
LABEL org.opencontainers.image.title="Dispatch24" \
      org.opencontainers.image.description="Webhook delivery for Intake24 survey events: api and dispatcher" \
      org.opencontainers.image.version="${VERSION}"

# CA roots for https webhook receivers and TLS to PostgreSQL/NATS; a fixed non-root user whose
# home is DATA_DIR, used by embedded mode only.
RUN apk add --no-cache ca-certificates \
 && addgroup -S -g 10001 dispatch24 \
 && adduser -S -D -H -u 10001 -G dispatch24 -h /var/lib/dispatch24 dispatch24 \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/dispatch24

COPY --from=build /out/api /out/dispatcher /usr/local/bin/

# Inside a container the default 127.0.0.1:8080 would be unreachable.
ENV HTTP_ADDR=0.0.0.0:8080 \
    DATA_DIR=/var/lib/dispatch24
WORKDIR /var/lib/dispatch24
USER 10001:10001
EXPOSE 8080

# No ENTRYPOINT: the command picks the binary (api, dispatcher, dispatcher replay …).
CMD ["api"]
