"""Print the digest that an OCI layout's index.json gives an image: the entry named REF
(org.opencontainers.image.ref.name), or without REF the first entry. For the scripts' round
trips (install.sh, check-deb.sh, package.sh), which compare a decrypted image with the original.

    python3 scripts/image_digest.py LAYOUT [REF]
"""

import json
import sys

layout, ref = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else None)
with open(f"{layout}/index.json") as f:
    entries = json.load(f)["manifests"]
if ref is not None:
    entries = [
        e for e in entries
        if e.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref
    ]
if not entries:
    sys.exit(f"{layout}: no image{' named ' + ref if ref else ''}")
print(entries[0]["digest"])
