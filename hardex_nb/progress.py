"""Training progress in a notebook: a tqdm.auto bar and a live loss plot."""

from __future__ import annotations


def in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class LivePlot:
    """A matplotlib figure redrawn in place after each epoch (only inside a notebook)."""

    def __init__(self, title: str, enabled: bool):
        self.enabled = enabled and in_notebook()
        self.losses: list[float] = []
        self.metrics: list[float] = []
        self._handle = None
        self.title = title

    def update(self, loss: float, metric: float | None = None) -> None:
        self.losses.append(loss)
        if metric is not None:
            self.metrics.append(metric)
        if not self.enabled:
            return
        import matplotlib.pyplot as plt
        from IPython.display import display

        fig, ax = plt.subplots(figsize=(5, 2.6))
        ax.plot(range(1, len(self.losses) + 1), self.losses, marker="o", label="train loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_title(self.title)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)
        plt.close(fig)
