#!/usr/bin/env python3
"""Make the seed corpora of the fuzz targets (fuzz/corpus/<target>/) from the committed
fixtures: testdata/ (skopeo-, gpg-, OpenSSL- and Docker-written images, archives and wrapped
keys; testdata/samples/ is a copy of the spec samples) and, when a layercrypt binary is at
hand, one image layercrypt encrypts for every scheme it writes.

    python3 fuzz/make-corpus.py [--layercrypt PATH]

Rewrites fuzz/corpus/ from scratch; each file is named after where it came from. Every seed is
small (the largest are the little tar archives made here, under 16 KiB).
"""

import argparse
import base64
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTDATA = os.path.join(ROOT, "testdata")
CORPUS = os.path.join(ROOT, "fuzz", "corpus")

KEYS_PREFIX = "org.opencontainers.image.enc.keys."
PUBOPTS = "org.opencontainers.image.enc.pubopts"
# The envelope target picks the scheme from its first byte (fuzz_targets/envelope.rs).
ENVELOPE_SCHEMES = ["jwe", "pgp", "pkcs7", "pkcs11", "provider.kbs", "unknown"]

seeds = {}


def add(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    bucket = seeds.setdefault(target, {})
    if data in bucket.values():
        return
    bucket[name.replace("/", "_")] = data


def read(path):
    with open(path, "rb") as f:
        return f.read()


def layouts():
    """Every OCI layout under testdata, as (label, directory)."""
    for parent in ["images", "samples"]:
        base = os.path.join(TESTDATA, parent)
        for name in sorted(os.listdir(base)):
            d = os.path.join(base, name)
            for sub in ["", "image", "plain"]:
                layout = os.path.join(d, sub)
                if os.path.isfile(os.path.join(layout, "index.json")):
                    yield (name + ("-" + sub if sub else ""), layout)


def from_layout(label, layout):
    """Index, manifests, annotations and wrapped keys of one layout."""
    add("index", f"{label}-index.json", read(os.path.join(layout, "index.json")))
    blobs = os.path.join(layout, "blobs", "sha256")
    for digest in sorted(os.listdir(blobs)):
        path = os.path.join(blobs, digest)
        if os.path.getsize(path) > 64 * 1024:
            continue
        data = read(path)
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            continue
        if not isinstance(doc, dict):
            continue
        kind = doc.get("mediaType", "")
        if "manifests" in doc:
            add("index", f"{label}-{digest[:12]}.json", data)
            add("manifest", f"{label}-index-{digest[:12]}.json", data)
        elif "layers" in doc:
            add("manifest", f"{label}-{digest[:12]}.json", data)
            for n, layer in enumerate(doc["layers"]):
                from_annotations(f"{label}-layer{n}", layer.get("annotations") or {})
        elif "rootfs" in doc or "config" in kind:
            continue


def from_annotations(label, annotations):
    for key, value in sorted(annotations.items()):
        if key == PUBOPTS:
            add("options_json", f"{label}-pubopts.json", base64.b64decode(value))
            add("envelope", f"{label}-pubopts", bytes([0]) + value.encode())
        elif key.startswith(KEYS_PREFIX):
            scheme = key[len(KEYS_PREFIX):]
            pick = ENVELOPE_SCHEMES.index(scheme) if scheme in ENVELOPE_SCHEMES else 5
            add("envelope", f"{label}-{scheme}", bytes([pick]) + value.encode())
            # Two entries, as after `rekey --add` (once per scheme).
            if not any(n.endswith(f"-{scheme}-twice") for n in seeds.get("envelope", {})):
                add("envelope", f"{label}-{scheme}-twice", bytes([pick]) + f"{value},{value}".encode())
            for i, entry in enumerate(value.split(",")):
                blob = base64.b64decode(entry)
                target = {"jwe": "jwe", "pkcs7": "pkcs7", "pgp": "pgp"}.get(scheme)
                if target:
                    add(target, f"{label}-{scheme}{i}", blob)


def compact(flattened):
    """A flattened JWE whose header is all protected, in compact serialization."""
    jwe = json.loads(flattened)
    if set(jwe) - {"protected", "encrypted_key", "iv", "ciphertext", "tag"}:
        return None
    parts = [jwe.get(p, "") for p in ["protected", "encrypted_key", "iv", "ciphertext", "tag"]]
    return ".".join(parts).encode()


def tar_bytes(members, fmt):
    """A tar archive of (name, kind, data-or-target) members in format `fmt`, without the
    padding to a 10 KiB record that `tarfile` adds after the two end-of-archive blocks."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as t:
        for name, kind, value in members:
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if kind == "file":
                info.size = len(value)
                t.addfile(info, io.BytesIO(value))
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = value
                t.addfile(info)
            elif kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = value
                t.addfile(info)
    return trimmed(out.getvalue())


def trimmed(data):
    """`data` up to its last non-zero 512-byte block, and two zero blocks."""
    end = len(data.rstrip(b"\0"))
    end = (end + 511) // 512 * 512
    return data[:end] + bytes(1024)


def layout_members(layout, prefix=""):
    members = [(prefix + "blobs/", "dir", None), (prefix + "blobs/sha256/", "dir", None)]
    for name in ["oci-layout", "index.json"]:
        members.append((prefix + name, "file", read(os.path.join(layout, name))))
    blobs = os.path.join(layout, "blobs", "sha256")
    for digest in sorted(os.listdir(blobs)):
        members.append((prefix + "blobs/sha256/" + digest, "file", read(os.path.join(blobs, digest))))
    return members


def tars():
    small = os.path.join(TESTDATA, "samples", "small-jwe", "image")
    members = layout_members(small)
    add("tar", "oci-archive-ustar.tar", tar_bytes(members, tarfile.USTAR_FORMAT))
    add("tar", "oci-archive-gnu-dot-slash.tar", tar_bytes(layout_members(small, "./"), tarfile.GNU_FORMAT))
    # A Docker archive in skopeo's form: a config, a layer, a legacy directory whose layer.tar
    # is a symbolic link, and a hard link.
    layer = tar_bytes([("etc/", "dir", None), ("etc/hello", "file", b"hello\n")], tarfile.USTAR_FORMAT)
    docker = [
        ("config.json", "file", b'{"rootfs":{"type":"layers","diff_ids":[]}}'),
        ("layer.tar", "file", layer),
        ("legacy/", "dir", None),
        ("legacy/layer.tar", "symlink", "../layer.tar"),
        ("legacy/VERSION", "file", b"1.0"),
        ("again.tar", "hardlink", "layer.tar"),
        ("manifest.json", "file", b'[{"Config":"config.json","RepoTags":["a:b"],"Layers":["legacy/layer.tar"]}]'),
    ]
    add("tar", "docker-links-pax.tar", tar_bytes(docker, tarfile.PAX_FORMAT))
    add("tar", "docker-links-gnu.tar", tar_bytes(docker, tarfile.GNU_FORMAT))
    # Names longer than ustar's 100 bytes: GNU long names and PAX paths.
    long = [("d" * 60 + "/" + "n" * 80, "file", b"x"), ("l" * 120, "symlink", "d" * 60 + "/" + "n" * 80)]
    add("tar", "long-names-gnu.tar", tar_bytes(long, tarfile.GNU_FORMAT))
    add("tar", "long-names-pax.tar", tar_bytes(long, tarfile.PAX_FORMAT))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "global"}) as t:
        info = tarfile.TarInfo("index.json")
        data = read(os.path.join(small, "index.json"))
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    add("tar", "pax-global-header.tar", trimmed(out.getvalue()))


def docker_archives():
    images = os.path.join(TESTDATA, "images")
    for name in sorted(os.listdir(images)):
        if not name.endswith(".tar"):
            continue
        with tarfile.open(os.path.join(images, name)) as t:
            names = {m.name.lstrip("./"): m for m in t.getmembers()}
            manifest = t.extractfile(names["manifest.json"]).read()
            seed = manifest
            if "index.json" in names:
                seed = manifest + b"\0" + t.extractfile(names["index.json"]).read()
                add("index", f"{name}-index.json", t.extractfile(names["index.json"]).read())
            add("docker_manifest", name.replace(".tar", ".json"), seed)
            if seed != manifest:
                add("docker_manifest", name.replace(".tar", "-no-index.json"), manifest)


def layercrypt_image(binary):
    """Encrypt the small sample for every scheme layercrypt writes (layercrypt's own JWE
    general form with kids, Go's PKCS#7 form, OpenPGP to RSA, cv25519 and P-256 keys)."""
    work = tempfile.mkdtemp()
    try:
        src = os.path.join(TESTDATA, "samples", "small-jwe", "plain")
        dst = os.path.join(work, "out")
        keys = os.path.join(TESTDATA, "keys")
        pgp = os.path.join(TESTDATA, "pgp")
        subprocess.run(
            [binary, "encrypt",
             "-r", f"jwe:{keys}/rsa2048.pub.pem", "-r", f"jwe:{keys}/ec256.pub.pem",
             "-r", f"pkcs7:{keys}/x509.crt", "-r", f"pkcs7:{TESTDATA}/pkcs7/second.crt",
             "-r", f"pgp:{pgp}/alice.pub.gpg", "-r", f"pgp:{pgp}/carol.pub.gpg",
             "-r", f"pgp:{pgp}/dave.pub.gpg",
             f"oci:{src}:v1", f"oci:{dst}:v1"],
            check=True, env={**os.environ, "GNUPGHOME": work},
        )
        from_layout("layercrypt-all-schemes", dst)
        # One recipient per scheme: flattened JWE, one RecipientInfo, one PKESK.
        dst1 = os.path.join(work, "one")
        subprocess.run(
            [binary, "encrypt", "-r", f"jwe:{keys}/ec256.pub.pem", "-r", f"pkcs7:{keys}/x509.crt",
             "-r", f"pgp:{pgp}/carol.pub.gpg", f"oci:{src}:v1", f"oci:{dst1}:v1"],
            check=True, env={**os.environ, "GNUPGHOME": work},
        )
        from_layout("layercrypt-one-each", dst1)
    finally:
        shutil.rmtree(work)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layercrypt", default=shutil.which("layercrypt"),
                        help="a layercrypt binary for the layercrypt-written seeds (default: PATH)")
    args = parser.parse_args()

    for label, layout in layouts():
        from_layout(label, layout)
    for name in sorted(os.listdir(os.path.join(TESTDATA, "hostile"))):
        if name.startswith("index-"):
            add("index", "hostile-" + name, read(os.path.join(TESTDATA, "hostile", name)))
    samples = os.path.join(TESTDATA, "samples")
    for name in ["privopts.json", "privopts.raw.json", "pubopts.json", "pubopts.raw.json"]:
        add("options_json", "sample-" + name, read(os.path.join(samples, name)))
    add("options_json", "pkcs7-options.json", read(os.path.join(TESTDATA, "pkcs7", "options.json")))
    # What Go also reads: any case, byte arrays, nulls, unknown members, duplicates.
    add("options_json", "lenient.json",
        b'{"SymKey":[1,2,3],"DIGEST":"d","CipherOptions":{"nonce":"AAE="},"extra":{"x":1},"cipher":null,"hmac":[255]}')
    for name in ["manifest-plain.json", "manifest-jwe-rsa.json", "manifest-multi.json"]:
        add("manifest", "sample-" + name, read(os.path.join(samples, name)))
        for n, layer in enumerate(json.loads(read(os.path.join(samples, name))).get("layers", [])):
            from_annotations(f"sample-{name}-layer{n}", layer.get("annotations") or {})
    jwe_dir = os.path.join(TESTDATA, "jwe")
    for name in sorted(os.listdir(jwe_dir)):
        if name.endswith(".jwe.json"):
            data = read(os.path.join(jwe_dir, name))
            add("jwe", name, data)
            c = compact(data)
            if c:
                add("jwe", name.replace(".jwe.json", ".compact"), c)
        elif name.endswith(".privopts.json"):
            add("options_json", name, read(os.path.join(jwe_dir, name)))
    for name in ["jwe-flattened.json", "jwe-general.json"]:
        add("jwe", "sample-" + name, read(os.path.join(samples, name)))
    pkcs7_dir = os.path.join(TESTDATA, "pkcs7")
    for name in sorted(os.listdir(pkcs7_dir)):
        if name.endswith(".der") and name != "x509.crt.der":
            add("pkcs7", name, read(os.path.join(pkcs7_dir, name)))
    add("pgp", "skopeo-alice-bob.pgp",
        base64.b64decode(read(os.path.join(TESTDATA, "pgp", "skopeo-alice-bob.pgp.b64"))))
    docker_archives()
    tars()
    # Inputs that found bugs (each has a regression test in the normal test suite).
    add("envelope", "regression-issue-7-line-breaks-only", b"?\n")
    if args.layercrypt:
        layercrypt_image(args.layercrypt)
    else:
        print("make-corpus: no layercrypt binary; skipping the layercrypt-written seeds", file=sys.stderr)

    shutil.rmtree(CORPUS, ignore_errors=True)
    total = 0
    for target, bucket in sorted(seeds.items()):
        d = os.path.join(CORPUS, target)
        os.makedirs(d)
        for name, data in sorted(bucket.items()):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
            total += len(data)
        print(f"{target}: {len(bucket)} seeds, {sum(map(len, bucket.values()))} bytes")
    print(f"total: {total} bytes")


if __name__ == "__main__":
    main()
