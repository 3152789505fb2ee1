// The HealthServer module; see README.md for its role.
