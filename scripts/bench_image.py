#!/usr/bin/env python3
"""Whole-image benchmark of layercrypt against skopeo (run it through scripts/bench-image.sh).

Images come from the project's own generator (examples/mkimage.rs: random, incompressible
files, gzip level 1; no downloads): SIZE split over 4 layers, SIZE in one layer, and a tiny
one-layer image for start-up cost. Each is encrypted from an OCI layout to a new OCI layout and
decrypted again, by layercrypt and by `skopeo copy --encryption-key / --decryption-key`,
alternating the tools, RUNS times each, with the inputs in the page cache. The 4-layer image is
also encrypted and decrypted as an OCI archive (`oci-archive:`, a tar of the layout) into a new
archive.

For each run: wall time (measured here), CPU use and peak RSS (`/usr/bin/time -v`). The table
gives medians, MB/s (image bytes / s), the ratio to skopeo, and the ratio to the hardware
limit: every byte is hashed three times (source digest, HMAC, output digest), so no tool can be
faster than 3 * bytes / (cores * SHA-256 rate of one core), the rate measured by
examples/hashrate.rs just before. It also times `rekey --add` and `--remove` in place on the
SIZE image (no layer data is read), and `encrypt` of the tiny image.

layercrypt fsyncs every blob and directory it publishes; skopeo does not.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target/release/layercrypt")
MKIMAGE = os.path.join(ROOT, "target/release/examples/mkimage")
HASHRATE = os.path.join(ROOT, "target/release/examples/hashrate")
POLICY = os.path.join(ROOT, "testdata/policy.json")
PUB = os.path.join(ROOT, "testdata/keys/rsa4096.pub.pem")
PRIV = os.path.join(ROOT, "testdata/keys/rsa4096.pem")
SECOND_PUB = os.path.join(ROOT, "testdata/keys/ec256.pub.pem")


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text[-1:].upper() in units:
        return int(float(text[:-1]) * units[text[-1].upper()])
    return int(text)


def timed(cmd):
    """Run cmd under /usr/bin/time -v; return (wall seconds, CPU percent, peak RSS KiB)."""
    start = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-v"] + cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed:\n{proc.stderr}")
    cpu = rss = 0.0
    for line in proc.stderr.splitlines():
        line = line.strip()
        if line.startswith("Percent of CPU this job got:"):
            cpu = float(line.split(":")[1].strip().rstrip("%") or 0)
        elif line.startswith("Maximum resident set size (kbytes):"):
            rss = float(line.split(":")[1])
    return wall, cpu, rss


def image_bytes(layout):
    total = 0
    for dirpath, _, files in os.walk(os.path.join(layout, "blobs")):
        for f in files:
            total += os.path.getsize(os.path.join(dirpath, f))
    return total


def warm(layout):
    """Read every blob once, so runs start from the page cache as their predecessors did."""
    if os.path.isfile(layout):
        with open(layout, "rb") as fh:
            while fh.read(1 << 24):
                pass
        return
    for dirpath, _, files in os.walk(os.path.join(layout, "blobs")):
        for f in files:
            with open(os.path.join(dirpath, f), "rb") as fh:
                while fh.read(1 << 24):
                    pass


def generate(path, layers, layer_size):
    if not os.path.isfile(os.path.join(path, "index.json")):
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run(
            [MKIMAGE, path, "--ref", "v1", "--layers", str(layers),
             "--layer-size", str(layer_size), "--compression", "gzip-fast"],
            check=True, stdout=subprocess.DEVNULL,
        )


def ref(path):
    """The image reference of a layout directory or of an OCI archive (a .tar file)."""
    form = "oci-archive" if path.endswith(".tar") else "oci"
    return f"{form}:{path}:v1"


def lc_encrypt(src, dst):
    return [BIN, "encrypt", "-q", "-r", f"jwe:{PUB}", ref(src), ref(dst)]


def lc_decrypt(src, dst):
    return [BIN, "decrypt", "-q", "-k", PRIV, ref(src), ref(dst)]


def sk_encrypt(src, dst):
    return ["skopeo", "--policy", POLICY, "copy", "-q", "--encryption-key", f"jwe:{PUB}",
            ref(src), ref(dst)]


def sk_decrypt(src, dst):
    return ["skopeo", "--policy", POLICY, "copy", "-q", "--decryption-key", PRIV,
            ref(src), ref(dst)]


def remove(path):
    if os.path.isfile(path):
        os.remove(path)
    else:
        shutil.rmtree(path, ignore_errors=True)


def archive(layout):
    """An OCI archive of `layout` beside it (made once): what `skopeo copy` to oci-archive: makes."""
    path = layout + ".tar"
    if not os.path.isfile(path):
        subprocess.run(["tar", "-C", layout, "-cf", path + ".part", "."], check=True)
        os.rename(path + ".part", path)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1G", help="image size (default 1G)")
    ap.add_argument("--runs", type=int, default=5, help="runs per tool and operation")
    ap.add_argument("--dir", default="/tmp/layercrypt-bench", help="scratch directory")
    ap.add_argument("--no-skopeo", action="store_true", help="time layercrypt only")
    args = ap.parse_args()

    size = parse_size(args.size)
    os.makedirs(args.dir, exist_ok=True)
    cores = os.cpu_count() or 1
    rates = dict(line.split() for line in subprocess.run(
        [HASHRATE], check=True, capture_output=True, text=True).stdout.splitlines())
    sha = float(rates["sha256"])
    aes = float(rates["aes256ctr"])

    four = os.path.join(args.dir, f"plain-{args.size}-4")
    images = [
        (f"{args.size}, 4 layers", four, 4),
        (f"{args.size}, 1 layer", os.path.join(args.dir, f"plain-{args.size}-1"), 1),
        (f"{args.size}, 4 layers, oci-archive", four + ".tar", 4),
    ]
    tools = [("layercrypt", lc_encrypt, lc_decrypt)]
    if not args.no_skopeo:
        tools.append(("skopeo", sk_encrypt, sk_decrypt))
    out = os.path.join(args.dir, "out")
    rows = []
    rekey_image = None
    for label, plain, layers in images:
        if plain.endswith(".tar"):
            generate(plain[:-4], layers, size // layers)
            archive(plain[:-4])
            nbytes = os.path.getsize(plain)
        else:
            generate(plain, layers, size // layers)
            nbytes = image_bytes(plain)
        limit = 3 * nbytes / (cores * sha)
        # Each tool decrypts its own encrypted copy (the formats are identical; this keeps the
        # runs independent of each other).
        encrypted = {}
        for tool, enc, _ in tools:
            encrypted[tool] = os.path.join(args.dir, f"enc-{tool}-{os.path.basename(plain)}")
            remove(encrypted[tool])
            subprocess.run(enc(plain, encrypted[tool]), check=True)
        rekey_image = rekey_image or encrypted["layercrypt"]
        dst = os.path.join(args.dir, "out.tar" if plain.endswith(".tar") else "out")
        results = {}
        for _ in range(args.runs):
            for op in ("encrypt", "decrypt"):
                for tool, enc, dec in tools:
                    src = plain if op == "encrypt" else encrypted[tool]
                    remove(dst)
                    warm(src)
                    cmd = enc(src, dst) if op == "encrypt" else dec(src, dst)
                    results.setdefault((op, tool), []).append(timed(cmd))
        for op in ("encrypt", "decrypt"):
            skopeo_median = None
            if (op, "skopeo") in results:
                skopeo_median = statistics.median(r[0] for r in results[(op, "skopeo")])
            for tool, _, _ in tools:
                runs = results[(op, tool)]
                wall = statistics.median(r[0] for r in runs)
                rows.append((label, op, tool, wall, nbytes / wall / 1e6,
                             (skopeo_median / wall) if skopeo_median else None,
                             wall / limit, statistics.median(r[1] for r in runs),
                             max(r[2] for r in runs) / 1024))
        remove(dst)

    # Re-keying touches only manifests: add a recipient, then remove it again, in place.
    rekey = {"add": [], "remove": []}
    for _ in range(args.runs):
        for op in ("add", "remove"):
            rekey[op].append(timed([BIN, "rekey", "-q", "--in-place", "-k", PRIV,
                                    f"--{op}", f"jwe:{SECOND_PUB}", f"oci:{rekey_image}:v1"]))

    tiny = os.path.join(args.dir, "tiny")
    if not os.path.isfile(os.path.join(tiny, "index.json")):
        shutil.rmtree(tiny, ignore_errors=True)
        subprocess.run([MKIMAGE, tiny, "--ref", "v1", "--layer-size", "4K"], check=True,
                       stdout=subprocess.DEVNULL)
    tiny_runs = []
    for _ in range(max(20, args.runs)):
        shutil.rmtree(out, ignore_errors=True)
        tiny_runs.append(timed(lc_encrypt(tiny, out)))
    shutil.rmtree(out, ignore_errors=True)

    cpu_name = "unknown CPU"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu_name = line.split(":", 1)[1].strip()
                break
    version = subprocess.run([BIN, "--version"], capture_output=True, text=True).stdout.split()
    skopeo_version = "not run"
    if not args.no_skopeo:
        skopeo_version = subprocess.run(["skopeo", "--version"], capture_output=True,
                                        text=True).stdout.split()[-1]
    print(f"machine: {cores} cores, {cpu_name}; SHA-256 {sha / 1e9:.2f} GB/s and "
          f"AES-256-CTR {aes / 1e9:.2f} GB/s per core (examples/hashrate.rs)")
    print(f"layercrypt {version[1] if len(version) > 1 else '?'}, skopeo {skopeo_version}; "
          f"median of {args.runs} runs, warm page cache")
    print(f"hardware limit = 3 x image bytes / ({cores} x SHA-256 rate)")
    print()
    header = ("image", "op", "tool", "median s", "MB/s", "x skopeo", "x limit", "CPU %",
              "peak RSS MiB")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for label, op, tool, wall, mbs, vs, lim, cpu, rss in rows:
        vs_text = f"{vs:.1f}" if vs else "-"
        print(f"| {label} | {op} | {tool} | {wall:.2f} | {mbs:.0f} | {vs_text} | "
              f"{lim:.2f} | {cpu:.0f} | {rss:.1f} |")
    print()
    for op, runs in rekey.items():
        ms = statistics.median(r[0] for r in runs) * 1000
        rss = max(r[2] for r in runs) / 1024
        print(f"rekey --{op} in place ({images[0][0]}): median {ms:.1f} ms, peak RSS {rss:.1f} MiB")
    ms = statistics.median(r[0] for r in tiny_runs) * 1000
    rss = max(r[2] for r in tiny_runs) / 1024
    print(f"encrypt of a tiny image (one 4 KiB layer, start-up cost): median {ms:.1f} ms, "
          f"peak RSS {rss:.1f} MiB")


if __name__ == "__main__":
    main()
