"""``nas report`` and ``nas dashboard``: looking at a run (both read its ledger only)."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click

from nas.cli.base import handle_errors, main
from nas.config import SpecError


# ----- report / dashboard ---------------------------------------------------------------------------
@main.command(short_help="Write one self-contained HTML page of a run or comparison.")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), help="HTML file to write (default: RUN_DIR/report.html).")
@click.option("--top", type=int, default=5, show_default=True, help="How many of the best trials to show (>= 1).")
@handle_errors
def report(run_dir: str, out: str | None, top: int) -> None:
    """One self-contained HTML page with plots and tables for the run in RUN_DIR (works while it runs).

    RUN_DIR may also be a nas compare folder: the page shows the comparison (its table of every arm,
    the verdicts, the plot) and every arm x seed trial. A run's page gets a Comparisons section when a
    comparison folder next to it trains the run's best (an arm with run = RUN_DIR)."""
    from nas.config import SpecError
    from nas.report.page import write_report

    if top < 1:
        raise SpecError(f"--top: expected an integer >= 1, got {top}")
    click.echo(f"report: {write_report(run_dir, out, top)}")


@main.command(short_help="Serve optuna-dashboard on a run's study, read-only.")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (0.0.0.0: every interface).")
@click.option("--port", type=int, default=8080, show_default=True, help="TCP port (0: any free port).")
@handle_errors
def dashboard(run_dir: str, host: str, port: int) -> None:
    """Serve optuna-dashboard on the run's study, read-only, until Ctrl-C; prints the URL."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from nas.search.spec import load_spec
    from nas.ledger.store import RunDir, open_storage_readonly

    try:
        from optuna_dashboard import wsgi
    except ImportError:
        raise click.ClickException("optuna-dashboard is not installed: pip install optuna-dashboard") from None
    folder = RunDir(run_dir)
    folder.check_run()
    spec = load_spec(folder.spec_file)
    storage = open_storage_readonly(spec.run["storage"] or folder.default_storage_url())

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # one line per request is noise here
            pass

    try:
        server = make_server(host, port, wsgi(storage), handler_class=QuietHandler)
    except OSError as err:
        raise SpecError(f"--host/--port: cannot listen on {host}:{port}: {err.strerror or err}") from None
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"dashboard: http://{shown}:{server.server_port}/dashboard/  (study {spec.name}; Ctrl-C stops)",
               err=False)
    _serve_until_signal(server)
    click.echo("nas: dashboard stopped", err=True)


def _serve_until_signal(server: Any) -> None:
    """Serve on a daemon thread until SIGINT/SIGTERM. (wsgiref's request handler swallows a
    KeyboardInterrupt that lands mid-request, so Ctrl-C cannot be left to raise in the server loop.)"""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, name="dashboard", daemon=True).start()
    while not stop.wait(0.5):
        pass
    closing = threading.Thread(target=server.shutdown, daemon=True)  # waits for a request in progress
    closing.start()
    closing.join(timeout=5)
    server.server_close()
