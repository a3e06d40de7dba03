"""Fuzz tests (hypothesis): see fuzz_profile.py for the quick and stress profiles."""
