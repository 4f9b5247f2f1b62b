"""``python -m kerasinit`` runs the command line."""

from kerasinit.cli import main

raise SystemExit(main())
