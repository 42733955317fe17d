"""Build-time fix for the nbclient stall after cells that display into ipywidgets (a Sphinx extension).

Cause. A cell that shows a figure inside an ``ipywidgets.Output`` (every ``interactive``) makes the
kernel send the figure as ordinary ``display_data``, routed to the Output by a ``msg_id`` in its
state. nbclient (0.11) mimics a frontend here: its ``OutputWidget`` stores the figure and, like
JupyterLab, syncs the Output's new state back to the kernel with a ``comm_msg``, sent on the shell
socket from the coroutine that reads IOPub, while another coroutine awaits ``poll()`` on that same
shell socket for the cell's ``execute_reply``. When that send lands next to the reply (within about a
millisecond), the reply's wake-up is lost: the reply sits in the socket until the poll times out,
that is for the whole per-cell ``execute.timeout``, and nbclient then reads it and goes on as if
nothing happened (jupyter/nbclient#312). Measured with a notebook of 20 ``interactive`` cells that
each draw a figure (3 s timeout): 5 of 6 runs stalled at least once with the sync, 0 of 6 without it;
in the stalled cells the reply was sent 0.15 s after the request and read at 3.0 s.

Fix. The sync only tells the kernel what the kernel itself just printed: a headless build needs it
for nothing (the executed notebook's widget state, which the HTML embeds, is recorded by nbclient
before the sync). :func:`apply` makes it a no-op, so nothing is written to the shell socket while
a reply is awaited. It is loaded by ``_config.yml`` (``sphinx.local_extensions``) for
``jupyter-book build`` and by the root ``conftest.py`` for ``pytest --nbmake``.
"""

from __future__ import annotations


def _no_sync(self) -> None:
    """Keep the Output's outputs on the executor's side; send nothing to the kernel mid-cell."""


def apply() -> None:
    """Make nbclient's Output-widget mimic stop syncing its state back over the shell channel."""
    try:
        from nbclient.output_widget import OutputWidget
    except ImportError:  # nbclient is absent: nothing executes notebooks in this process
        return
    OutputWidget.sync_state = _no_sync


def setup(app):
    """Sphinx entry point."""
    apply()
    return {"parallel_read_safe": True, "parallel_write_safe": True}
