"""Where tensors live: a CUDA GPU when there is one, otherwise the CPU.

Every public function in elslib takes `device=`; `None` means :func:`default`.
"""

from __future__ import annotations

import torch


def default() -> torch.device:
    """The device elslib uses when none is named: ``cuda`` if available, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve(device: str | torch.device | None) -> torch.device:
    """Turn ``None``, a string such as ``"cpu"`` or ``"cuda:0"``, or a device into a ``torch.device``.

    Raises a ValueError naming the argument when CUDA is asked for but not available.
    """
    if device is None:
        return default()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be None, 'cpu', 'cuda' or a torch.device, got {device!r}") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but no CUDA GPU is available here; use 'cpu'")
    return dev


def free_memory(device: str | torch.device | None = None) -> int | None:
    """Bytes free for new tensors on `device`: the GPU's free memory, or for the CPU the kernel's
    MemAvailable (Linux); None where it cannot be told."""
    dev = resolve(device)
    if dev.type == "cuda":
        return int(torch.cuda.mem_get_info(dev)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def describe() -> str:
    """One line naming the default device, for `python -m elslib info` and chapter 00."""
    dev = default()
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({torch.get_num_threads()} threads)"
