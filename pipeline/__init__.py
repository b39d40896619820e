"""Runtime-upgrade pipeline: reproducible builds, staging deploys, council upgrades."""

__version__ = "0.1.0"
