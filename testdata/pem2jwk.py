#!/usr/bin/env python3
"""Write an RSA or EC (P-256/P-384/P-521) key as a JSON Web Key (RFC 7517/7518).

Usage: pem2jwk.py KEY.pem [--public] [--alg ALG] > KEY.jwk

Python standard library only: the key is converted to unencrypted PKCS#8 DER with the openssl
CLI and that DER is parsed here. Integers are base64url without padding; RSA values have no
leading zero octets, EC coordinates and `d` are left-padded to the curve size (RFC 7518 6.2.1).
Members are written as kty, [crv,] [alg,] then the key values, pretty-printed (indent 2),
with a trailing newline. Before writing, the key is checked (RSA: n = p*q and an
encrypt/decrypt round trip; EC: the public point is on the curve).

Used by make-fixtures.sh; test keys only.
"""

import base64
import json
import subprocess
import sys

OID_RSA = "1.2.840.113549.1.1.1"
OID_EC = "1.2.840.10045.2.1"
CURVES = {
    # OID: (JWK crv, coordinate bytes, p, b) for y^2 = x^3 - 3x + b (mod p)
    "1.2.840.10045.3.1.7": (
        "P-256",
        32,
        0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF,
        0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
    ),
    "1.3.132.0.34": (
        "P-384",
        48,
        2**384 - 2**128 - 2**96 + 2**32 - 1,
        0xB3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875AC656398D8A2ED19D2A85C8EDD3EC2AEF,
    ),
    "1.3.132.0.35": (
        "P-521",
        66,
        2**521 - 1,
        0x0051953EB9618E1C9A1F929A21A0B68540EEA2DA725B99B315F3B8B489918EF109E156193951EC7E937B1652C0BD3BB1BF073573DF883D2C34F1EF451FD46B503F00,
    ),
}


def der_items(data):
    """Split DER bytes into a list of (tag, value bytes)."""
    items, i = [], 0
    while i < len(data):
        tag = data[i]
        length = data[i + 1]
        i += 2
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(data[i : i + n], "big")
            i += n
        items.append((tag, data[i : i + length]))
        i += length
    return items


def der_oid(value):
    first = value[0]
    parts = [first // 40, first % 40]
    n = 0
    for b in value[1:]:
        n = (n << 7) | (b & 0x7F)
        if not b & 0x80:
            parts.append(n)
            n = 0
    return ".".join(map(str, parts))


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_int(value, size=None):
    """An unsigned big-endian integer; minimal length, or left-padded to `size` bytes."""
    n = int.from_bytes(value, "big")
    length = size if size is not None else max(1, (n.bit_length() + 7) // 8)
    return b64u(n.to_bytes(length, "big"))


def rsa_jwk(private_key, public):
    fields = [v for tag, v in der_items(der_items(private_key)[0][1]) if tag == 0x02]
    _version, n, e, d, p, q, dp, dq, qi = fields
    ints = [int.from_bytes(v, "big") for v in (n, e, d, p, q)]
    N, E, D, P, Q = ints
    assert N == P * Q, "RSA key check failed: n != p*q"
    assert pow(pow(0x1234567, E, N), D, N) == 0x1234567, "RSA key check failed: d"
    jwk = {"kty": "RSA", "n": b64u_int(n), "e": b64u_int(e)}
    if not public:
        for name, v in (("d", d), ("p", p), ("q", q), ("dp", dp), ("dq", dq), ("qi", qi)):
            jwk[name] = b64u_int(v)
    return jwk


def ec_jwk(curve_oid, private_key, public):
    if curve_oid not in CURVES:
        sys.exit(f"pem2jwk: unsupported curve {curve_oid}")
    crv, size, p, b = CURVES[curve_oid]
    items = der_items(der_items(private_key)[0][1])
    d = next(v for tag, v in items if tag == 0x04)
    bits = next(v for tag, v in items if tag == 0xA1)  # [1] publicKey BIT STRING
    point = der_items(bits)[0][1][1:]  # drop the unused-bits octet
    if point[0] != 0x04 or len(point) != 1 + 2 * size:
        sys.exit("pem2jwk: expected an uncompressed EC point")
    x, y = point[1 : 1 + size], point[1 + size :]
    X, Y = int.from_bytes(x, "big"), int.from_bytes(y, "big")
    assert (Y * Y - (X**3 - 3 * X + b)) % p == 0, "EC key check failed: point not on curve"
    jwk = {"kty": "EC", "crv": crv, "x": b64u(x), "y": b64u(y)}
    if not public:
        jwk["d"] = b64u_int(d, size)
    return jwk


def main(argv):
    args = argv[1:]
    public = "--public" in args
    args = [a for a in args if a != "--public"]
    alg = None
    if "--alg" in args:
        i = args.index("--alg")
        if i + 1 >= len(args):
            sys.exit(__doc__)
        alg = args[i + 1]
        del args[i : i + 2]
    if len(args) != 1:
        sys.exit(__doc__)
    proc = subprocess.run(
        ["openssl", "pkcs8", "-topk8", "-nocrypt", "-in", args[0], "-outform", "DER"],
        capture_output=True,
    )
    if proc.returncode != 0:
        sys.exit(f"pem2jwk: openssl cannot read {args[0]}: {proc.stderr.decode().strip()}")
    der = proc.stdout
    _version, algorithm, private_key = der_items(der_items(der)[0][1])[:3]
    algorithm_items = der_items(algorithm[1])
    oid = der_oid(algorithm_items[0][1])
    if oid == OID_RSA:
        jwk = rsa_jwk(private_key[1], public)
    elif oid == OID_EC:
        jwk = ec_jwk(der_oid(algorithm_items[1][1]), private_key[1], public)
    else:
        sys.exit(f"pem2jwk: unsupported key algorithm {oid}")
    if alg is not None:
        # Put "alg" right after the key type and curve, where it is easy to spot.
        head = {k: jwk.pop(k) for k in ("kty", "crv") if k in jwk}
        jwk = {**head, "alg": alg, **jwk}
    sys.stdout.write(json.dumps(jwk, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv)
