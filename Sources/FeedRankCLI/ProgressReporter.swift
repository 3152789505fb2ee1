import Foundation
import VectorIndex

/// Progress of a long command (index build, replay, batch) on stderr: a redrawn bar with ETA
/// on a terminal, otherwise a key=value log line at most every 5 seconds (and at each phase
/// change and phase end). Thread-safe: jobs report from their worker threads.
final class ProgressReporter: @unchecked Sendable {
    let task: String
    let isTerminal: Bool
    private let lock = NSLock()
    private var phase = ""
    private var phaseStarted = ContinuousClock.now
    private var lastLog = -1.0
    private var lastDone = -1
    private var lastDraw = -1.0
    /// `done` when the phase started (a resumed job starts past 0): rate and ETA count from it.
    private var phaseStartDone = 0
    private var barShown = false

    init(task: String, isTerminal: Bool = isatty(STDERR_FILENO) != 0) {
        self.task = task
        self.isTerminal = isTerminal
    }

    func log(_ message: String) {
        lock.lock(); defer { lock.unlock() }
        if barShown { write("\n"); barShown = false }
        write("\(task): \(message)\n")
    }

    func update(_ p: IndexProgress) { update(phase: p.phase, done: p.done, total: p.total) }

    /// `total` 0: unknown (no percentage or ETA).
    func update(phase newPhase: String, done: Int, total: Int) {
        lock.lock(); defer { lock.unlock() }
        if newPhase == phase && done == lastDone { return }
        lastDone = done
        if newPhase != phase {
            phase = newPhase
            phaseStarted = .now
            phaseStartDone = done
            lastLog = -1
            lastDraw = -1
            if !isTerminal { write("\(task): phase=\"\(phase)\" started total=\(total)\n") }
        }
        let elapsed = phaseStarted.secondsSince
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 0
        let rate = elapsed > 0 ? Int(Double(done - phaseStartDone) / elapsed) : 0
        let eta = rate > 0 && total > done ? Double(total - done) / Double(rate) : 0
        let finished = total > 0 && done >= total
        if isTerminal {
            // Redraw at most 10 times a second.
            guard elapsed - lastDraw >= 0.1 || finished else { return }
            lastDraw = elapsed
            let width = 30, filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            let counts = total > 0 ? "\(Int(fraction * 100))% \(done)/\(total) ETA \(Int(eta.rounded())) s" : "\(done)"
            write("\r\(task): \(phase) [\(bar)] \(counts) (\(rate)/s)   ")
            barShown = true
        } else if elapsed - lastLog >= 5 || finished {
            lastLog = elapsed
            // key=value fields, for log pipelines.
            var line = "\(task): phase=\"\(phase)\" done=\(done) total=\(total)"
            if total > 0 { line += " pct=\(Int(fraction * 100)) eta_s=\(Int(eta.rounded()))" }
            write(line + " elapsed_s=\(Int(elapsed)) rate_per_s=\(rate)\n")
        }
    }

    func finish() {
        lock.lock(); defer { lock.unlock() }
        if barShown { write("\n"); barShown = false }
    }

    private func write(_ text: String) {
        var text = text
        text.withUTF8 { _ = Foundation.write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}

extension ContinuousClock.Instant {
    var secondsSince: Double {
        let d = (ContinuousClock.now - self).components
        return Double(d.seconds) + Double(d.attoseconds) / 1e18
    }
}
