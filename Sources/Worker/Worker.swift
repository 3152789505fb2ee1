// The Worker module; see README.md for its role.
