// The Ranking module; see README.md for its role.
