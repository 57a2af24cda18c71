"""The device ids of the hardware database, in the batches they were added: the tests that check a
batch (tests/test_hardware.py, tests/test_hardware_breadth.py) and the one that checks the whole
database is exactly these (tests/test_io.py) share one list, so adding a device means adding it
here once, and forgetting fails tests/test_io.py."""

from __future__ import annotations

#: the hardware ids other code may rely on (docs/cli.md, "Interfaces")
DESIGN_DEVICES = (
    "a100-sxm-40gb",
    "a100-sxm-80gb",
    "h100-sxm",
    "h800-sxm",
    "h200-sxm",
    "b200",
    "mi300x",
    "ascend-910b",
    "ascend-910c",
    "jetson-agx-orin-64gb",
    "jetson-orin-nano-8gb",
    "jetson-orin-nano-super-8gb",
    "l40s",
    "rtx-4090",
)
#: the platforms users asked for next (issue 15): Blackwell Ultra, Grace Blackwell racks, CDNA3/CDNA4
NEXT_DEVICES = ("gb200", "gb300", "b300", "mi325x", "mi355x")
#: Hopper variants of the H100's silicon (the nvidia-hopper interval family)
HOPPER_VARIANTS = ("h100-pcie", "h100-nvl", "gh200", "h20")
#: hardware breadth: Hopper variants, Ada/Blackwell PCIe and edge parts, Gaudi, TPUs
BREADTH_DEVICES = (
    *HOPPER_VARIANTS,
    "l4",
    "rtx-5090",
    "rtx-pro-6000",
    "jetson-agx-thor",
    "dgx-spark",
    "gaudi3",
    "tpu-v5e",
    "tpu-v6e",
)
ALL_DEVICES = (*DESIGN_DEVICES, *NEXT_DEVICES, *BREADTH_DEVICES)
