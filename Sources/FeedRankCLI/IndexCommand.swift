import ArgumentParser
import LinearAlgebra
import Ranking
import RankingModel
import VectorIndex
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `feedrank index build|bench` (issue 4).
struct IndexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index",
        abstract: "Build or benchmark the IVF-PQ item index.",
        subcommands: [IndexBuildCommand.self, IndexBenchCommand.self]
    )
}

/// Options shared by build and bench: the index's shape.
struct IndexShapeOptions: ParsableArguments {
    @Option(help: "Inverted lists (coarse centroids). Default: 4·√N rounded to a power of two.")
    var nlist: Int?

    @Option(help: "PQ sub-quantizers M (D % M == 0). Default: D with --bits 4, D/4 with --bits 8.")
    var m: Int?

    @Option(help: "Bits per PQ code: 4 (SIMD fast-scan) or 8.")
    var bits: Int = 4

    @Option(name: .customLong("train-sample"), help: "Vectors in the coarse k-means training sample. Default: 64 × nlist.")
    var trainSample: Int?

    @Option(help: "Seed of every random choice in training.")
    var seed: UInt64 = 1234

    func configuration(dimension d: Int, count n: Int) throws -> IVFPQConfiguration {
        let lists = try nlist ?? {
            guard n > 0 else { throw usageError("cannot pick --nlist for an empty set") }
            var p = 1
            while p * 2 <= max(1, Int(4 * Double(n).squareRoot())) { p *= 2 }
            return max(1, min(p, n))
        }()
        guard lists >= 1 else { throw usageError("--nlist must be >= 1, got \(lists)") }
        guard lists <= n else { throw usageError("--nlist \(lists) exceeds the \(n) vectors to train on") }
        guard bits == 4 || bits == 8 else { throw usageError("--bits must be 4 or 8, got \(bits)") }
        let mm = m ?? (bits == 4 ? (d % 2 == 0 && d <= 256 ? d : max(2, d / 2)) : max(1, d / 4))
        guard mm >= 1, d % mm == 0 else { throw usageError("--m \(mm) does not divide the dimension \(d)") }
        if bits == 4, mm % 2 != 0 || mm > 256 { throw usageError("--m must be even and <= 256 with --bits 4, got \(mm)") }
        let sample = trainSample ?? 64 * lists
        guard sample >= lists else { throw usageError("--train-sample \(sample) is smaller than --nlist \(lists)") }
        return IVFPQConfiguration(dimension: d, nlist: lists, subquantizers: mm, bitsPerCode: bits,
                                  maxTrainingPointsPerList: (sample + lists - 1) / lists, seed: seed)
    }
}

/// `feedrank index build --bundle DIR --out FILE`: the serving index of a bundle — its organic
/// items at or above the quality floor (promoted items are scored exactly on every request,
/// contract section 3; items below the floor can never appear), ids = bundle rows, labels =
/// item categories. `feedrank serve --index FILE` and `rank --index` load it.
struct IndexBuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Train the serving IVF-PQ index on a bundle's organic items (those at or above the quality floor) and write it to one file.")

    @Option(help: "Model bundle directory.")
    var bundle: String

    @Option(help: "Index file to write.")
    var out: String

    @OptionGroup var shape: IndexShapeOptions

    func run() throws {
        BLAS.threadCount = 1
        let progress = ProgressReporter(task: "index build")
        let b: ModelBundle
        do { b = try ModelBundle.load(directory: bundle) } catch { throw usageError("--bundle \(bundle): \(error)") }
        for w in b.warnings { progress.log("bundle warning: \(w)") }
        let floor = RankingRules().qualityFloor
        let indexed = RankingIndexBuilder.indexedRows(b, qualityFloor: floor).count
        let promoted = b.items.lazy.filter(\.promoted).count
        let d = b.embeddingDimension
        let config = try shape.configuration(dimension: d, count: indexed)
        progress.log("\(indexed) organic items at or above the quality floor \(floor) (\(promoted) promoted and \(b.itemCount - promoted - indexed) below the floor left out), D = \(d), \(b.manifest.categories.count) categories; nlist \(config.nlist), PQ \(config.subquantizers)x\(config.bitsPerCode)")
        let index: IVFPQIndex
        let clock = Stopwatch()
        do {
            index = try RankingIndexBuilder.build(bundle: b, configuration: config) { phase, done, total in
                progress.update(phase: phase, done: done, total: total)
            }
            try index.save(to: out)
        } catch {
            throw runtimeError("\(error)")
        }
        progress.finish()
        print("wrote \(out): \(index.count) items, \(index.labels.count) labels, codes \(formatBytes(index.codeBytes)), in \(String(format2: clock.seconds)) s")
    }
}

