"""FeedRank's Python tools: the synthetic demo world, the PyTorch two-tower trainer, the bundle
exporter, the contract's reference features (section 2 of the product contract) and the parity
cases the Swift RankingModel tests are checked against.

Modules:
  reference  -- bundle reader, user-state update, state JSON, features, tower forward, score
  export     -- `export_bundle(...)`: validate and write a feedrank.bundle.v1 directory
  world      -- the deterministic synthetic world (catalogue, users, ground truth, events)
  train      -- trains the two-tower model on a world, calibrates it, exports the bundle
  parity     -- writes parity cases (events, time, device -> x, u, state) for the Swift tests
  bench_tower-- PyTorch's own features + tower timing on a bundle
"""

from .errors import ToolsError

__all__ = ["ToolsError"]
