# Builds the one static pushd binary into a minimal image.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /pushd ./cmd/pushd

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /pushd /pushd
EXPOSE 8080 7946
ENTRYPOINT ["/pushd"]