/// `feedrank index bench`: recall and queries/s per nprobe on TEXMEX files with ground truth.
struct IndexBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Recall@10/@100 and queries/s per nprobe of the IVF-PQ index on .fvecs/.ivecs files.")

    @Option(help: "Base vectors (.fvecs); ids are row numbers.")
    var base: String
    @Option(help: "Query vectors (.fvecs).")
    var queries: String
    @Option(name: .customLong("ground-truth"), help: "Exact neighbours of each query, best first (.ivecs).")
    var groundTruth: String
    @OptionGroup var shape: IndexShapeOptions
    @Option(help: "Comma-separated nprobe values.")
    var nprobe: String = "1,4,8,16,32,64"
    @Option(help: "Re-score k × R candidates exactly against the base vectors (IndexRefineFlat k_factor).")
    var refine: Int = 4
    @Option(help: "Worker threads of the batch search (the single-query loop is always one thread).")
    var threads: Int = 1
    @Option(name: .customLong("repeat"), help: "Timed runs per measurement; the median is reported.")
    var repetitions: Int = 3
    @Option(name: .customLong("single-queries"), help: "Queries in the one-query-per-call loop (default: all).")
    var singleQueries: Int?
    @Option(help: "Also write the results as JSON to this file.")
    var json: String?

    func run() throws {
        BLAS.threadCount = 1
        let probes = try nprobe.split(separator: ",").map { s -> Int in
            guard let v = Int(s.trimmingSpaces), v >= 1 else { throw usageError("--nprobe: '\(s)' is not a positive integer") }
            return v
        }
        guard refine >= 1 else { throw usageError("--refine must be >= 1, got \(refine)") }
        guard threads >= 1 else { throw usageError("--threads must be >= 1, got \(threads)") }
        guard repetitions >= 1 else { throw usageError("--repeat must be >= 1, got \(repetitions)") }
        let progress = ProgressReporter(task: "index bench")
        let (b, n, d, q, nq, gt, gtk): ([Float], Int, Int, [Float], Int, [Int32], Int)
        do {
            (b, n, d) = try Texmex.readFvecs(base)
            let qq = try Texmex.readFvecs(queries)
            guard qq.dimension == d else { throw usageError("--queries \(queries): dimension \(qq.dimension) differs from --base's \(d)") }
            (q, nq) = (qq.values, qq.count)
            let g = try Texmex.readIvecs(groundTruth)
            guard g.count == nq else { throw usageError("--ground-truth \(groundTruth): \(g.count) rows for \(nq) queries") }
            guard g.dimension >= 10 else { throw usageError("--ground-truth \(groundTruth): needs >= 10 neighbours per query, has \(g.dimension)") }
            (gt, gtk) = (g.values, g.dimension)
        } catch let e as VectorIndexError {
            throw runtimeError("\(e)")
        }
        let config = try shape.configuration(dimension: d, count: n)
        let nsingle = min(nq, singleQueries ?? nq)
        progress.log("\(n) x \(d) base, \(nq) queries; nlist \(config.nlist), PQ\(config.subquantizers)x\(config.bitsPerCode)\(config.bitsPerCode == 4 ? "fs" : ""), refine \(refine), train sample \(config.nlist * config.maxTrainingPointsPerList)")

        let index: IVFPQIndex
        var trainSeconds = 0.0, addSeconds = 0.0
        do {
            index = try IVFPQIndex(configuration: config)
            try b.withUnsafeBufferPointer { (rows) throws(VectorIndexError) in
                let t0 = Stopwatch()
                try index.train(rows, count: n, progress: progress.update)
                trainSeconds = t0.seconds
                let t1 = Stopwatch()
                try index.add(rows, ids: (0..<n).map(Int64.init), progress: progress.update)
                addSeconds = t1.seconds
            }
        } catch {
            throw runtimeError("\(error)")
        }
        progress.finish()
        let bandwidth = measureReadBandwidth()
        print("engine: feedrank IVF\(config.nlist),PQ\(config.subquantizers)x\(config.bitsPerCode)\(config.bitsPerCode == 4 ? "fs" : "")+refine(\(refine)), 1 thread (batch: \(threads))")
        print("train \(String(format2: trainSeconds)) s, add \(String(format2: addSeconds)) s, codes \(formatBytes(index.codeBytes)) (\(String(format2: Double(index.codeBytes) / Double(n))) B/vector)")
        print("memory read bandwidth, 1 thread: \(String(format2: bandwidth / 1e9)) GB/s")
        print("nprobe  R@10    R@100   single q/s  batch q/s  codes B/query  scan-limit q/s")

        var rows: [String] = []
        let searcher = index.makeSearcher()
        b.withUnsafeBufferPointer { bp in
            q.withUnsafeBufferPointer { qp in
                let source = VectorSource(rows: bp, dimension: d)
                for p in probes {
                    let params = SearchParameters(nprobe: p, refineFactor: refine)
                    // Recall@10 (k = 10) and code bytes per query.
                    searcher.resetStatistics()
                    var hits10 = 0
                    for i in 0..<nq {
                        let res = searcher.search(qp.baseAddress! + i * d, k: 10, parameters: params, refine: source)
                        hits10 += overlap(res, gt, row: i, width: gtk, k: 10)
                    }
                    let bytesPerQuery = Double(searcher.statistics.codeBytesScanned) / Double(nq)
                    // Recall@100 (k = 100).
                    var hits100 = 0
                    let k100 = min(100, gtk)
                    for i in 0..<nq {
                        let res = searcher.search(qp.baseAddress! + i * d, k: k100, parameters: params, refine: source)
                        hits100 += overlap(res, gt, row: i, width: gtk, k: k100)
                    }
                    // Timings: one query per call, and one batch call.
                    var singleTimes: [Double] = [], batchTimes: [Double] = []
                    for _ in 0..<repetitions {
                        let t = Stopwatch()
                        for i in 0..<nsingle { _ = searcher.search(qp.baseAddress! + i * d, k: 10, parameters: params, refine: source) }
                        singleTimes.append(t.seconds)
                        let tb = Stopwatch()
                        _ = try? index.search(queries: qp, count: nq, k: 10, parameters: params, refine: source, threads: threads)
                        batchTimes.append(tb.seconds)
                    }
                    let r10 = Double(hits10) / Double(nq * 10), r100 = Double(hits100) / Double(nq * k100)
                    let qpsSingle = Double(nsingle) / median(singleTimes), qpsBatch = Double(nq) / median(batchTimes)
                    let scanLimit = bandwidth / max(1, bytesPerQuery)
                    print(String(describing: p).padded(6), String(format4: r10).padded(7), String(format4: r100).padded(7),
                          String(Int(qpsSingle)).padded(11), String(Int(qpsBatch)).padded(10),
                          String(Int(bytesPerQuery)).padded(14), String(Int(scanLimit)).padded(14))
                    rows.append("{\"nprobe\": \(p), \"recall10\": \(r10), \"recall100\": \(r100), \"qps_single\": \(qpsSingle), \"qps_batch\": \(qpsBatch), \"code_bytes_per_query\": \(bytesPerQuery)}")
                }
            }
        }
        if let json {
            let name = "feedrank IVF\(config.nlist),PQ\(config.subquantizers)x\(config.bitsPerCode)\(config.bitsPerCode == 4 ? "fs" : "")+refine(\(refine))"
            let text = """
            {"engine": "feedrank", "n": \(n), "d": \(d), "nq": \(nq), "nlist": \(config.nlist), "refine": \(refine), "bandwidth_bytes_per_s": \(bandwidth),
             "configs": [{"name": "\(name)", "train_s": \(trainSeconds), "add_s": \(addSeconds), "code_bytes": \(index.codeBytes),
              "rows": [\(rows.joined(separator: ",\n   "))]}]}

            """
            guard let f = fopen(json, "w") else { throw runtimeError("--json \(json): cannot create (\(String(cString: strerror(errno))))") }
            fputs(text, f)
            fclose(f)
        }
    }
}

