"""``python -m embedtune`` runs the CLI."""

from embedtune.cli.main import main

main()
