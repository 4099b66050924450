"""`python -m exporter`: the command line."""

from exporter.cli import main

raise SystemExit(main())