// MARK: Helpers

private func overlap(_ res: UnsafeBufferPointer<Neighbor>, _ gt: [Int32], row: Int, width: Int, k: Int) -> Int {
    var hits = 0
    let truth = gt[(row * width)..<(row * width + k)]
    for nb in res.prefix(k) where truth.contains(Int32(truncatingIfNeeded: nb.id)) { hits += 1 }
    return hits
}

private func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// Sequential read bandwidth of one thread: a stream-like sum over 256 MiB, best of 3.
private func measureReadBandwidth(bytes: Int = 256 << 20) -> Double {
    let n = bytes / 4
    let buffer = UnsafeMutablePointer<Float>.allocate(capacity: n)
    defer { buffer.deallocate() }
    for i in stride(from: 0, to: n, by: 1024) { buffer[i] = Float(i & 7) }
    for i in 0..<n where i % 1024 != 0 { buffer[i] = 1 }
    var best = 0.0
    var sink: Float = 0
    for _ in 0..<3 {
        let t = Stopwatch()
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
        let raw = UnsafeRawPointer(buffer)
        var off = 0
        while off + 128 <= bytes {
            a0 += raw.loadUnaligned(fromByteOffset: off, as: SIMD8<Float>.self)
            a1 += raw.loadUnaligned(fromByteOffset: off + 32, as: SIMD8<Float>.self)
            a2 += raw.loadUnaligned(fromByteOffset: off + 64, as: SIMD8<Float>.self)
            a3 += raw.loadUnaligned(fromByteOffset: off + 96, as: SIMD8<Float>.self)
            off += 128
        }
        sink += (a0 + a1 + a2 + a3).sum()
        best = max(best, Double(bytes) / t.seconds)
    }
    if sink == -1 { print("") }    // keep the loop observable
    return best
}

