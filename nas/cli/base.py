"""The ``nas`` group and what every verb shares: error handling, logging, signals.

Bad input exits with status 2 and one line naming the field or path."""

from __future__ import annotations

import functools
import logging
import signal
import sys
from typing import Any, Callable

import click

from nas.config import SpecError

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def fail(message: str) -> None:
    click.echo(f"nas: error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn caller mistakes into one line and exit status 2; Ctrl-C into a resumable stop."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (SpecError, ValueError, KeyError, FileNotFoundError, NotADirectoryError) as err:
            message = err.args[0] if err.args and isinstance(err.args[0], str) else str(err)
            if isinstance(err, FileNotFoundError) and err.filename:
                message = f"{err.filename}: {err.strerror or 'not found'}"
            fail(message)
        except KeyboardInterrupt:
            click.echo("\nnas: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper


def _setup_logging(verbose: bool) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(console)
    logging.getLogger().setLevel(logging.INFO)


def sigterm_as_interrupt() -> None:
    """SIGTERM stops a search like Ctrl-C: workers stopped, run left resumable."""

    def raise_interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, raise_interrupt)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="nasforge")
@click.option("-v", "--verbose", is_flag=True, help="Log INFO messages to stderr.")
def main(verbose: bool) -> None:
    """nasforge: neural architecture search for PyTorch."""
    _setup_logging(verbose)
