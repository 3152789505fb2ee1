#!/usr/bin/env python3
"""Command line for feedrank_tools.train (see that module's docstring, or --help)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from feedrank_tools.train import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
