"""`python -m orchestrator` runs the perfhouse CLI."""

from orchestrator.cli import main

main()
