#!/usr/bin/env python3
"""The Python ranking pipeline baseline (issue 5): rankings/s, p50/p99, breakdown, overlap@N.

    python tools/bench_pipeline.py --bundle data/world-100k/bundle --users 1000 --num-items 50 --at now,nofresh

(Implemented in feedrank_tools/bench_pipeline.py and feedrank_tools/pipeline.py.)
"""
import os
import sys

# One thread: numpy's BLAS too (torch and faiss are set to one thread in the code).
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from feedrank_tools.bench_pipeline import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
