"""invoke entry point; the commands live in `pipeline.cli.main` (the `runtime-pipeline` script)."""

from pipeline.cli.main import ns as ns
