#!/usr/bin/env python3
"""Prints an HS256 JWT for the portcullis-full bench scenario (stdlib only).

usage: mint_jwt.py SECRET_FILE ISSUER AUDIENCE
The secret file's trailing newline is not part of the secret (as in portcullis-auth).
"""
import base64
import hashlib
import hmac
import json
import sys
import time


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main() -> None:
    secret_file, issuer, audience = sys.argv[1:4]
    with open(secret_file, "rb") as f:
        secret = f.read().rstrip(b"\r\n")
    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {"iss": issuer, "aud": audience, "sub": "bench-client", "iat": now,
              "exp": now + 3600, "scope": "bench:read"}
    signing_input = b64(json.dumps(header, separators=(",", ":")).encode()) + "." + \
        b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    print(signing_input + "." + b64(sig))


if __name__ == "__main__":
    main()
