"""perfhouse orchestrator: journey spec model, script generation, runners and the CLI."""

__version__ = "0.1.0"
