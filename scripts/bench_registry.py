#!/usr/bin/env python3
"""Re-keying an image in a registry (run it through scripts/bench-registry.sh).

A Distribution registry (Debian's docker-registry) on loopback, plain HTTP, holds one image
made by the project's generator (examples/mkimage.rs: SIZE of random data in 4 gzip layers),
encrypted for rsa4096. Two ways to add a recipient (ec256), alternating, RUNS times each:

  registry:  layercrypt rekey --add … docker://HOST/bench:v1          (manifests only)
  pull-push: skopeo copy docker://HOST/bench:v1 oci:DIR:v1 &&
             layercrypt rekey --add … oci:DIR:v1 &&
             skopeo copy oci:DIR:v1 docker://HOST/bench:v1           (into a fresh DIR each run)

Each run is timed (wall) and its traffic counted on the loopback interface (the bytes the
kernel moved through `lo` during the run, both directions, headers included; nothing else
should use loopback meanwhile). The table gives medians. Before each run the tag is put back
on the original image, so every run does the same work.
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target/release/layercrypt")
MKIMAGE = os.path.join(ROOT, "target/release/examples/mkimage")
PUB = os.path.join(ROOT, "testdata/keys/rsa4096.pub.pem")
PRIV = os.path.join(ROOT, "testdata/keys/rsa4096.pem")
SECOND_PUB = os.path.join(ROOT, "testdata/keys/ec256.pub.pem")


def run(cmd):
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed:\n{proc.stderr}")


def lo_bytes():
    """Bytes sent through the loopback interface so far (each byte crosses it once)."""
    with open("/proc/net/dev") as fh:
        for line in fh:
            name, _, data = line.partition(":")
            if name.strip() == "lo":
                return int(data.split()[8])
    sys.exit("bench: no loopback interface in /proc/net/dev")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_registry(work):
    port = free_port()
    config = os.path.join(work, "registry.yml")
    with open(config, "w") as fh:
        fh.write(
            f"version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {work}/storage\n"
            f"http:\n  addr: 127.0.0.1:{port}\n  secret: bench\n"
        )
    proc = subprocess.Popen(
        ["/usr/bin/docker-registry", "serve", config],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("bench: the registry did not start")


def skopeo_copy(src, dst):
    run(["skopeo", "copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false", src, dst])


def measure(fn):
    before, start = lo_bytes(), time.perf_counter()
    fn()
    return time.perf_counter() - start, lo_bytes() - before


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1G", help="image size, over 4 layers (default 1G)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    args = ap.parse_args()
    work = args.dir or tempfile.mkdtemp(prefix="layercrypt-bench-registry-")
    os.makedirs(work, exist_ok=True)
    registry, host = start_registry(work)
    try:
        plain = os.path.join(work, "plain")
        shutil.rmtree(plain, ignore_errors=True)
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
        size = args.size
        per_layer = int(float(size[:-1]) * units[size[-1].upper()]) // 4 if size[-1:].upper() in units else int(size) // 4
        run([MKIMAGE, plain, "--ref", "v1", "--layers", "4", "--layer-size", str(per_layer), "--compression", "gzip-fast"])
        enc = os.path.join(work, "enc")
        shutil.rmtree(enc, ignore_errors=True)
        run([BIN, "encrypt", "-q", "-r", f"jwe:{PUB}", f"oci:{plain}:v1", f"oci:{enc}:v1"])
        image = f"docker://{host}/bench:v1"
        skopeo_copy(f"oci:{enc}:v1", f"docker://{host}/bench:original")
        add = ["-q", "-k", PRIV, "--add", f"jwe:{SECOND_PUB}"]

        def reset():
            skopeo_copy(f"docker://{host}/bench:original", image)

        def in_registry():
            run([BIN, "rekey", "--tls-verify=false"] + add + [image])

        def pull_rekey_push():
            layout = os.path.join(work, "pulled")
            shutil.rmtree(layout, ignore_errors=True)
            skopeo_copy(image, f"oci:{layout}:v1")
            run([BIN, "rekey"] + add + [f"oci:{layout}:v1"])
            skopeo_copy(f"oci:{layout}:v1", image)

        results = {"registry": [], "pull-push": []}
        for _ in range(args.runs):
            for name, fn in (("registry", in_registry), ("pull-push", pull_rekey_push)):
                reset()
                results[name].append(measure(fn))
        image_bytes = sum(
            os.path.getsize(os.path.join(d, f))
            for d, _, files in os.walk(os.path.join(enc, "blobs"))
            for f in files
        )
        print(f"image: {image_bytes / 1e6:.0f} MB in 4 layers; {args.runs} runs each, medians")
        print(f"{'way':<12}{'time (s)':>10}{'loopback bytes':>18}")
        for name in ("registry", "pull-push"):
            wall = statistics.median(r[0] for r in results[name])
            traffic = statistics.median(r[1] for r in results[name])
            print(f"{name:<12}{wall:>10.3f}{traffic:>18,.0f}")
        pr, pp = results["registry"], results["pull-push"]
        print(
            "pull-push / registry: "
            f"{statistics.median(r[0] for r in pp) / statistics.median(r[0] for r in pr):.0f}x the time, "
            f"{statistics.median(r[1] for r in pp) / statistics.median(r[1] for r in pr):.0f}x the bytes"
        )
    finally:
        registry.kill()
        registry.wait()
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
