# One image for every function of the IMS core: pcscf, icscf, scscf, hss and
# the provisioning CLI imsctl, as static binaries.
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t imscore .
# (docker compose build passes IMSCORE_VERSION; make image does both).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
# our sipgo fork (go.mod replaces github.com/emiago/sipgo with it)
COPY third_party/sipgo/ third_party/sipgo/
RUN go mod download
COPY . .
ARG VERSION=dev
RUN set -e; for b in pcscf icscf scscf hss imsctl; do \
      CGO_ENABLED=0 go build -trimpath \
        -ldflags "-s -w -X github.com/imscore/imscore/pkg/version.Version=${VERSION}" \
        -o /out/$b ./cmd/$b; \
    done

# distroless/static: CA certificates and tzdata, no shell, uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="imscore" \
      org.opencontainers.image.description="IMS core: P-CSCF, I-CSCF, S-CSCF, HSS and imsctl" \
      org.opencontainers.image.source="https://github.com/imscore/imscore" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/ /usr/local/bin/
USER nonroot:nonroot
# Each service picks its binary with "command:"; the default is the CLI.
ENTRYPOINT []
CMD ["/usr/local/bin/imsctl", "--help"]
