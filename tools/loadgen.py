#!/usr/bin/env python3
"""See feedrank_tools/loadgen.py for the full description and options (--help)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from feedrank_tools.loadgen import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
