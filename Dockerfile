# syntax=docker/dockerfile:1
# The taxiway binary: `taxiway core`, `taxiway tokenservice`, `taxiway migrate`,
# `taxiway sync` and the admin commands (docker-compose.yml runs them).
ARG GO_VERSION=1.26
ARG ALPINE_VERSION=3.22

FROM golang:${GO_VERSION}-alpine AS build
ENV CGO_ENABLED=0 GOTOOLCHAIN=local
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags='-s -w' -o /out/taxiway ./cmd/taxiway

# Alpine rather than scratch: its busybox wget runs the health checks.
FROM alpine:${ALPINE_VERSION}
RUN apk add --no-cache ca-certificates tzdata \
 && adduser -D -H -s /sbin/nologin -u 10001 taxiway
COPY --from=build /out/taxiway /usr/local/bin/taxiway
USER 10001:10001
EXPOSE 9010 9011 9020 9021
ENTRYPOINT ["taxiway"]
CMD ["core"]
