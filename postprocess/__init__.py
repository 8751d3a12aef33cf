"""Stage: top-k scoring into the ModelZoo result.json, and per-image comparison of runs."""
