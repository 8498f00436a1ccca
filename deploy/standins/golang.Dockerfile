# Stand-in for golang:1.26-bookworm (scripts/standin-images.sh): Debian minbase with
# the Go toolchain (the build context is its GOROOT) where the official image has it.
ARG BASE
FROM ${BASE}
COPY . /usr/local/go
ENV GOLANG_VERSION=1.26.8 GOPATH=/go \
    PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /go
CMD ["bash"]
