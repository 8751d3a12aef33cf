"""Stage: image folders -> input tensor files (+ manifest, label files)."""
