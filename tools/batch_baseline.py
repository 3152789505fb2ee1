#!/usr/bin/env python3
"""The seed-style Python batch job (issue 7's comparison): every active user's feed into L1.

    python tools/batch_baseline.py --bundle data/world-100k/bundle --batch-size 1000 --redis redis://127.0.0.1:16379 [--limit N]

(Implemented in feedrank_tools/batch_baseline.py.)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from feedrank_tools.batch_baseline import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
