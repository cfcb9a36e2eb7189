"""``python -m audiodetic`` runs the command-line interface."""

from audiodetic.cli import main

raise SystemExit(main())
