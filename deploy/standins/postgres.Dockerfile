# Stand-in for postgres:15-bookworm (scripts/standin-images.sh): Debian's postgresql-15
# laid out as the official image lays it out, with an entrypoint that keeps the
# contract docker-compose.yml relies on.
ARG BASE
FROM ${BASE}
ENV PG_MAJOR=15 PGDATA=/var/lib/postgresql/data \
    PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# As the official image: the server listens on every interface of the container.
RUN sed -ri "s!^#?(listen_addresses)\s*=\s*\S+.*!\1 = '*'!" /usr/share/postgresql/15/postgresql.conf.sample \
 && mkdir -p /var/run/postgresql /docker-entrypoint-initdb.d "$PGDATA" \
 && chown postgres:postgres /var/run/postgresql "$PGDATA" && chmod 3777 /var/run/postgresql && chmod 700 "$PGDATA"
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql/data
ENTRYPOINT ["docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
