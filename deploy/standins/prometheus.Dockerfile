# Stand-in for prom/prometheus (scripts/standin-images.sh): Debian's prometheus
# laid out as the official image lays it out: the binary as the entrypoint, the
# storage in /prometheus owned by nobody, which the server runs as.
ARG BASE
FROM ${BASE}
RUN mkdir -p /prometheus /etc/prometheus && chown 65534:65534 /prometheus
USER 65534:65534
WORKDIR /prometheus
VOLUME /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
