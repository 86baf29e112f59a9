"""Run the command line: ``python -m newsletter``."""

from newsletter.cli.main import main

main()
