import ArgumentParser
import Foundation
import KafkaClient
import Logging
import Worker

/// `feedrank batch`: the daily precompute of every active user's feed (issue 7).
struct BatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch",
        abstract: "Precompute every active user's feed into L1 (trigger backfill, 24 h TTL); resumable.",
        discussion: """
        States come from the user-state changelog, the state of record (all partitions, read with an own \
        consumer up to the end offsets captured at start; per user the latest state, chosen as the live \
        worker restores it). Without --brokers they come from L4 (features:user:*), which only holds the \
        users of the last 30 minutes. A user is active when their state's t_last lies within --active-days \
        before T (--at, default now).

        Active users are ranked in ascending user id order, in batches of --batch-size (embeddings by one \
        sgemm per tower layer), on --threads threads with one ranker each (index search, exact re-scoring, \
        the rules of contract section 3), without a device (the state does not hold one). Each list goes to \
        L1 (rankings:user:{id}, 24 h TTL) through pipelined writes that keep an entry the live worker made \
        during the run (its state is newer), and with --publish to the response topic.

        Resumable: after every contiguous run of finished batches the checkpoint (--checkpoint FILE, or the \
        Redis key feedrank:batch:checkpoint) records the last user done; a rerun of an unfinished run of \
        the same model and window started within 24 h continues after it, at the same T (--restart starts \
        over). SIGINT/SIGTERM finish the batches in flight and save the checkpoint.

        --verify reads the L1 entries back and checks each against contract section 3 at the run's T (all \
        active users, or --sample N of them); exit 1 if any is missing or wrong.

        The existing states' model_version is taken from the model_version header of the latest \
        user-state records and from the model_version of a sample of their L1 entries; if it differs from \
        the bundle's, batch refuses (exit 2) unless --allow-model-mismatch.
        """)

    @OptionGroup var job: JobOptions
    @Option(name: .customLong("active-days"), help: "A user is active when their state's t_last is within this many days before T (default 30).") var activeDays: Double?
    @Flag(help: "Also send every ranking to the response topic (needs --brokers).") var publish = false
    @Option(help: "T of the rankings, ms or ISO-8601 (default: now, or the resumed run's T).") var at: String?
    @Option(help: "Checkpoint file (default: the Redis key feedrank:batch:checkpoint, with --key-prefix).") var checkpoint: String?
    @Flag(help: "Ignore an unfinished run's checkpoint and start over.") var restart = false
    @Option(help: "Rank at most this many active users (the lowest ids; for benchmarks).") var limit: Int?
    @Flag(help: "Check the L1 entries of the active users against contract section 3 instead of ranking.") var verify = false
    @Option(help: "With --verify: check this many users, spread evenly over the active ones (default: all).") var sample: Int?

    func run() async throws {
        let r = try job.resolve(requireBrokers: false)
        let logger = Logger(label: "feedrank.batch")
        var config = BatchConfiguration(kafka: r.kafka)
        config.topics = r.topics
        config.redisURL = r.redisURL
        config.keyPrefix = r.keyPrefix
        config.threads = r.threads
        config.batchSize = r.batchSize
        config.numItems = r.numItems
        config.activeDays = try r.sources.value("active-days", flag: activeDays.map { String($0) }).map { text in
            guard let d = Double(text), d > 0 else { throw CLIError.usage("--active-days \(text): must be a positive number of days") }
            return d
        } ?? 30
        config.publish = publish
        if publish && r.kafka == nil { throw CLIError.usage("--publish needs --brokers (or FEEDRANK_BROKERS)") }
        config.at = try r.sources.value("at", flag: at).map { try parseTime($0, flag: "--at") }
        config.checkpointPath = r.sources.value("checkpoint", flag: checkpoint)
        config.restart = restart
        config.allowModelMismatch = job.allowModelMismatch
        if let limit { guard limit >= 1 else { throw CLIError.usage("--limit must be >= 1") }; config.limit = limit }
        if let sample { guard sample >= 1 else { throw CLIError.usage("--sample must be >= 1") } }
        if r.kafka == nil { logger.notice("no --brokers: states come from L4, which holds only recently active users") }
        let catalog = try job.catalog(r, logger: logger)
        let batch = BatchPrecompute(configuration: config, catalog: catalog, logger: logger)
        if verify {
            let result = try await Self.execute("batch --verify") { try await batch.verify(sample: sample, progress: $0) }
            for line in result.lines { print(line) }
            if !result.ok { throw CLIError.runtime("batch --verify: \(result.missing) missing and \(result.invalid) invalid L1 entries of \(result.checked)") }
            return
        }
        let summary = try await Self.execute("batch") { try await batch.run(progress: $0) }
        for line in summary.lines { print(line) }
        if !summary.completed { throw CLIError.runtime("batch interrupted after \(summary.alreadyDone + summary.ranked) of \(summary.activeUsers) users; rerun to finish") }
    }

    /// Runs a job with progress on stderr and SIGINT/SIGTERM handling; maps errors to the
    /// contract's exit codes.
    static func execute<T: Sendable>(_ label: String,
                                     _ body: @escaping @Sendable (@escaping @Sendable (JobProgress) -> Void) async throws -> T) async throws -> T {
        let reporter = ProgressReporter(task: label)
        let task = Task { try await body { p in reporter.update(phase: p.phase, done: p.done, total: p.total) } }
        let signals = SignalCancellation(cancelling: task, label: label)
        defer { signals.cancel() }
        do {
            let value = try await task.value
            reporter.finish()
            return value
        } catch let e as ModelMismatchError {
            reporter.finish()
            throw CLIError.usage(e.message)
        } catch let e as WorkerError {
            reporter.finish()
            throw CLIError.runtime("\(label): \(e.message)")
        } catch {
            reporter.finish()
            throw CLIError.runtime("\(label): \(error)")
        }
    }
}
