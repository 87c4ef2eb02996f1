"""Command line: serve, worker, db, demo, users, audit."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from medalliance.config import REPO_ROOT, get_settings

if TYPE_CHECKING:
    from alembic.config import Config

app = typer.Typer(
    help="MedAlliance — medical consortium platform",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema", no_args_is_help=True)
demo_app = typer.Typer(help="Demo consortium", no_args_is_help=True)
audit_app = typer.Typer(help="Audit log", no_args_is_help=True)
users_app = typer.Typer(help="Users", no_args_is_help=True)
clients_app = typer.Typer(help="Member systems (HIS/LIS/PACS API clients)", no_args_is_help=True)
hl7_app = typer.Typer(help="HL7 v2 inbound (MLLP)", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(audit_app, name="audit")
app.add_typer(users_app, name="users")
app.add_typer(clients_app, name="clients")
app.add_typer(hl7_app, name="hl7")


def _indicators_app() -> typer.Typer:
    from medalliance.indicators.cli import app as indicators

    return indicators


app.add_typer(_indicators_app(), name="indicators")


def _alembic_config() -> Config:
    from alembic.config import Config

    return Config(str(REPO_ROOT / "alembic.ini"))


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations (creates the SQLite file under var/ when needed)."""
    from alembic import command

    settings = get_settings()
    if settings.is_sqlite:
        path = settings.database_url.removeprefix("sqlite:///")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(_alembic_config(), revision)
    typer.echo(f"database at {revision}")


@db_app.command("reset")
def db_reset(
    yes: Annotated[bool, typer.Option("--yes", help="confirm: every table is dropped")] = False,
) -> None:
    """Drop the whole schema (development and test only); run `db upgrade` after it."""
    from sqlalchemy import text

    from medalliance.db import get_engine

    settings = get_settings()
    if settings.environment == "production" or not yes:
        raise typer.BadParameter("refused: pass --yes, and never in production")
    engine = get_engine()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        else:
            tables = conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))
            for (name,) in list(tables):
                conn.execute(text(f'DROP TABLE IF EXISTS "{name}"'))
    typer.echo("database schema dropped")


