"""Test double of ais_bench (see infer/interface.py)."""
