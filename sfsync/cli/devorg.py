"""``sfsync devorg``: serve a dev org (and, from :mod:`sfsync.devorg.generate`, make one).

A group of the main CLI (:mod:`sfsync.cli`); ``python -m sfsync.devorg`` runs this
group on its own, with the same error paragraphs and exit codes.
"""

from __future__ import annotations

import ipaddress
import signal
import socket
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from sfsync.cli._app import global_options, with_global_options
from sfsync.errors import SfsyncError, UsageError, exit_code_for

if TYPE_CHECKING:
    from sfsync.devorg import DevOrgServer

__all__ = ["devorg", "main", "serve_command"]


class _DevorgGroup(click.Group):
    """Standalone (``python -m sfsync.devorg``): turn sfsync errors into a paragraph + exit code.

    Under the main ``sfsync`` group errors propagate, so that group reports them
    (and logs the ``error`` event in JSON mode) the same way as for every command.
    """

    def invoke(self, ctx: click.Context) -> Any:
        if ctx.parent is not None:
            return super().invoke(ctx)
        try:
            return super().invoke(ctx)
        except SfsyncError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(exit_code_for(exc))


@click.group("devorg", cls=_DevorgGroup, context_settings={"help_option_names": ["-h", "--help"]})
@global_options
def devorg() -> None:
    """A Salesforce-compatible org on loopback, for demos, tests and benchmarks.

    Needs the devorg extra: pip install 'sfsync[devorg]'.
    """
    from sfsync.devorg import require_extra

    require_extra()  # before any subcommand (or its --help) runs


def _log_format(ctx: click.Context) -> str:
    root = ctx.find_root().obj
    fmt = getattr(root, "log_format", None)
    return fmt if isinstance(fmt, str) else "auto"


@devorg.command("serve")
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The org's data file (see sfsync/devorg/README.md).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind: loopback (127.0.0.0/8, ::1, localhost) unless --allow-remote.",
)
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow a --host other machines can reach (e.g. 0.0.0.0): they could log in.",
)
@click.option(
    "--port",
    default=0,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port; 0 picks a free one (printed).",
)
@click.option(
    "--write-config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write an sfsync config (mode 0600) that connects to this org.",
)
@click.option(
    "--write-credentials",
    "credentials_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write JSON connection details for any client (URLs, client id/secret, username, "
    "password, security token, refresh token, CA bundle), mode 0600.",
)
@click.option(
    "--save",
    "save_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="On SIGTERM/SIGINT, write the org's state here (atomically).",
)
@click.option(
    "--fault",
    "fault_spec",
    default=None,
    help="Faults, e.g. latency=50ms,error_rate=0.1,session_ttl=300,seed=7.",
)
@click.option(
    "--api-limit",
    type=click.IntRange(min=1),
    default=None,
    help="Daily API request allowance (default: the data file's, else 5,000,000).",
)
@click.option(
    "--bulk-delay",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds a Bulk query job (2.0) or batch (1.0) stays InProgress.",
)
@click.option(
    "--bulk-result-rows",
    type=click.IntRange(min=1),
    default=None,
    help="Rows per Bulk API 1.0 result file (default 500,000; Salesforce splits at 1 GB).",
)
@click.option(
    "--ca-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to write the local CA certificate (default: a temp dir).",
)
@global_options
@click.pass_context
def serve_command(
    ctx: click.Context,
    data_path: Path,
    host: str,
    allow_remote: bool,
    port: int,
    config_path: Path | None,
    credentials_path: Path | None,
    save_path: Path | None,
    fault_spec: str | None,
    api_limit: int | None,
    bulk_delay: float,
    bulk_result_rows: int | None,
    ca_dir: Path | None,
) -> None:
    """Serve a dev org until SIGTERM/SIGINT; prints its URL on stdout."""
    from sfsync.devorg import DevOrg, DevOrgServer, FaultSpec, write_config, write_credentials
    from sfsync.devorg._bulk1 import DEFAULT_RESULT_ROWS
    from sfsync.logging import configure_logging

    if not allow_remote and not _is_loopback(host):
        raise UsageError(
            f"--host {host!r} is not a loopback address (127.0.0.0/8, ::1, localhost): "
            "other machines could reach this org and its credentials; "
            "pass --allow-remote to listen there anyway"
        )
    configure_logging(_log_format(ctx))  # type: ignore[arg-type]
    faults = FaultSpec.parse(fault_spec) if fault_spec else None
    org = DevOrg.load(data_path)  # a bad file exits 2 here, before any port or config
    server = DevOrgServer(
        org,
        host=host,
        port=port,
        faults=faults,
        ca_dir=ca_dir,
        api_limit=api_limit,
        bulk_delay=bulk_delay,
        log_requests=True,
        bulk_result_rows=bulk_result_rows or DEFAULT_RESULT_ROWS,
    )
    server.save_path = save_path
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    try:
        server.start()
    except OSError as exc:
        org.close()
        raise UsageError(f"--port {port}: cannot listen on {host}:{port}: {exc.strerror}") from None
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with server:
            if config_path is not None:
                write_config(config_path, server)
            if credentials_path is not None:
                write_credentials(credentials_path, server)
            for line in _exposure_notes(server):
                click.echo(f"devorg: {line}", err=True)
            click.echo(server.url)
            sys.stdout.flush()
            click.echo(f"devorg: CA certificate {server.ca_path}", err=True)
            click.echo(f"devorg: admin token {server.admin_token}", err=True)
            while not stop.wait(0.5):
                pass
        if save_path is not None:
            org.save(save_path)
            click.echo(f"devorg: saved the org to {save_path}", err=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        org.close()


def _is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1); False for the rest.

    Names other than ``localhost`` are not resolved: whatever they resolve to
    today, they are not promised to stay on this machine.
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _exposure_notes(server: DevOrgServer) -> list[str]:
    """What to say when the org is reachable beyond loopback, or by a name not certified."""
    from sfsync.devorg._server import CERTIFICATE_HOSTS

    address, port = server.listen_address
    scheme = urlsplit(server.url).scheme
    notes: list[str] = []
    if address in ("0.0.0.0", "::"):  # noqa: S104 - naming the wildcard, not binding it
        shown = f"[{address}]" if ":" in address else address
        notes.append(
            f"listening on all interfaces ({shown}:{port}), not only loopback: other machines "
            f"can reach it, e.g. at {scheme}://{socket.gethostname()}:{port}; this machine at "
            f"{server.url}"
        )
        uncertified = True
    else:
        if not _is_loopback(server.host):
            shown = f"[{address}]" if ":" in address else address
            notes.append(f"listening on {shown}:{port}, not loopback: other machines can reach it")
        uncertified = urlsplit(server.url).hostname not in CERTIFICATE_HOSTS
    if uncertified:
        names = ", ".join(CERTIFICATE_HOSTS[:-1]) + f" and {CERTIFICATE_HOSTS[-1]}"
        notes.append(
            f"the TLS certificate covers only {names}: a client that verifies it "
            "(with the CA certificate below) must connect by one of those names"
        )
    return notes


def _add_generate() -> None:
    """``generate`` lives in :mod:`sfsync.devorg.generate` (its own module and owner)."""
    try:
        from sfsync.devorg.generate import generate_command
    except ImportError:  # pragma: no cover - only while the generator is being written
        return
    devorg.add_command(with_global_options(generate_command))


_add_generate()


def main() -> None:
    """``python -m sfsync.devorg``."""
    devorg.main(prog_name="python -m sfsync.devorg")
