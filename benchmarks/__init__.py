"""Benchmarks: our browser client and demo server against their peers (``python build.py bench``).

Never part of the tests. Everything binds 127.0.0.1 and is bounded in count and time.
"""
