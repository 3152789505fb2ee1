import ArgumentParser

/// `feedrank-bench`: release-build benchmarks whose figures go into BENCHMARKS.md.
/// Each area has its own subcommand in its own file (`<Area>Bench.swift`).
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "feedrank-bench",
        abstract: "FeedRank benchmarks (build with -c release).",
        subcommands: [
            ModelBench.self,
            KafkaBench.self,
            RedisBench.self,
            RankingBench.self,
            BatchBench.self,
            KernelBench.self,
        ]
    )
}
