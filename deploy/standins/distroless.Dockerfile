# Stand-in for gcr.io/distroless/static-debian12:nonroot (scripts/standin-images.sh):
# what that image holds, taken from Debian's packages: CA certificates, time zones,
# /etc/passwd and /etc/group with root and nonroot (65532), /tmp; no shell.
ARG BASE
FROM ${BASE} AS debian
RUN mkdir -p /out/etc/ssl/certs /out/usr/share /out/tmp /out/home/nonroot \
 && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ \
 && cp -r /usr/share/zoneinfo /out/usr/share/ \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >/out/etc/passwd \
 && printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >/out/etc/group \
 && cp /etc/os-release /out/etc/ \
 && chmod 1777 /out/tmp && chown 65532:65532 /out/home/nonroot

FROM scratch
COPY --from=debian /out/ /
USER 65532:65532
WORKDIR /home/nonroot
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
