"""The ``callcenter`` command: serve, db upgrade, simulate, demo, config check, prompts build.

The CLI is the one place that prints (what the user asked for); the service logs.
Exit codes: 0 fine, 1 the service could not start or failed, 2 bad configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from callcenter import __version__
from callcenter.logging import setup_logging
from callcenter.settings import ROLES, ConfigError, Settings, load_settings

EXIT_FAILED = 1
EXIT_CONFIG = 2

config_option = click.option(
    "--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
    help="Settings file (default: $CALLCENTER_CONFIG, else config/callcenter.toml if present).")


def _settings(config_path: Path | None) -> Settings:
    """Load and validate, or stop with the file, key and reason on stderr."""
    try:
        settings = load_settings(config_path)
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    cfg = settings.logging
    setup_logging(cfg.level, cfg.format, cfg.access_log)
    return settings


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_FAILED)


@click.group()
@click.version_option(__version__, prog_name="callcenter")
def main() -> None:
    """Call-center backend for 12345-style government service hotlines."""


@main.command()
@config_option
@click.option("--role", "roles", multiple=True, type=click.Choice(ROLES),
              help="Run only this part (repeatable); default: the [service] roles.")
@click.option("--upgrade", is_flag=True, help="Migrate a database that is behind first.")
def serve(config_path: Path | None, roles: tuple[str, ...], upgrade: bool) -> None:
    """Run the service until SIGINT/SIGTERM."""
    from callcenter.service import StartupError, run_service

    settings = _settings(config_path)
    try:
        asyncio.run(run_service(settings, roles=list(roles) or None, upgrade=upgrade))
    except StartupError as exc:
        _fail(str(exc))
    except OSError as exc:  # e.g. the web port is taken
        _fail(f"cannot start: {exc}")


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@config_option
@click.option("--revision", default="head", show_default=True)
def db_upgrade(config_path: Path | None, revision: str) -> None:
    """Apply migrations up to REVISION."""
    from callcenter.store import migrations

    settings = _settings(config_path)
    url = settings.database.effective_url()
    with _database_errors(url):
        asyncio.run(migrations.upgrade(url, revision))
        state = asyncio.run(migrations.state(url))
    click.echo(f"database at revision {state.current} (head {state.head})")


@db.command("revision")
@click.option("-m", "--message", required=True, help="What the migration does.")
@click.option("--rev-id", default=None, help="Revision id, e.g. 0005_reports.")
def db_revision(message: str, rev_id: str | None) -> None:
    """Draft a migration from the models' difference with the chain's head (review it!)."""
    from callcenter.store import migrations

    setup_logging("WARNING")
    path = asyncio.run(migrations.draft_revision(message, rev_id))
    click.echo(f"drafted {path}")


@db.command("current")
@config_option
def db_current(config_path: Path | None) -> None:
    """Show the database's revision and whether it is up to date."""
    from callcenter.store import migrations

    settings = _settings(config_path)
    url = settings.database.effective_url()
    with _database_errors(url):
        state = asyncio.run(migrations.state(url))
    verdict = "empty" if state.empty else ("up to date" if state.up_to_date else "BEHIND")
    click.echo(f"current {state.current} head {state.head}: {verdict}")


