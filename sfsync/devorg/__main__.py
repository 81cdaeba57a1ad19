"""``python -m sfsync.devorg serve|generate ...``."""

from sfsync.devorg.cli import main

main()
