# The taxiway binary: `taxiway core`, `taxiway tokenservice`, `taxiway migrate`,
# `taxiway sync` and the admin commands (docker-compose.yml runs them).
# The base images are arguments; the defaults are the official images users
# pull (scripts/standin-images.sh builds stand-ins where no registry answers).
ARG BUILD_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${BUILD_IMAGE} AS build
ENV CGO_ENABLED=0 GOTOOLCHAIN=local
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags='-s -w' -o /out/taxiway ./cmd/taxiway

# Distroless: CA certificates, time zones and a nonroot user; no shell, no
# package manager. Health checks run `taxiway healthcheck`.
FROM ${RUNTIME_IMAGE}
COPY --from=build /out/taxiway /usr/local/bin/taxiway
USER 65532:65532
EXPOSE 9010 9011 9020 9021
ENTRYPOINT ["taxiway"]
CMD ["core"]
