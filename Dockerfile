# syntax=docker/dockerfile:1
# Berth's image: berth-scheduler and berth-nodefailover, static binaries on
# distroless (no shell, non-root). Build with `make image`; the Deployments
# in manifests/ run /berth-scheduler and /berth-nodefailover.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=v0.0.0-dev
ARG COMMIT=unknown
ARG BUILD_DATE=1970-01-01T00:00:00Z
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -o /out/ \
      -ldflags "-s -w \
        -X github.com/berth-dev/berth/pkg/version.Version=${VERSION} \
        -X github.com/berth-dev/berth/pkg/version.GitCommit=${COMMIT} \
        -X github.com/berth-dev/berth/pkg/version.BuildDate=${BUILD_DATE}" \
      ./cmd/scheduler ./cmd/nodefailover \
 && mv /out/scheduler /out/berth-scheduler && mv /out/nodefailover /out/berth-nodefailover

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/berth-scheduler /out/berth-nodefailover /
USER 65532:65532
ENTRYPOINT ["/berth-scheduler"]