private struct Stopwatch {
    private let start: timespec
    init() {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        start = ts
    }
    var seconds: Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec - start.tv_sec) + Double(ts.tv_nsec - start.tv_nsec) * 1e-9
    }
}

/// Bad flags: exit status 2, one line naming the flag (contract section 6; `CLIError`).
private func usageError(_ message: String) -> Error {
    CLIError.usage("index: \(message)")
}

/// Failure at run time: exit status 1, one line naming the file or step.
private func runtimeError(_ message: String) -> Error {
    CLIError.runtime("index: \(message)")
}

private func formatBytes(_ n: Int) -> String {
    n >= 1 << 20 ? "\(String(format2: Double(n) / Double(1 << 20))) MiB" : "\(String(format2: Double(n) / 1024)) KiB"
}

private extension String {
    init(format2 x: Double) { self = Self.fixed(x, digits: 2) }
    init(format4 x: Double) { self = Self.fixed(x, digits: 4) }

    static func fixed(_ x: Double, digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let r = (x * scale).rounded() / scale
        var s = String(r)
        if let dot = s.firstIndex(of: ".") {
            let decimals = s.distance(from: dot, to: s.endIndex) - 1
            if decimals < digits { s += String(repeating: "0", count: digits - decimals) }
        } else {
            s += "." + String(repeating: "0", count: digits)
        }
        return s
    }

    func padded(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }

    var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}

private extension Substring {
    var trimmingSpaces: String { String(self).trimmingSpaces }
}
