#!/usr/bin/env bash
# Makes the verification test vectors with openssl, independently of hookrelay's code.
# The ES256 private key exists only while this script runs; the public key and the
# signature are kept. Re-running makes a new key pair, so the committed files change.
set -euo pipefail
cd "$(dirname "$0")"

t=1700000000
body='{"apiVersion":"caph","event":{"id":"evt-vector","name":"payment.completed","timestamp":"2023-11-14T22:13:20.000Z"},"object":{"id":"pmt-1","type":"payment"},"data":{"amount":{"currency":"SLE","value":1000}}}'
secret='vector-secret-0123456789abcdef0123456789'

printf '%s' "$t" > timestamp
printf '%s' "$body" > body.json
printf '%s' "$secret" > hs256.secret

# HS256: base64(HMAC-SHA-256(secret, "<t>_<body>")).
printf '%s_%s' "$t" "$body" | openssl dgst -sha256 -hmac "$secret" -binary | base64 -w0 > hs256.sig

# ES256: ECDSA P-256 / SHA-256, then DER (r, s) → 64-byte r‖s → base64.
key=$(mktemp)
der=$(mktemp)
trap 'rm -f "$key" "$der"' EXIT
openssl ecparam -name prime256v1 -genkey -noout -out "$key"
openssl ec -in "$key" -pubout -out es256.pub.pem 2>/dev/null
printf '%s_%s' "$t" "$body" | openssl dgst -sha256 -sign "$key" -out "$der"
openssl asn1parse -inform DER -in "$der" \
  | awk -F: '/INTEGER/ { v = $NF; while (length(v) < 64) v = "0" v; printf "%s", substr(v, length(v) - 63) }' \
  | xxd -r -p | base64 -w0 > es256.sig
