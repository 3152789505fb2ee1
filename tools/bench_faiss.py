#!/usr/bin/env python3
"""faiss-cpu side of the IVF-PQ comparison (issue 4), on the same files as `feedrank index bench`.

For each factory string (default IVF{nlist},PQ16x8 and IVF{nlist},PQ64x4fs, inner product),
trains on a random sample of --train-sample base vectors, adds the whole base, wraps the index in
IndexRefineFlat (k_factor --refine) and, for every nprobe, measures on one thread:
  - recall@10  of the final top-10 (k=10, refined) against the exact ground truth,
  - recall@100 of the final top-100 (k=100, refined),
  - queries/s with one query per call (k=10) and with one batch call over all queries (k=10),
each timing the median of --repeat runs. Prints a table and, with --json, writes the results.

    python tools/bench_faiss.py --base data/synth-1m/base.fvecs --queries data/synth-1m/queries.fvecs \
        --ground-truth data/synth-1m/gt.ivecs --nlist 4096 --nprobe 1,4,8,16,32,64 --refine 4
"""
import argparse
import json
import platform
import statistics
import sys
import time

import numpy as np


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    if raw.size == 0:
        sys.exit(f"error: {path}: empty file")
    d = int(raw[0])
    if d <= 0 or raw.size % (d + 1) != 0:
        sys.exit(f"error: {path}: not a TEXMEX file (dimension {d}, {raw.size * 4} bytes)")
    rows = raw.reshape(-1, d + 1)
    if not np.all(rows[:, 0] == d):
        bad = int(np.nonzero(rows[:, 0] != d)[0][0])
        sys.exit(f"error: {path}: vector {bad} has dimension {rows[bad, 0]}, expected {d}")
    return np.ascontiguousarray(rows[:, 1:]).view(dtype)


def recall(found, gt, k):
    hits = 0
    for f, g in zip(found[:, :k], gt[:, :k]):
        hits += len(set(f.tolist()) & set(g.tolist()))
    return hits / (len(gt) * k)


def code_memory(ivf):
    """Bytes of PQ codes in the inverted lists (fast-scan lists are stored in padded blocks)."""
    import faiss
    invlists = faiss.downcast_InvertedLists(ivf.invlists)
    sizes = [invlists.list_size(i) for i in range(ivf.nlist)]
    if hasattr(invlists, "n_per_block"):
        return sum((s + invlists.n_per_block - 1) // invlists.n_per_block * invlists.block_size for s in sizes)
    return sum(sizes) * invlists.code_size


def median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--ground-truth", required=True)
    ap.add_argument("--nlist", type=int, default=4096)
    ap.add_argument("--codes", default="PQ16x8,PQ64x4fs",
                    help="comma-separated faiss PQ specs appended to IVF{nlist},")
    ap.add_argument("--nprobe", default="1,4,8,16,32,64")
    ap.add_argument("--refine", type=int, default=4, help="IndexRefineFlat k_factor")
    ap.add_argument("--train-sample", type=int, default=0, help="0: 64 x nlist")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--single-queries", type=int, default=0,
                    help="queries for the one-query-per-call loop (0: all)")
    ap.add_argument("--json", help="write results here")
    args = ap.parse_args()

    import faiss
    faiss.omp_set_num_threads(1)

    base = read_vecs(args.base, np.float32)
    queries = read_vecs(args.queries, np.float32)
    gt = read_vecs(args.ground_truth, np.int32)
    if base.shape[1] != queries.shape[1]:
        sys.exit(f"error: {args.queries}: dimension {queries.shape[1]} differs from {args.base}'s {base.shape[1]}")
    if len(gt) != len(queries):
        sys.exit(f"error: {args.ground_truth}: {len(gt)} rows for {len(queries)} queries")
    n, d = base.shape
    nq = len(queries)
    nsingle = args.single_queries or nq
    nprobes = [int(x) for x in args.nprobe.split(",")]
    sample = args.train_sample or 64 * args.nlist
    print(f"faiss {faiss.__version__}, {n} x {d} base, {nq} queries, nlist {args.nlist}, "
          f"train sample {sample}, refine k_factor {args.refine}, 1 thread", file=sys.stderr)

    results = {"engine": "faiss", "faiss_version": faiss.__version__, "machine": platform.processor()
               or platform.machine(), "n": n, "d": d, "nq": nq, "nlist": args.nlist,
               "refine": args.refine, "configs": []}
    for spec in args.codes.split(","):
        factory = f"IVF{args.nlist},{spec}"
        index = faiss.index_factory(d, factory, faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.max_points_per_centroid = max(1, sample // args.nlist)
        ivf.cp.seed = 1234
        t0 = time.perf_counter()
        index.train(base)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        index.add(base)
        add_s = time.perf_counter() - t0
        code_bytes = code_memory(ivf)
        refined = faiss.IndexRefineFlat(index, faiss.swig_ptr(base))
        refined.k_factor = args.refine
        print(f"{factory}: train {train_s:.1f} s, add {add_s:.1f} s, codes {code_bytes / 2**20:.1f} MiB",
              file=sys.stderr)
        rows = []
        for p in nprobes:
            ivf.nprobe = p
            _, i10 = refined.search(queries, 10)
            _, i100 = refined.search(queries, 100)
            r10, r100 = recall(i10, gt, 10), recall(i100, gt, 100)

            def single():
                for i in range(nsingle):
                    refined.search(queries[i:i + 1], 10)

            def batch():
                refined.search(queries, 10)

            qps_single = nsingle / median_time(single, args.repeat)
            qps_batch = nq / median_time(batch, args.repeat)
            rows.append({"nprobe": p, "recall10": r10, "recall100": r100,
                         "qps_single": qps_single, "qps_batch": qps_batch})
            print(f"  nprobe {p:3d}  R@10 {r10:.4f}  R@100 {r100:.4f}  "
                  f"single {qps_single:8.0f} q/s  batch {qps_batch:8.0f} q/s", file=sys.stderr, flush=True)
        results["configs"].append({"name": f"faiss {factory}+RefineFlat({args.refine})",
                                   "train_s": train_s, "add_s": add_s, "code_bytes": code_bytes,
                                   "rows": rows})
        del refined, index
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
