"""Progress bars for long work: tqdm's, as widgets where ipywidgets is installed and as
text everywhere else.

In a Jupyter kernel without ipywidgets (the project does not pin it: stored widget bars
would not render on the repository host), ``tqdm.auto`` falls back to text bars and warns
"IProgress not found" on import. Text bars are what the library wants there, so the
warning is silenced here, once, instead of in every notebook that imports ``mrife``.
"""

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="IProgress not found")
    from tqdm.auto import tqdm

__all__ = ["tqdm"]
