#!/usr/bin/env python3
"""The seed-style Python batch job (issue 7's comparison): every active user's feed into L1.

    python tools/batch_baseline.py --bundle data/world-100k/bundle --batch-size 1000 --redis redis://127.0.0.1:16379 [--limit N]

(Implemented in feedrank_tools/batch_baseline.py.)
"""
import os
import sys

# One thread: numpy's BLAS too (torch and faiss are set to one thread in the code).
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from feedrank_tools.batch_baseline import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
