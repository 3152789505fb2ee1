// The RankingModel module; see README.md for its role.
