# The stand-in build image with this machine's CA bundle (the build context):
# builds reach the Go module proxy the way the machine does.
ARG BASE
FROM ${BASE}
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
