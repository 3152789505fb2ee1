import ArgumentParser
import Foundation
import KafkaClient
import Logging
import Worker

/// `feedrank replay`: rebuild user states from the activity log (issue 7).
struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Rebuild user states from the user-activity log, write them to the user-state changelog and L4, optionally rank every touched user.",
        discussion: """
        The log is read with an own consumer (partition assignment: no consumer group, no commits, so \
        the live worker's group is not disturbed) up to the end offsets captured at start (or, per \
        partition, up to the first record with a timestamp after --until). Every record goes through the \
        live worker's code: the same StateUpdater with the record's (partition, offset) as source \
        position — so the live worker later recognises replayed events as duplicates — and the same \
        DLQ handling for malformed records (headers error, source_topic, source_partition, source_offset).

        Starting states:
          --from earliest   empty states, the whole log applied from its first record: a rebuild (after \
        losing the changelog, or for a new model: S depends on the item embeddings).
          --from TIME       (ms since the epoch or ISO-8601) the latest states in the user-state topic, \
        chosen as the live worker restores them; each partition is read from its first record with a \
        timestamp >= TIME (older records are skipped even if the broker's offsets-for-times is coarse, \
        as Tansu's is). Events those states already hold are recognised by their redelivery marks and not \
        applied twice; skipped records that no state holds are reported as gaps (replay from earlier).

        Outputs: per touched user the final state to user-state partition p (= the input partition, key \
        user id, header model_version) unless the topic already holds a newer state (further source \
        offset) or exactly this one, and to L4 (features:user:{id}, 30 min TTL) unless L4 holds a newer \
        one. A newer state the live worker writes while replay writes is re-produced after ours (the last \
        record per key is what compaction keeps). --rank ranks every touched user at --at (default now) \
        with trigger "backfill" into L1 (24 h TTL; an entry the live worker made during the run is kept) \
        and the response topic. --dry-run reads and rebuilds but writes nothing.

        The existing states' model_version is taken from the model_version header of the latest \
        user-state records and from the model_version of a sample of their L1 entries; if it differs from \
        the bundle's, replay refuses (exit 2) unless --allow-model-mismatch.
        """)

    @OptionGroup var job: JobOptions
    @Option(help: "earliest | milliseconds since the epoch | ISO-8601 time (see below).") var from: String?
    @Option(help: "Stop each partition at its first record with a timestamp after this (ms or ISO-8601).") var until: String?
    @Option(help: "Input partitions to replay, comma-separated (default: all).") var partitions: String?
    @Flag(help: "Rank every touched user afterwards (trigger backfill, L1 with the 24 h TTL, response topic).") var rank = false
    @Option(help: "T of the --rank rankings, ms or ISO-8601 (default: now).") var at: String?
    @Flag(name: .customLong("dry-run"), help: "Read and rebuild, write nothing.") var dryRun = false

    func run() async throws {
        let r = try job.resolve(requireBrokers: true)
        let logger = Logger(label: "feedrank.replay")
        guard let fromText = r.sources.value("from", flag: from) else { throw CLIError.usage("--from is required: earliest, milliseconds or ISO-8601") }
        var config = ReplayConfiguration(kafka: r.kafka!)
        config.from = fromText == "earliest" ? .earliest : .time(try parseTime(fromText, flag: "--from"))
        config.until = try r.sources.value("until", flag: until).map { try parseTime($0, flag: "--until") }
        config.rankAt = try r.sources.value("at", flag: at).map { try parseTime($0, flag: "--at") }
        if let text = r.sources.value("partitions", flag: partitions) {
            config.partitions = try text.split(separator: ",").map { s -> Int32 in
                guard let p = Int32(s.trimmingCharacters(in: .whitespaces)), p >= 0 else {
                    throw CLIError.usage("--partitions: '\(s)' is not a partition number")
                }
                return p
            }
        }
        config.topics = r.topics
        config.redisURL = r.redisURL
        config.keyPrefix = r.keyPrefix
        config.rank = rank
        config.dryRun = dryRun
        config.threads = r.threads
        config.batchSize = r.batchSize
        config.numItems = r.numItems
        config.allowModelMismatch = job.allowModelMismatch
        let catalog = try job.catalog(r, logger: logger)
        let replay = ActivityReplay(configuration: config, catalog: catalog, logger: logger)
        let summary = try await Self.execute(replay)
        for line in summary.lines { print(line) }
    }

    /// Runs the replay with progress on stderr and SIGINT/SIGTERM handling; maps errors to the
    /// contract's exit codes.
    static func execute(_ replay: ActivityReplay) async throws -> ReplaySummary {
        let reporter = ProgressReporter(task: "replay")
        let task = Task { try await replay.run { p in reporter.update(phase: p.phase, done: p.done, total: p.total) } }
        let signals = SignalCancellation(cancelling: task, label: "replay")
        defer { signals.cancel() }
        do {
            let summary = try await task.value
            reporter.finish()
            return summary
        } catch is CancellationError {
            reporter.finish()
            throw CLIError.runtime("replay interrupted: nothing after the last acknowledged write was written; rerun it (the result is the same)")
        } catch let e as ModelMismatchError {
            reporter.finish()
            throw CLIError.usage(e.message)
        } catch {
            reporter.finish()
            throw CLIError.runtime("replay failed: \(error)")
        }
    }
}
