"""``python -m sfsync.devorg serve|generate ...``."""

from sfsync.cli.devorg import main

main()
