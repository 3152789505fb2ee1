import ArgumentParser

/// `feedrank`: the one executable (contract section 6).
public struct FeedRankCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "feedrank",
        abstract: "FeedRank: a stream worker that serves personalised feeds (two-tower model, IVF-PQ retrieval, ranking rules).",
        subcommands: [ServeCommand.self, RankCommand.self, LoadgenCommand.self, IndexCommand.self, TopicsCommand.self,
                      ReplayCommand.self, BatchCommand.self]
    )
    public init() {}
}
