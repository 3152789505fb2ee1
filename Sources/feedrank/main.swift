import FeedRankCLI

await FeedRankCommand.runMain()
