from sfsync.cli import main

main()
