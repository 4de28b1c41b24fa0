"""One progress display for every long-running workflow: a tqdm bar, or a silent stand-in with the same
methods, so that workflows never branch on whether progress is shown."""
from __future__ import annotations

from typing import Optional

from tqdm.auto import tqdm


class _Silent:
    """The methods of a tqdm bar that the workflows use, doing nothing."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **values) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(total: Optional[int], desc: str, unit: str = "it", show: bool = True, initial: int = 0,
             leave: bool = True):
    """A bar counting ``total`` steps of ``unit`` (``initial`` already done), or a silent stand-in when
    ``show`` is false; ``leave=False`` clears it when done (for steps inside a larger workflow)."""
    if not show:
        return _Silent()
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=leave, dynamic_ncols=True)
