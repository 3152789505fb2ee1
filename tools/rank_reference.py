#!/usr/bin/env python3
"""Exact reference rankings (contract section 3) of parity cases:

    python tools/rank_reference.py --bundle DIR --cases CASES.jsonl --num-items N --out OUT.jsonl

(Implemented in feedrank_tools/rank_reference.py; the rules are in feedrank_tools/rules.py.)
"""
import os
import sys

# One thread: numpy's BLAS too (torch and faiss are set to one thread in the code).
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from feedrank_tools.rank_reference import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