@contextlib.contextmanager
def _database_errors(url: str) -> Iterator[None]:
    """A database that cannot be reached is a one-line error, not a traceback."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except (OSError, SQLAlchemyError) as exc:
        shown = make_url(url).render_as_string(hide_password=True)
        _fail(f"database {shown}: {exc}")


@main.group("tickets")
def tickets_group() -> None:
    """Work-order maintenance."""


@tickets_group.command("recompute-deadlines")
@config_option
def tickets_recompute(config_path: Path | None) -> None:
    """Count provisional deadlines again after a calendar/<year>.toml was added."""
    from callcenter.clock import SystemClock
    from callcenter.store.engine import create_sessionmaker, engine_from_settings
    from callcenter.tickets.recompute import recompute_provisional_deadlines

    settings = _settings(config_path)

    async def run() -> list[int]:
        engine = engine_from_settings(settings.database)
        try:
            return await recompute_provisional_deadlines(
                create_sessionmaker(engine), SystemClock(), settings.tickets)
        finally:
            await engine.dispose()

    with _database_errors(settings.database.effective_url()):
        changed = asyncio.run(run())
    click.echo(f"recomputed {len(changed)} provisional deadline(s)")


@main.group("agents")
def agents_group() -> None:
    """Agents: their softphones."""


@agents_group.command("provision")
@config_option
@click.option("--no-reload", is_flag=True, help="Write the file only (Asterisk reloads later).")
def agents_provision(config_path: Path | None, no_reload: bool) -> None:
    """Write the agents' PJSIP endpoints (queues.pjsip_agents_path) from the agent list and
    reload res_pjsip over AMI."""
    from callcenter.queues.provisioning import provision_once

    settings = _settings(config_path)
    try:
        with _database_errors(settings.database.effective_url()):
            done = asyncio.run(provision_once(settings, reload=not no_reload))
    except TimeoutError:
        _fail(f"{settings.queues.pjsip_agents_path} written; Asterisk not reachable at "
              f"{settings.ami.host}:{settings.ami.port}: run `pjsip reload` there")
        return
    except Exception as exc:  # noqa: BLE001 - Asterisk's refusal, said plainly
        _fail(f"provisioning failed: {exc}")
        return
    click.echo(f"{len(done.extensions)} softphone(s) written to {done.path}"
               + ("; res_pjsip reloaded" if done.reloaded else ""))


@main.group("report")
def report_group() -> None:
    """Reports: the monthly report (HTML and PDF)."""


@report_group.command("monthly")
@click.argument("month")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              default=Path("var/reports"), show_default=True, help="Folder for the files.")
@click.option("--live", is_flag=True, help="Compute from live data even if the month is frozen.")
@config_option
def report_monthly(month: str, out_dir: Path, live: bool, config_path: Path | None) -> None:
    """Write the monthly report of MONTH (YYYY-MM) as HTML and PDF."""
    import re

    from callcenter.reports.context import ReportContext
    from callcenter.reports.monthly import month_figures, write_report
    from callcenter.store.engine import create_sessionmaker, engine_from_settings

    if not re.fullmatch(r"(19|20|21)\d\d-(0[1-9]|1[0-2])", month):
        _fail(f"month must be YYYY-MM, not {month!r}")
    settings = _settings(config_path)
    context = ReportContext.from_settings(settings)

    async def run() -> tuple[Path, Path]:
        engine = engine_from_settings(settings.database)
        try:
            async with create_sessionmaker(engine)() as session:
                result = await month_figures(session, context, month, live=live)
        finally:
            await engine.dispose()
        return await asyncio.to_thread(write_report, result, context, out_dir)

    with _database_errors(settings.database.effective_url()):
        html_path, pdf_path = asyncio.run(run())
    click.echo(f"wrote {html_path} and {pdf_path}")


@main.group("recordings")
def recordings_group() -> None:
    """Recordings: reconciliation and the integrity sweep."""


@recordings_group.command("reconcile")
@config_option
def recordings_reconcile(config_path: Path | None) -> None:
    """List files without rows and rows without files; exit 1 if any."""
    from callcenter.recordings.integrity import run_with_settings

    settings = _settings(config_path)
    with _database_errors(settings.database.effective_url()):
        found = asyncio.run(run_with_settings(settings, "reconcile"))
    for key in found.files_without_rows:
        click.echo(f"file without row: {key}")
    for recording_id in found.rows_without_files:
        click.echo(f"row without file: recording {recording_id}")
    for name in found.monitor_files_without_rows:
        click.echo(f"monitor file without row: {name}")
    total = (len(found.files_without_rows) + len(found.rows_without_files)
             + len(found.monitor_files_without_rows))
    click.echo(f"{total} problem(s)")
    sys.exit(EXIT_FAILED if total else 0)


@recordings_group.command("sweep")
@config_option
def recordings_sweep(config_path: Path | None) -> None:
    """Re-hash every stored recording now; exit 1 if one changed or disappeared."""
    from callcenter.recordings.integrity import run_with_settings

    settings = _settings(config_path)
    with _database_errors(settings.database.effective_url()):
        report = asyncio.run(run_with_settings(settings, "sweep"))
    click.echo(f"checked {report.checked}, changed {report.changed}, gone {report.gone}")
    sys.exit(EXIT_FAILED if report.changed or report.gone else 0)


@main.group("worker")
def worker_group() -> None:
    """Run one kind of background worker alone (scale out on other machines)."""


@worker_group.command("stt")
@config_option
def worker_stt(config_path: Path | None) -> None:
    """Speech-to-text: take transcription jobs from Redis until SIGINT/SIGTERM."""
    from callcenter.speech.workers import run_standalone

    settings = _settings(config_path)
    with _database_errors(settings.database.effective_url()):
        asyncio.run(_until_signal(lambda stop: run_standalone(settings, stop)))


@main.command()
@click.argument("inputs", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Write <name>.json and <name>.txt here (default: beside).")
@click.option("--language", default=None, help="Model language (default: speech.language).")
@config_option
def transcribe(inputs: tuple[Path, ...], out_dir: Path | None, language: str | None,
               config_path: Path | None) -> None:
    """Transcribe WAV files (or every WAV under folders); exit 1 if one failed."""
    from callcenter.speech import batch
    from callcenter.speech.errors import TranscriptionError

    settings = _settings(config_path)
    speech = settings.speech
    language = language or speech.language
    if language not in speech.models:
        _fail(f"no speech model for language {language!r} (speech.models has "
              f"{', '.join(sorted(speech.models))})")
    try:
        outcomes = batch.run(list(inputs), speech.models[language], language,
                             processes=speech.processes, chunk_frames=speech.chunk_frames,
                             out_dir=out_dir, digit_pass=speech.digit_pass)
    except TranscriptionError as exc:
        _fail(str(exc))
    failed = [o for o in outcomes if o.error]
    for outcome in failed:
        click.echo(f"failed: {outcome.source}: {outcome.error}", err=True)
    click.echo(f"transcribed {len(outcomes) - len(failed)} of {len(outcomes)} file(s)")
    sys.exit(EXIT_FAILED if failed or not outcomes else 0)


@main.group("config")
def config_group() -> None:
    """Configuration commands."""


@config_group.command("check")
@config_option
def config_check(config_path: Path | None) -> None:
    """Validate the settings (file + environment + secrets) and summarise them."""
    settings = _settings(config_path)
    for line in _summary(settings):
        click.echo(line)
    click.echo("configuration OK")


def _summary(settings: Settings) -> list[str]:
    from sqlalchemy.engine import make_url

    db_url = make_url(settings.database.effective_url()).render_as_string(hide_password=True)
    return [
        f"mode       {settings.service.mode} (roles: {', '.join(settings.service.roles)})",
        f"database   {db_url}",
        f"bus        {settings.bus.backend}"
        + (f" {settings.bus.redis_url} prefix {settings.bus.redis_prefix}"
           if settings.bus.backend == "redis" else ""),
        f"web        http://{settings.web.host}:{settings.web.port}",
        f"asterisk   AMI {settings.ami.host}:{settings.ami.port} user {settings.ami.username};"
        f" FastAGI on {settings.agi.host}:{settings.agi.port}",
    ]


@main.group("prompts")
def prompts_group() -> None:
    """IVR prompts: recorded or synthesized, installed where Asterisk reads sounds."""


@prompts_group.command("build")
@config_option
@click.option("--sounds-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Install here instead of ivr.sounds_dir (Asterisk's sounds folder).")
def prompts_build(config_path: Path | None, sounds_dir: Path | None) -> None:
    """Check the flows, then build every prompt they name (a recording in ivr/prompts/<lang>/
    wins; otherwise synthesized, cached by text, voice and rate) and install it."""
    from callcenter.ivr.app import load_flows, prompts_of
    from callcenter.ivr.flow import FlowError
    from callcenter.ivr.prompts import PromptCatalog, PromptError, PromptLibrary

    settings = _settings(config_path)
    config = settings.ivr
    if sounds_dir is not None:
        config = config.model_copy(update={"sounds_dir": sounds_dir.resolve()})
    try:
        catalog = PromptCatalog(config.flows_dir)
        wanted = prompts_of(load_flows(config, catalog))
    except (FlowError, PromptError) as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    library = PromptLibrary(catalog, config)
    with click.progressbar(length=len(wanted), label="building prompts",
                           item_show_func=lambda key: f"{key[1]}/{key[0]}" if key else None
                           ) as bar:
        try:
            report = library.build(wanted, progress=lambda key: bar.update(1, key))
        except PromptError as exc:
            _fail(str(exc))
    click.echo(f"{len(wanted)} prompts in {config.sounds_dir}: {len(report.recorded)} "
               f"recorded, {len(report.synthesized)} synthesized, {len(report.cached)} from "
               f"the cache; {len(report.installed)} installed or updated")


@main.command()
@config_option
def simulate(config_path: Path | None) -> None:
    """Run the Asterisk simulator alone (AMI server + FastAGI client) until Ctrl-C."""
    from callcenter.simulator import run_simulator

    settings = _settings(config_path)
    asyncio.run(_until_signal(lambda stop: run_simulator(settings.simulator, stop)))


@main.command()
@config_option
@click.option("--duration", type=float, default=None,
              help="Stop after this many seconds (default: run until Ctrl-C).")
@click.option("--calls-per-minute", type=float, default=12.0, show_default=True)
def demo(config_path: Path | None, duration: float | None, calls_per_minute: float) -> None:
    """Simulator + service + generated calls on the embedded defaults."""
    from callcenter.demo import run_demo

    settings = _settings(config_path)
    log_file = Path("var/demo.log")
    cfg = settings.logging
    setup_logging(cfg.level, cfg.format, cfg.access_log, path=log_file)
    click.echo(f"logs go to {log_file}")
    try:
        asyncio.run(run_demo(settings, duration=duration, calls_per_minute=calls_per_minute,
                             echo=click.echo))
    except Exception as exc:  # the demo explains itself; no traceback for a newcomer
        from callcenter.service import StartupError

        if isinstance(exc, StartupError | OSError):
            _fail(str(exc))
        raise


async def _until_signal(body: Any) -> None:
    from callcenter.service import _signals_set

    stop = asyncio.Event()
    with _signals_set(stop):
        await body(stop)


if __name__ == "__main__":  # pragma: no cover
    main()
