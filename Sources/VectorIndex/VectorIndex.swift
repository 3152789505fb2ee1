// The VectorIndex module; see README.md for its role.
