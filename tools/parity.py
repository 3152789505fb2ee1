#!/usr/bin/env python3
"""Command line for feedrank_tools.parity: the parity cases the Swift tests reproduce (see that
module's docstring for the file format, or --help)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from feedrank_tools.parity import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
