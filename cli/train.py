from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from infer_kit.cli.options import int_list, pop_spec_overrides, spec_options

EPILOG = """\b
Examples:
  # 1 card (or CPU): the ModelZoo train_full_1p.sh
  infer-kit train --arch resnet50 --data /data/imagenet --epochs 90 -b 256 --lr 0.1 --amp -o out
  # small and real: Fashion-MNIST at 28 px on a 2-core CPU (~87 % top-1 in about 80 s)
  infer-kit dataset fashion-mnist data/fmnist --limit-train 20000
  infer-kit train --arch resnet10t --data data/fmnist --resize 28 --crop 28 --mean 0.286 --std 0.353 \\
      --augment none --epochs 2 -b 128 --lr 0.2 --warmup-epochs 0.3 --wd 5e-4 --workers 1 -o out
  # 8 cards on one machine (train_full_8p.sh): spawned here, or through torchrun
  infer-kit train --arch resnet50 --data /data/imagenet --nproc 8 --device-list 0,1,2,3,4,5,6,7 -o out
  torchrun --nproc_per_node 8 -m infer_kit train --arch resnet50 --data /data/imagenet -o out
  # several machines: torchrun --nnodes 2 --node_rank R --master_addr HOST --nproc_per_node 8 -m infer_kit train ...
  # performance (train_performance_1p.sh): FPS only, fixed steps, no checkpoint
  infer-kit train --arch resnet50 --data /data/imagenet --performance --steps 100
  # continue after an interruption; evaluate a checkpoint
  infer-kit train --arch resnet50 --data /data/imagenet -o out --resume out/checkpoint.pth
  infer-kit train --data /data/imagenet --resume out/model_best.pth --evaluate

\b
Writes OUTPUT/checkpoint.pth every epoch, OUTPUT/model_best.pth at the best Acc@1 and
OUTPUT/train_summary.json; 'infer-kit export --checkpoint OUTPUT/model_best.pth' needs no options."""


@click.command(name="train", epilog=EPILOG)
@click.option("--arch", "-a", help="Registry or timm model name [default: from the --resume checkpoint].")
@click.option("--data", required=True, type=click.Path(path_type=Path),
              help="Dataset folder with train/<class>/ and val/<class>/ (the ImageNet layout).")
@click.option("--output", "-o", type=click.Path(path_type=Path, file_okay=False), default=Path("train-output"),
              show_default=True, help="Folder for checkpoints and the run summary.")
@click.option("--epochs", type=click.IntRange(min=1), default=90, show_default=True, help="Total epochs.")
@click.option("--batch-size", "-b", type=click.IntRange(min=1), default=256, show_default=True,
              help="Batch size per process (global batch = this x processes).")
@click.option("--lr", "--learning-rate", "lr", type=click.FloatRange(min=0), default=0.1, show_default=True,
              help="Peak learning rate (scale it with the global batch).")
@click.option("--momentum", type=click.FloatRange(min=0), default=0.9, show_default=True, help="SGD momentum.")
@click.option("--weight-decay", "--wd", "weight_decay", type=click.FloatRange(min=0), default=1e-4,
              show_default=True, help="Weight decay (not applied to norm weights and biases).")
@click.option("--label-smoothing", type=click.FloatRange(min=0, max=1, max_open=True), default=0.0,
              show_default=True, help="Label smoothing of the cross-entropy loss.")
@click.option("--warmup-epochs", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Linear warmup length in epochs (fractions allowed).")
@click.option("--lr-scheduler", type=click.Choice(["cosine", "step"]), default="cosine", show_default=True,
              help="Decay after warmup.")
@click.option("--lr-step-epochs", callback=int_list(example="0,1,2,3"), default="30,60,80", show_default=True,
              help="Epochs at which 'step' multiplies the learning rate by --lr-gamma.")
@click.option("--lr-gamma", type=click.FloatRange(min=0), default=0.1, show_default=True, help="Step decay factor.")
@click.option("--augment", type=click.Choice(["standard", "light", "none"]), default="standard", show_default=True,
              help="standard: RandomResizedCrop + flip; light: padded random crop + flip (small images); none.")
@click.option("--workers", "-j", type=click.IntRange(min=0), default=4, show_default=True,
              help="Data-loading processes per training process.")
@click.option("--amp", is_flag=True, help="Mixed precision (torch.amp): bf16 on cpu, fp16 + GradScaler on cuda/npu.")
@click.option("--amp-dtype", type=click.Choice(["auto", "bf16", "fp16"]), default="auto", show_default=True,
              help="Autocast dtype for --amp.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of init, data order and augmentation.")
@click.option("--print-freq", "-p", type=click.IntRange(min=1), default=10, show_default=True,
              help="Log every N steps.")
@click.option("--resume", type=click.Path(path_type=Path, dir_okay=False),
              help="Continue from a checkpoint ('auto': OUTPUT/checkpoint.pth when it exists).")
@click.option("--evaluate", "-e", is_flag=True, help="Only evaluate the --resume checkpoint on the val split.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "npu"]), default="auto", show_default=True,
              help="auto: cuda, else npu (torch_npu), else cpu.")
@click.option("--device-list", callback=int_list(example="0,1,2,3"),
              help="Device ids by local rank, e.g. 0,1,2,3 (the seeds' knob).")
@click.option("--dist-backend", type=click.Choice(["auto", "gloo", "nccl", "hccl"]), default="auto",
              show_default=True, help="auto: nccl on cuda, hccl on npu, gloo on cpu.")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes to start on this machine (DDP); under torchrun leave it at 1.")
@click.option("--master-addr", default="127.0.0.1", show_default=True, help="Rendezvous address for --nproc.")
@click.option("--master-port", type=click.IntRange(min=0, max=65535), default=0,
              help="Rendezvous port for --nproc [default: a free port].")
@click.option("--performance", is_flag=True, help="Run --steps steps and report FPS only (no eval, no checkpoint).")
@click.option("--steps", "performance_steps", type=click.IntRange(min=1), default=100, show_default=True,
              help="Steps of a --performance run.")
@click.option("--threads", type=click.IntRange(min=1), help="torch CPU threads per process.")
@spec_options
def command(**kwargs: Any) -> None:
    """Train a registry or timm model on an ImageFolder tree (pytorch/examples recipe, AMP, DDP).

    Training augmentation and evaluation follow the model's preprocessing spec (override it
    with --resize/--crop/--mean/--std/...), so the checkpoint exports and preprocesses
    consistently. Ends with the seeds' result-table row: NAME, Acc@1, FPS, Epochs, AMP_Type.
    """
    from infer_kit.trainer import TABLE_HEADER, TrainConfig, train

    overrides = pop_spec_overrides(kwargs)
    kwargs["lr_step_epochs"] = kwargs["lr_step_epochs"] or ()
    kwargs["device_list"] = kwargs["device_list"] or ()
    result = train(TrainConfig(spec_overrides=overrides, **kwargs))
    if result.rank != 0:
        return
    click.echo(TABLE_HEADER)
    click.echo(result.table_row())
    minutes, seconds = divmod(int(round(result.seconds)), 60)
    if result.mode == "train":
        click.echo(f"checkpoint: {result.checkpoint}  best: {result.best_checkpoint}  "
                   f"({result.epochs_run} epoch(s) in {minutes}m{seconds:02d}s)")
