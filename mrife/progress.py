"""Progress bars for long work, and what a run says beside them.

The bars are tqdm's, as widgets where ipywidgets is installed and as text everywhere
else. In a Jupyter kernel without ipywidgets (the project does not pin it: stored widget
bars would not render on the repository host), ``tqdm.auto`` falls back to text bars and
warns "IProgress not found" on import. Text bars are what the library wants there, so
the warning is silenced here, once, instead of in every notebook that imports ``mrife``.

Without bars (``progress=False``, ``mrife ... --no-progress``) the lines a run would
write beside them (its expected time) go to mrife's logger; :func:`log_to_stdout`
prints them.
"""

import logging
import sys
import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="IProgress not found")
    from tqdm.auto import tqdm

__all__ = ["announce", "log_to_stdout", "tqdm"]


def announce(line: str, progress: bool, log: logging.Logger) -> None:
    """Write ``line`` beside the progress bars, or to ``log`` when there are none."""
    if progress:
        tqdm.write(line)
    else:
        log.info(line)


class _Stdout(logging.StreamHandler):
    """A log handler that writes to whatever ``sys.stdout`` is when it writes (a notebook
    or a test may have replaced it since)."""

    def __init__(self):
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value):  # StreamHandler sets it; the property always reads sys.stdout
        pass


def log_to_stdout() -> None:
    """Print mrife's log lines (info and above) on stdout: mrife's loggers only, so the
    libraries' own logs stay as they were. Called again, it adds nothing."""
    log = logging.getLogger("mrife")
    log.setLevel(logging.INFO)
    if not any(isinstance(h, _Stdout) for h in log.handlers):
        log.addHandler(_Stdout())
