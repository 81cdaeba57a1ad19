# Convenience wrappers; dev.py does the work and needs only Python 3.11+.
.PHONY: demo test lint setup bench-sync
demo:
	python3 dev.py demo
test:
	python3 dev.py test
lint:
	python3 dev.py lint
setup:
	python3 dev.py setup
bench-sync:
	.venv/bin/python tests/bench/bench_sync.py
