"""`genmodel dashboard`: start the Streamlit dashboard (the installed ``genmodel/app/main.py``).

Streamlit runs as a child process that listens on 127.0.0.1 unless ``--host`` says otherwise;
SIGINT and SIGTERM sent to ``genmodel dashboard`` are passed on to it, so Ctrl-C or ``kill``
stops the server rather than leaving it serving.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import importlib.util
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from ._options import err, examples

DEFAULT_PORT = 8501
#: loopback only: the dashboard runs code on the server's machine for whoever reaches it
DEFAULT_HOST = "127.0.0.1"
#: the signals passed on to the Streamlit child
FORWARDED = (signal.SIGINT, signal.SIGTERM)


def app_script() -> Path:
    """Path of the dashboard's entry script inside the installed package (``genmodel.app``)."""
    return Path(str(importlib.resources.files("genmodel.app").joinpath("main.py")))


def streamlit_command(*, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST) -> list[str]:
    """The ``streamlit run`` command line that serves the dashboard on ``port`` (and ``host``)."""
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_script()),
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",  # no "Deploy" button: this is a local tool, not a Streamlit Cloud app
        "viewer",
        "--server.address",
        host,
    ]
    return command


def serve(command: list[str]) -> int:
    """Run ``command`` as a child process until it exits, passing SIGINT and SIGTERM on to it.

    Returns:
        0 when the child stopped after a forwarded signal (Ctrl-C, ``kill``), else its exit code
        (128 + the signal's number when a signal not sent through here ended it).
    """
    forwarded: list[int] = []
    children: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        forwarded.append(signum)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

    # the handlers come first: a signal that arrives while the child starts is not lost
    previous = {s: signal.signal(s, forward) for s in FORWARDED}
    try:
        children.append(subprocess.Popen(command))
        if forwarded:
            children[0].send_signal(forwarded[-1])
        code = children[0].wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if forwarded:
        return 0
    return 128 - code if code < 0 else code


def register(app: typer.Typer) -> None:
    """Add the ``dashboard`` command to ``app``."""

    @app.command(
        epilog=examples(
            "# serve the dashboard on http://127.0.0.1:8501 (Ctrl-C stops it)",
            "genmodel dashboard",
            "# another port, reachable from other machines (every interface)",
            "genmodel dashboard --port 8600 --host 0.0.0.0",
        )
    )
    def dashboard(
        port: Annotated[int, typer.Option(help="Port to serve on.", min=1, max=65535)] = DEFAULT_PORT,
        host: Annotated[
            str,
            typer.Option(
                help="Address to listen on: 127.0.0.1 (this machine only) by default; 0.0.0.0 for every "
                "interface.",
            ),
        ] = DEFAULT_HOST,
    ) -> None:
        """Start the Streamlit dashboard in the browser: what-if, roofline, plans, serving, platforms.

        Pages: estimate (with roofline), plan, serving (simulated engine), compare, long context, MoE,
        validation; URLs hold the inputs. Ctrl-C or SIGTERM stops the server.
        """
        if importlib.util.find_spec("streamlit") is None:
            err.print("[red]error:[/red] the dashboard needs streamlit: pip install streamlit", markup=True)
            raise typer.Exit(2)
        if not host.strip() or len(host) > 255:
            err.print(f"[red]error:[/red] --host={host!r} must be an address or a host name", markup=True)
            raise typer.Exit(2)
        err.print(f"genmodel dashboard on http://{host}:{port} (Ctrl-C stops it)")
        raise typer.Exit(serve(streamlit_command(port=port, host=host)))
