#!/usr/bin/env python3
"""Synthetic clustered, L2-normalised vectors with exact inner-product ground truth.

Writes DIR/base.fvecs (N x D), DIR/queries.fvecs (Q x D, same distribution, independent draws)
and DIR/gt.ivecs (Q x K: ids of the exact top-K base vectors by inner product, best first),
in the TEXMEX format (per vector an int32 dimension, then the values).

The data imitates item embeddings: a few thousand topics of very different sizes (Zipf-like),
each a Gaussian blob of its own width around a random direction; points are L2-normalised.
Everything derives from --seed, so the same command always writes the same bytes.

    python tools/gen_synthetic.py --out data/synth-1m            # 1,000,000 x 64, 10,000 queries
    python tools/gen_synthetic.py --out /tmp/s --n 20000 --queries 200   # a small set
"""
import argparse
import os
import sys
import time

import numpy as np


def write_vecs(path, array, dtype):
    """TEXMEX: for each row, int32 dimension followed by the row (float32 or int32)."""
    n, d = array.shape
    out = np.empty((n, d + 1), dtype=np.int32)
    out[:, 0] = d
    out[:, 1:] = np.ascontiguousarray(array, dtype=dtype).view(np.int32)
    tmp = path + ".tmp"
    out.tofile(tmp)
    os.replace(tmp, path)


def sample(rng, centers, widths, weights, n, chunk=200_000):
    """n points: pick a topic by weight, add isotropic noise of that topic's width, normalise."""
    d = centers.shape[1]
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        topic = rng.choice(len(centers), size=m, p=weights)
        noise = rng.standard_normal((m, d), dtype=np.float32)
        x = centers[topic] + noise * widths[topic, None]
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[start:start + m] = x
    return out


def exact_top_k(base, queries, k, query_block=256, progress=True):
    """Exact top-k ids by inner product (blocked matmul + argpartition), best first."""
    nq = len(queries)
    gt = np.empty((nq, k), dtype=np.int32)
    t0 = time.time()
    for s in range(0, nq, query_block):
        q = queries[s:s + query_block]
        scores = q @ base.T                              # (b, N) float32
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-top, axis=1, kind="stable")
        gt[s:s + len(q)] = np.take_along_axis(part, order, axis=1)
        if progress:
            done = s + len(q)
            el = time.time() - t0
            print(f"  ground truth {done}/{nq} queries, {el:.0f} s elapsed, "
                  f"ETA {el / done * (nq - done):.0f} s", file=sys.stderr, flush=True)
    return gt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="data/synth-1m")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--topics", type=int, default=3000)
    ap.add_argument("--k", type=int, default=100, help="ground-truth depth")
    ap.add_argument("--seed", type=int, default=20261126)
    args = ap.parse_args()
    if args.k > args.n:
        ap.error(f"--k {args.k} exceeds --n {args.n}")

    rng = np.random.default_rng(args.seed)
    d = args.dim
    centers = rng.standard_normal((args.topics, d), dtype=np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    # Topic widths: per-dimension noise sigma so that |noise| is 0.6..1.4 of |center|.
    widths = (rng.uniform(0.6, 1.4, size=args.topics) / np.sqrt(d)).astype(np.float32)
    # Zipf-like popularity: a few big topics, a long tail.
    weights = 1.0 / np.arange(1, args.topics + 1) ** 0.8
    weights = rng.permutation(weights)
    weights /= weights.sum()

    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    base = sample(rng, centers, widths, weights, args.n)
    queries = sample(rng, centers, widths, weights, args.queries)
    print(f"sampled {args.n} base + {args.queries} queries (dim {d}) in {time.time() - t0:.1f} s",
          file=sys.stderr)
    gt = exact_top_k(base, queries, args.k)
    write_vecs(os.path.join(args.out, "base.fvecs"), base, np.float32)
    write_vecs(os.path.join(args.out, "queries.fvecs"), queries, np.float32)
    write_vecs(os.path.join(args.out, "gt.ivecs"), gt, np.int32)
    print(f"wrote {args.out}/{{base.fvecs,queries.fvecs,gt.ivecs}} in {time.time() - t0:.1f} s",
          file=sys.stderr)


if __name__ == "__main__":
    main()
