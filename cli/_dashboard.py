"""`genmodel dashboard`: start the Streamlit dashboard (the installed ``genmodel/app/main.py``)."""

from __future__ import annotations

import importlib.resources
import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from ._options import err, examples

DEFAULT_PORT = 8501


def app_script() -> Path:
    """Path of the dashboard's entry script inside the installed package (``genmodel.app``)."""
    return Path(str(importlib.resources.files("genmodel.app").joinpath("main.py")))


def streamlit_command(*, port: int = DEFAULT_PORT, host: str | None = None) -> list[str]:
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
    ]
    if host is not None:
        command += ["--server.address", host]
    return command


def register(app: typer.Typer) -> None:
    """Add the ``dashboard`` command to ``app``."""

    @app.command(
        epilog=examples(
            "# serve the dashboard on http://localhost:8501 (Ctrl-C stops it)",
            "genmodel dashboard",
            "# another port, reachable from other machines",
            "genmodel dashboard --port 8600 --host 0.0.0.0",
        )
    )
    def dashboard(
        port: Annotated[int, typer.Option(help="Port to serve on.", min=1, max=65535)] = DEFAULT_PORT,
        host: Annotated[
            str | None,
            typer.Option(help="Address to listen on (default: Streamlit's, all interfaces)."),
        ] = None,
    ) -> None:
        """Start the Streamlit dashboard in the browser: what-if, roofline, plans, platforms, validation.

        Pages: estimate (with roofline), plan, compare, long context, MoE, validation; URLs hold the inputs.
        """
        if importlib.util.find_spec("streamlit") is None:
            err.print("[red]error:[/red] the dashboard needs streamlit: pip install streamlit", markup=True)
            raise typer.Exit(2)
        err.print(f"genmodel dashboard on http://{host or 'localhost'}:{port} (Ctrl-C stops it)")
        try:
            code = subprocess.run(streamlit_command(port=port, host=host), check=False).returncode
        except KeyboardInterrupt:
            code = 0
        raise typer.Exit(code)
