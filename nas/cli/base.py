"""The ``nas`` group and what every verb shares: error handling, logging, signals.

Bad input exits with status 2 and one line naming the field or path."""

from __future__ import annotations

import functools
import logging
import signal
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

import click

from nas.config import SpecError

EXIT_BUG = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

# Input errors raised on purpose: one line, exit 2. Everything else is a bug in nasforge.
INPUT_ERRORS = (SpecError, FileNotFoundError, NotADirectoryError, IsADirectoryError)


def fail(message: str) -> None:
    click.echo(f"nas: error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def writable_file(path: str, option: str) -> Path:
    """``path`` with its missing parent folders created; ``SpecError`` naming ``option`` when they cannot be."""
    file = Path(path)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise SpecError(f"{option}: {file}: {file.parent} is not a folder") from None
    except OSError as err:
        raise SpecError(f"{option}: {file}: cannot create the folder {file.parent} ({err.strerror or err})") from None
    return file


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Input errors -> one line and exit status 2; Ctrl-C -> a resumable stop (130); any other
    exception (an unexpected ``KeyError``, numpy's ``LinAlgError``, an Optuna error) -> its
    traceback, a line saying it is a bug, exit status 1. A search stopped by a bug is resumable:
    the loop fails its in-flight trials as interrupted (no budget used) before the error leaves it."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except INPUT_ERRORS as err:
            fail(_one_line(err))
        except KeyboardInterrupt:
            click.echo("\nnas: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except click.exceptions.ClickException:
            raise
        except Exception as err:  # noqa: BLE001 - the last resort: report a bug, never hide it
            traceback.print_exc(file=sys.stderr)
            hint = RESUME_HINT if _verb() in SEARCH_VERBS else ""
            click.echo(f"nas: internal error (a bug in nasforge; please report it with the traceback above): "
                       f"{type(err).__name__}: {_one_line(err).rstrip('.')}.{hint}", err=True)
            sys.exit(EXIT_BUG)

    return wrapper


SEARCH_VERBS = frozenset({"search", "resume"})
RESUME_HINT = " A search stopped by it can be continued with 'nas resume <run folder>'."


def _verb() -> str | None:
    """The verb being run (``nas search`` -> "search"), if click knows it."""
    context = click.get_current_context(silent=True)
    return context.info_name if context is not None else None


def _one_line(err: BaseException) -> str:
    """The message of an input error (a missing file names its path)."""
    if isinstance(err, FileNotFoundError) and err.filename:
        return f"{err.filename}: {err.strerror or 'not found'}"
    message = err.args[0] if err.args and isinstance(err.args[0], str) else str(err)
    return message.strip().splitlines()[0] if message.strip() else type(err).__name__


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
