"""Same as `hold-train`: python train.py SEQ --out RUN [--config …] [key=value …]."""

import sys

from hold.cli import train_main

if __name__ == "__main__":
    sys.exit(train_main())
