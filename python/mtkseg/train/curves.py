"""Training-curve plots (loss and mIoU, train and val) from the run's CSV log."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Dict, List, Union

from ..errors import DataError, TrainingError

__all__ = ["read_log", "plot_curves"]


def read_log(path: Union[str, "os.PathLike[str]"]) -> List[Dict[str, float]]:
    """Rows of a training CSV log as dicts of floats (empty cells become NaN)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: training log not found")
    rows = []
    with p.open(newline="") as fh:
        for row in csv.DictReader(fh):
            rows.append({k: float(v) if v not in ("", None) else float("nan") for k, v in row.items()})
    return rows


def plot_curves(log_csv: Union[str, "os.PathLike[str]"], out_png: Union[str, "os.PathLike[str]"], title: str = "") -> Path:
    """Write a two-panel PNG: loss (train/val) and mIoU (train/val) per epoch."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is in the train extra
        raise TrainingError("plotting curves needs matplotlib: pip install 'mtkseg[train]'") from exc
    rows = read_log(log_csv)
    if not rows:
        raise DataError(f"{log_csv}: the log has no epochs yet")
    ep = [r["epoch"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=90)
    ax1.plot(ep, [r["train_loss"] for r in rows], label="train")
    ax1.plot(ep, [r["val_loss"] for r in rows], label="val")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("cross-entropy")
    ax1.set_title("loss")
    ax1.legend()
    ax1.grid(alpha=0.3)
    ax2.plot(ep, [100 * r["train_miou"] for r in rows], label="train (crops)")
    ax2.plot(ep, [100 * r["val_miou"] for r in rows], label="val")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("mIoU (%)")
    ax2.set_title("mIoU")
    ax2.legend()
    ax2.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
