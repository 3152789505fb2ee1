import FeedRankCLI

await FeedRankCommand.main()
