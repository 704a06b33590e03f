#!/bin/sh
# Makes the self-signed certificate nginx serves HTTP/2 with in the local
# cluster (deploy/certs/cert.pem, key.pem).
set -eu
dir="$(dirname "$0")/certs"
mkdir -p "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -keyout "$dir/key.pem" -out "$dir/cert.pem"
