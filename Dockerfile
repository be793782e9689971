# The connet image: the static binary alone on an empty base, run as an
# unprivileged user. Build it from the repository root:
#
#   docker build --build-arg VERSION="$(git describe --tags --always --dirty)" -t connet .
#   podman build ...   or   buildah build ...   (the same arguments)
#
# GO_IMAGE only names the toolchain image of the build stage; the final
# image holds nothing from it but the CA bundle.
ARG GO_IMAGE=docker.io/library/golang:1.26-bookworm

FROM ${GO_IMAGE} AS build
WORKDIR /src
# Modules first, so editing the source does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# VERSION is what `connet version` prints; left empty, it prints "dev".
ARG VERSION=
# The same flags as scripts/release.sh: no cgo (a static binary that needs
# no libc in the image), no build paths in the binary, the version stamped.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/usr/local/bin/connet ./cmd/connet \
	&& /out/usr/local/bin/connet version \
	&& mkdir -p /out/etc/ssl/certs /out/var/lib /out/var/cache /out/empty \
	&& cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/

FROM scratch
# Root CAs, for servers with publicly trusted certificates.
COPY --from=build /out/etc/ /etc/
COPY --from=build /out/usr/ /usr/
COPY --from=build /out/var/ /var/
# The state, cache and config directories belong to the user the process
# runs as; their parents stay root's.
COPY --from=build --chown=65532:65532 /out/empty/ /var/lib/connet/
COPY --from=build --chown=65532:65532 /out/empty/ /var/cache/connet/
COPY --from=build --chown=65532:65532 /out/empty/ /config/
USER 65532:65532
# Relative paths in a config file resolve from the working directory:
# mount the config and the files it names together under /config.
WORKDIR /config
# Servers keep their identity and keys in CONNET_STATE_DIR, clients their
# QUIC stateless reset key in CONNET_CACHE_DIR: mount volumes there to keep
# them across containers (-v connet-state:/var/lib/connet). No VOLUME line:
# it would leave an anonymous volume behind each container run without one.
ENV CONNET_STATE_DIR=/var/lib/connet CONNET_CACHE_DIR=/var/cache/connet
# QUIC over UDP: the control server's clients, the relay, a client's
# direct address; TCP on the servers' ports too, for clients whose UDP is
# blocked. Sources listen on whatever their URL says.
EXPOSE 19190/udp 19191/udp 19192/udp 19190/tcp 19191/tcp
ENTRYPOINT ["/usr/local/bin/connet"]
