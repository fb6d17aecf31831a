#!/usr/bin/env bash
# Makes a throwaway test CA and a server certificate for localhost / 127.0.0.1 in DIR:
# ca.pem, server.pem, server.key. For the TLS listener of a test broker only.
set -euo pipefail
dir=${1:?usage: make-test-tls.sh DIR}
mkdir -p "$dir"
cd "$dir"
[ -f server.pem ] && exit 0
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=MediaQueue Test CA" \
    -keyout ca.key -out ca.pem >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr >/dev/null 2>&1
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
    -extfile server.ext -out server.pem >/dev/null 2>&1
chmod 644 ca.pem server.pem server.key
