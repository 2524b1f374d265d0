"""Benchmarks that ship with the package (behind ``pyconv bench``); ``bench/`` holds the
pytest-benchmark suites and scripts that call them."""
