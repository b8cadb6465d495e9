"""pytest-benchmark suites: every target is a ratio measured within one run."""
