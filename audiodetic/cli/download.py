"""``audiodetic download NAME...`` and ``audiodetic models``: fetch model files into the cache, list what is known.

``download`` prints the cached path of each file on stdout (one per line, so ``$(audiodetic download detic-r50)``
works); progress bars and messages go to stderr. A file already in the cache is re-hashed and checked instead of
downloaded again. ``models`` prints the table of known files and whether each is cached.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from audiodetic.cli.options import add_progress_option
from audiodetic.errors import InputError

__all__ = ["register", "run", "run_download", "run_models"]


def register(subparsers: Any) -> None:
    """Add the ``download`` and ``models`` subcommands to ``subparsers`` (both dispatch to :func:`run`)."""
    download = subparsers.add_parser(
        "download",
        help="download model files into the cache and verify them",
        description="Download known model files (names or aliases from `audiodetic models`) into the cache, "
        "verify their SHA-256 and print their paths. Cached files are re-checked, not downloaded again. "
        "Settings: AUDIODETIC_CACHE (cache directory), AUDIODETIC_MIRROR (replace the URL origin), "
        "AUDIODETIC_OFFLINE=1 (never use the network), AUDIODETIC_SHA256_<NAME> (pin a digest).",
    )
    download.add_argument("names", nargs="+", metavar="NAME", help="model name or alias, e.g. detic-r50")
    download.add_argument("--cache-dir", type=Path, default=None, help="cache directory (default: see above)")
    download.add_argument("--sha256", default=None, metavar="HEX",
                          help="expected SHA-256 of the file (only with a single NAME); recorded as pinned")
    add_progress_option(download)
    download.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                          help="network timeout (default: AUDIODETIC_DOWNLOAD_TIMEOUT or 60)")
    download.set_defaults(func=run)

    models = subparsers.add_parser(
        "models",
        help="list the known model files, their licences and whether they are cached",
        description="List every model file audiodetic knows: name, aliases, kind, licence, size and cache state.",
    )
    models.add_argument("--cache-dir", type=Path, default=None, help="cache directory to inspect")
    models.add_argument("--json", action="store_true", help="print JSON (one object per model) instead of a table")
    models.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point for both subcommands; returns the exit code."""
    if args.command == "models":
        return run_models(args)
    return run_download(args)


def run_download(args: argparse.Namespace) -> int:
    """Download (or re-verify) each NAME; print each path on stdout. Errors propagate to the dispatcher."""
    from audiodetic.errors import WeightsNotFoundError
    from audiodetic.weights import find_model, resolve
    from audiodetic.weights.table import known_names

    if args.sha256 is not None and len(args.names) != 1:
        raise InputError(f"--sha256 pins one file's digest; got {len(args.names)} names: {' '.join(args.names)}")
    unknown = [name for name in args.names if find_model(name) is None]
    if unknown:
        raise WeightsNotFoundError(f"unknown model name(s): {', '.join(unknown)}. Known: {'; '.join(known_names())}")
    for name in args.names:
        path = resolve(name, cache_dir=args.cache_dir, progress=not args.no_progress, sha256=args.sha256,
                       timeout=args.timeout, full_check=True)
        print(path, flush=True)
    return 0


def _human_size(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def run_models(args: argparse.Namespace) -> int:
    """Print the model table (or JSON with ``--json``) for the chosen cache directory."""
    from audiodetic.weights import MODELS, resolve_cache_dir

    root = resolve_cache_dir(args.cache_dir)
    rows: list[dict[str, Any]] = []
    for model in MODELS.values():
        path = root / model.filename
        cached = path.is_file()
        size = model.size if model.size is not None else (path.stat().st_size if cached else None)
        rows.append({
            "name": model.name, "aliases": list(model.aliases), "kind": model.kind, "licence": model.licence,
            "size": size, "cached": cached, "path": str(path), "url": model.url, "sha256": model.sha256,
            "architecture": model.architecture, "description": model.description,
        })
    if getattr(args, "json", False):
        json.dump({"cache_dir": str(root), "models": rows}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    header = ("NAME", "ALIASES", "KIND", "LICENCE", "SIZE", "CACHED")
    table = [header] + [
        (row["name"], ",".join(row["aliases"]) or "-", row["kind"], row["licence"], _human_size(row["size"]),
         row["path"] if row["cached"] else "no")
        for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    print(f"cache directory: {root}")
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)) + "  " + line[-1])
    print("Licences differ: ImageBind (imagebind_huge) is CC-BY-NC-4.0, non-commercial use only.")
    return 0
