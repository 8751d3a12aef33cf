"""``--device 0,1``: ais_bench's layout (every input on every device), ``--divide_input``, and the lines it prints.

ais_bench runs one process per listed device, each on **all** the inputs (or, with
``--divide_input``, on a contiguous share of them), into
``OUT/NAME/device{id}_{i}/`` with its summary at ``OUT/NAME/device{id}_{i}_summary.json``
(``i`` = the device's position in the list). It then prints
``[INFO] multidevice run end qsize:{2n} result:0``, one
``[INFO] i:{i} device_{id} throughput:{t}                 start_time:{s} end_time:{e}`` per
process and ``[INFO] summary throughput:{sum}``. infer-kit's own mode, one folder with the
batches shared among the devices, is ``--split-devices``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from infer_kit.errors import InferKitError
from infer_kit.fsutil import TMP_SUFFIX


def device_folder(device: int, index: int) -> str:
    return f"device{device}_{index}"


def check_device_base(base_dir: Path, devices: Sequence[int]) -> None:
    """Refuse ``OUT/NAME`` when it holds anything this device list does not write (another run's outputs).

    Each device's folder is checked on its own (``--resume`` or refused); what else is in ``OUT/NAME``
    (a single-device run's outputs, the folders of another ``--device`` list) would be mixed with them.
    """
    if not base_dir.is_dir():
        return
    own = set()
    for index, device in enumerate(devices):
        name = device_folder(device, index)
        own |= {name, f"{name}_summary.json", f".{name}.run.json"}
    foreign = sorted((e.name for e in os.scandir(base_dir) if e.name not in own and not e.name.endswith(TMP_SUFFIX)),
                     key=lambda name: (name.startswith("."), name))  # name a visible one first
    if foreign:
        writes = ", ".join(f"{device_folder(d, i)}/" for i, d in enumerate(devices))
        raise InferKitError(
            f"result folder {base_dir} already holds {foreign[0]}"
            + (f" and {len(foreign) - 1} more" if len(foreign) > 1 else "")
            + f", which --device {','.join(map(str, devices))} does not write (it writes {writes})",
            hint="choose another --output-dirname, or resume with the interrupted run's --device list",
        )


def divide_files(lists: list[list[Path]], shown: list[list[str]],
                 jobs: int) -> list[tuple[list[list[Path]], list[list[str]]]]:
    """ais_bench's ``--divide_input``: contiguous shares, the first ``n % jobs`` one file longer."""
    total = len(lists[0]) if lists else 0
    if total < jobs:
        raise InferKitError(f"--divide_input: {total} input file(s) cannot be shared among {jobs} devices "
                            "(ais_bench: get list part failed)",
                            hint="use fewer devices than files, or leave out --divide_input (every device then runs "
                                 "every file)")
    base, extra = divmod(total, jobs)
    shares, start = [], 0
    for job in range(jobs):
        size = base + (1 if job < extra else 0)
        shares.append((start, start + size))
        start += size
    return [([files[a:b] for files in lists], [names[a:b] for names in shown]) for a, b in shares]


def end_lines(devices: Sequence[int], throughputs: Sequence[float], starts: Sequence[float],
              ends: Sequence[float]) -> list[str]:
    """What ais_bench prints once every device's process has finished."""
    lines = [f"[INFO] multidevice run end qsize:{2 * len(devices)} result:0"]
    for i, (device, throughput, start, end) in enumerate(zip(devices, throughputs, starts, ends, strict=True)):
        lines.append(f"[INFO] i:{i} device_{device} throughput:{throughput} " + " " * 16
                     + f"start_time:{start} end_time:{end}")
    lines.append(f"[INFO] summary throughput:{sum(throughputs)}")
    return lines
