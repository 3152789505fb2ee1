import ArgumentParser
import Foundation
import VectorIndex

/// `feedrank-bench kernels`: the ranking's int8 pass (`Int8Rows.dots`, the fresh and promoted
/// sources) on one thread — ns per row for the vector kernel against one product at a time, in the
/// same run, interleaved, with the rows hot in cache and cold (a working set beyond the L3).
struct KernelBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Int8 dot-product kernels: ns per row, vector kernel vs one product at a time.")

    @Option(help: "Rows per pass (the 1M world scans ~30,000 fresh + ~10,000 promoted rows per ranking).")
    var rows = 30_000

    @Option(help: "Rows of the cold working set (64 B each; 2,000,000 = 128 MB).")
    var coldRows = 2_000_000

    @Option(help: "Timed repetitions (the median is reported).")
    var repeats = 41

    func run() throws {
        let d = 64
        var rng = SplitMix64(seed: 42)
        func uniform() -> Float { Float(rng.next() % 20_001) / 10_000 - 1 }
        let total = max(rows, coldRows)
        let data = (0..<(total * d)).map { _ in uniform() }
        let q8 = data.withUnsafeBufferPointer { p in Int8Rows(count: total, dimension: d) { p.baseAddress! + $0 * d } }
        let query = (0..<d).map { _ in uniform() }
        var out = [Float](repeating: 0, count: rows)
        var check: [Int8Rows.Kernel: [Float]] = [:]
        func pass(_ kernel: Int8Rows.Kernel, start: Int) -> Double {
            let t0 = ContinuousClock.now
            let q = query.withUnsafeBufferPointer { Int8Query($0.baseAddress!, dimension: d) }
            out.withUnsafeMutableBufferPointer { o in
                q8.dots(q, rows: start..<(start + rows), into: o.baseAddress!, kernel: kernel)
            }
            return (ContinuousClock.now - t0).seconds * 1e9 / Double(rows)
        }
        print("int8 dots, D = \(d), \(rows) rows per pass, median of \(repeats) (interleaved)")
        for (label, cold) in [("hot (same rows each pass)", false), ("cold (next rows of \(coldRows))", true)] {
            var times: [Int8Rows.Kernel: [Double]] = [.automatic: [], .scalar: []]
            var start = 0
            for r in 0..<repeats {
                for kernel in (r % 2 == 0 ? [Int8Rows.Kernel.automatic, .scalar] : [.scalar, .automatic]) {
                    if cold { start = (start + rows) % (coldRows - rows) }
                    times[kernel]!.append(pass(kernel, start: start))
                    if !cold && r == 0 { check[kernel] = out }
                }
            }
            let a = median(times[.automatic]!), g = median(times[.scalar]!)
            print(String(format: "  %@: vector kernel %.2f ns/row, one product at a time %.2f ns/row, ratio %.2fx", label, a, g, g / a))
        }
        guard check[.automatic] == check[.scalar] else { throw ValidationError("the two kernels disagree") }
        print("  both kernels gave identical results")
    }
}
