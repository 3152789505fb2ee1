#!/usr/bin/env python3
"""See feedrank_tools/worker_baseline.py for the full description and options (--help)."""
import os
import sys

# One thread: numpy's BLAS too (torch and faiss are set to one thread in the code).
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from feedrank_tools.worker_baseline import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
