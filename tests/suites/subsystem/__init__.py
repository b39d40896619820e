"""Sub-system suite: each pallet of the example runtime works after the upgrade (on reckless)."""