@demo_app.command("load")
def demo_load(
    scale: Annotated[
        str, typer.Option(help="small (~2,000 residents) or county (1,000,000)")
    ] = "small",
    seed: Annotated[int, typer.Option(help="random seed; the same seed gives the same data")] = 1,
    if_empty: Annotated[bool, typer.Option(help="do nothing when users already exist")] = False,
    records: Annotated[
        bool, typer.Option(help="with the shared health record of the referred patients' stays")
    ] = True,
) -> None:
    """Load the deterministic demo consortium into an empty database."""
    from medalliance.auth import service as auth_service
    from medalliance.db import unit_of_work
    from medalliance.demo.loader import Scale, load

    with unit_of_work() as db:
        if if_empty and auth_service.has_users(db):
            typer.echo("demo: database already has data, nothing loaded")
            return
        report = load(db, scale=Scale(scale), seed=seed, records=records)
    typer.echo(
        f"demo loaded: {report.institutions} institutions, {report.departments} departments, "
        f"{report.practitioners} practitioners, {report.residents} residents, "
        f"{report.users} users, {report.resources} FHIR resources in {report.seconds:.1f}s"
    )


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[int, typer.Option(help="web processes (PostgreSQL only)")] = 1,
) -> None:
    """Serve the web UI and API; in embedded mode the worker runs in-process."""
    import uvicorn

    from medalliance.app import create_app
    from medalliance.kit.serving import CoalescingHttpToolsProtocol

    settings = get_settings()
    typer.echo(f"MedAlliance on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    if settings.is_development:
        typer.echo(
            "demo accounts (password 'medalliance'): admin coordinator doctor specialist "
            "reader family_doctor resident commission"
        )
    if workers > 1:
        from medalliance.kit.workers import serve_workers

        config = uvicorn.Config(
            "medalliance.app:create_app",
            factory=True,
            host=host,
            port=port,
            log_level="warning",
            http=CoalescingHttpToolsProtocol,
        )
        serve_workers(config, workers)
        return
    uvicorn.run(
        create_app(settings, run_worker=settings.worker_in_process),
        host=host,
        port=port,
        log_level="warning",
        http=CoalescingHttpToolsProtocol,
    )


@app.command()
def worker() -> None:
    """Run the background jobs (outbox, timers, audit sealing) until interrupted."""
    from medalliance import worker as jobs

    stop = threading.Event()
    try:
        jobs.run_forever(stop, get_settings().worker_interval_seconds)
    except KeyboardInterrupt:
        stop.set()


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the hash chain and report the first broken row (exit 1 when broken)."""
    from medalliance.audit import service
    from medalliance.db import unit_of_work

    with unit_of_work() as db:
        report = service.verify(db)
    if report.ok:
        typer.echo(f"audit chain intact: {report.checked} sealed rows, {report.unsealed} pending")
        return
    if report.broken_seq is None:
        typer.echo(f"audit log INCOMPLETE: {report.reason}", err=True)
        sys.exit(1)
    typer.echo(
        f"audit chain BROKEN at seal {report.broken_seq} (event {report.broken_event_id}): "
        f"{report.reason}; {report.checked} rows verified before it",
        err=True,
    )
    sys.exit(1)


@audit_app.command("seal")
def audit_seal() -> None:
    """Chain every pending audit row now (the worker does this every second)."""
    from medalliance.audit import service
    from medalliance.db import unit_of_work

    total = 0
    while True:
        with unit_of_work() as db:
            sealed = service.seal_pending(db)
        total += sealed
        if sealed == 0:
            break
    typer.echo(f"sealed {total} audit rows")


@users_app.command("create")
def users_create(
    username: str,
    institution: Annotated[str, typer.Option(help="institution id")],
    role: Annotated[str, typer.Option(help="role at that institution")],
    display_name: Annotated[str, typer.Option()] = "",
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)
    ] = "",
) -> None:
    """Create a user with one role at one institution."""
    from medalliance.auth import service
    from medalliance.auth.enums import Role
    from medalliance.db import unit_of_work
    from medalliance.registry import service as registry

    if len(password) < 8:
        raise typer.BadParameter("password must be at least 8 characters")
    with unit_of_work() as db:
        registry.get_institution(db, institution)
        service.create_user(
            db,
            None,
            username=username,
            display_name=display_name or username,
            password=password,
            roles=[(institution, Role(role))],
        )
    typer.echo(f"user {username} created")


@clients_app.command("create")
def clients_create(
    client_id: str,
    institution: Annotated[str, typer.Option(help="the member institution it speaks for")],
    name: Annotated[str, typer.Option(help="e.g. 'County People's Hospital HIS'")] = "",
) -> None:
    """Register a member system; prints its secret once (client-credentials grant)."""
    import secrets

    from medalliance.auth import service
    from medalliance.db import unit_of_work
    from medalliance.registry import service as registry

    secret = secrets.token_urlsafe(32)
    with unit_of_work() as db:
        registry.get_institution(db, institution)
        service.create_client(
            db,
            None,
            client_id=client_id,
            secret=secret,
            name=name or client_id,
            institution_id=institution,
        )
    typer.echo(f"client {client_id} for {institution} created; secret (shown once): {secret}")


@hl7_app.command("listen")
def hl7_listen(
    host: Annotated[str | None, typer.Option(help="bind address (default: settings)")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default: settings)")] = None,
) -> None:
    """Receive HL7 v2 over MLLP; MSH-4 maps to a member system (MEDALLIANCE_HL7_MLLP_SYSTEMS)."""
    from medalliance.db import get_sessionmaker
    from medalliance.records.hl7 import mllp

    settings = get_settings()
    host, port = host or settings.hl7_mllp_host, port or settings.hl7_mllp_port
    typer.echo(f"HL7 v2 MLLP listener on {host}:{port}")
    try:
        mllp.serve_forever(get_sessionmaker(), host, port, limit=settings.hl7_max_message_bytes)
    except KeyboardInterrupt:
        typer.echo("HL7 listener stopped")


if __name__ == "__main__":
    app()
