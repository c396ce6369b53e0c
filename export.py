"""Same as `hold-export`: python export.py RUN [--out DIR] [key=value …]."""

import sys

from hold.cli import export_main

if __name__ == "__main__":
    sys.exit(export_main())
