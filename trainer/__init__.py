"""The thin bundled trainer (AMP, DDP through torchrun, cpu/cuda/npu) whose checkpoints feed `export`."""
