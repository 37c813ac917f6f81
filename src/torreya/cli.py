"""The `torreya` command (SPEC §6)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from torreya.settings import ConfigurationError, Settings

console = Console()


def _progress(*, quiet: bool = False) -> Progress:
    """A progress bar for long work; `quiet` when the output itself goes to stdout."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False, disable=quiet)


def _migration_printer(event: str, app_label: str, name: str) -> None:
    if event == "apply_done":
        console.print(f"  applied {app_label}.{name}")


async def _migrate(settings: Settings) -> None:
    """The schema, then the hash chain: entries not yet linked (all of them, the first
    time) are chained in id order, with a progress bar."""
    from torreya.db import migrate, orm
    from torreya.models import ChainLink, LedgerEntry
    from torreya.trust.chain import chain_pending

    await migrate(settings, progress=_migration_printer)
    async with orm(settings):
        due = await LedgerEntry.all().count() - await ChainLink.all().count()
        if due > 0:
            with _progress() as progress:
                task = progress.add_task("Chaining the ledger", total=due)
                await chain_pending(lambda n: progress.advance(task, n))


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    if args.check:  # for deploy scripts: 0 current, 1 pending (or newer than this code)
        state = asyncio.run(_schema_state(settings))
        console.print(("[green]" if state.current else "[red]") + state.explain()
                      + ("[/green]" if state.current else "[/red]"))
        return 0 if state.current else 1
    state = asyncio.run(_schema_state(settings))
    if state.unknown:
        console.print(f"[red]{state.explain()}.[/red]")
        return 1
    asyncio.run(_migrate(settings))
    console.print("[green]Schema is up to date.[/green]")
    return 0


async def _schema_state(settings: Settings):
    from torreya.db import conn, orm
    from torreya.ops import schema

    async with orm(settings):
        return await schema.state(conn())


def _multiprocess_metrics(workers: int) -> None:
    """Several workers count into one directory that /metrics sums (ops/metrics.py): set
    before the workers start, emptied of an earlier run's counts."""
    from torreya.ops.metrics import MULTIPROC_ENV

    if workers <= 1:
        return
    folder = os.environ.get(MULTIPROC_ENV)
    if not folder:
        folder = os.path.join(tempfile.gettempdir(), f"torreya-metrics-{os.getpid()}")
        os.environ[MULTIPROC_ENV] = folder
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder, exist_ok=True)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from torreya.ops.logs import config as log_config

    state = asyncio.run(_schema_state(settings))
    if state.unknown:  # a newer Torreya migrated this database: never run older code on it
        console.print(f"[red]Not starting: {state.explain()}.[/red]")
        return 1
    asyncio.run(_migrate(settings))
    console.print(f"Torreya on http://{args.host}:{args.port} (database: "
                  f"{settings.DATABASE_URL.split('@')[-1]})")
    _multiprocess_metrics(args.workers)
    # Timeouts chosen on purpose (README, production notes): an idle keep-alive connection
    # is closed after --timeout-keep-alive seconds; on shutdown, requests in flight get
    # --timeout-graceful-shutdown seconds to finish (their transactions commit or roll back
    # whole either way). Logs: Torreya's and uvicorn's, as text or JSON lines
    # (TORREYA_LOG_FORMAT); uvicorn's access log stays off (Torreya's own request line,
    # with the route's template and not the raw path, is written in JSON mode).
    uvicorn.run("torreya.asgi:app", host=args.host, port=args.port, workers=args.workers,
                log_config=log_config(settings.LOG_FORMAT == "json"),
                proxy_headers=True, forwarded_allow_ips=args.forwarded_allow_ips,
                timeout_keep_alive=args.timeout_keep_alive,
                timeout_graceful_shutdown=args.timeout_graceful_shutdown,
                limit_concurrency=args.limit_concurrency, log_level="info", access_log=False)
    return 0


def cmd_create_admin(settings: Settings, args: argparse.Namespace) -> int:
    from torreya.accounts import passwords
    from torreya.accounts.service import create_platform_admin
    from torreya.db import orm
    from torreya.errors import DomainError
    from torreya.i18n import gettext
    from torreya.models import Role

    if not args.password_stdin:
        console.print("[red]Pass the password on standard input with --password-stdin.[/red]")
        return 2
    password = sys.stdin.readline().rstrip("\r\n")
    weak = passwords.problem(password, role=Role.PLATFORM_ADMIN, username=args.username)
    if weak is not None:
        console.print(f"[red]{gettext(weak[0], **weak[1])}[/red]")
        return 2

    async def run() -> int:
        await _migrate(settings)
        async with orm(settings):
            try:
                user = await create_platform_admin(username=args.username, password=password)
            except DomainError as error:
                console.print(f"[red]{gettext(error.message, **error.params)}[/red]")
                return 1
        console.print(f"Platform admin [bold]{user.username}[/bold] created.")
        return 0

    return asyncio.run(run())


def cmd_audit(settings: Settings, args: argparse.Namespace) -> int:
    """Prove the caches match the ledger and the chain its entries. A clean full audit
    leaves a signed checkpoint per town; `--since-checkpoint` checks only what came after
    it (nightly), the full audit everything (weekly)."""
    from torreya.db import orm
    from torreya.ledger.invariants import audit_ledger, audit_since_checkpoint, sign_checkpoints

    async def run():
        # No statement timeout: reading ten million entries' totals from a cold cache
        # outlasted the 5 s a request gets (found on the 10 M benchmark town).
        async with orm(settings, timeouts=False):
            with _progress() as progress:
                task = progress.add_task("Checking the ledger", total=None)
                chain = progress.add_task("Checking the hash chain", total=None)

                def accounts(done: int, total: int) -> None:
                    progress.update(task, completed=done, total=total)

                def links(done: int) -> None:
                    progress.advance(chain, done)

                if args.since_checkpoint:
                    return await audit_since_checkpoint(settings, accounts, links), 0
                report = await audit_ledger(accounts, links)
            return report, await sign_checkpoints(settings, report)

    report, signed = asyncio.run(run())
    scope = ""
    if args.since_checkpoint:
        scope = (f" since the checkpoints of {len(report.since)} town(s)" if report.since
                 else " (no checkpoint yet: every town from its start)")
    if report.clean:
        console.print(f"[green]Ledger is clean[/green]{scope}: {report.accounts} accounts, "
                      f"{report.entries} entries, {report.links} links of the hash chain.")
        if signed:
            console.print(f"Signed {signed} audit checkpoint(s): `torreya audit "
                          "--since-checkpoint` starts there.")
        return 0
    console.print(f"[red]{len(report.problems)} problem(s)[/red]{scope} in {report.accounts} "
                  f"accounts, {report.entries} entries:")
    for problem in report.problems:
        print(f"  - {problem}")
    return 1


def cmd_import_residents(settings: Settings, args: argparse.Namespace) -> int:
    from torreya.accounts.service import import_residents
    from torreya.db import orm
    from torreya.models import Role, Town, User, Village

    data = Path(args.file).read_bytes()

    async def run() -> int:
        async with orm(settings):
            town = await Town.get_or_none(code=args.town)
            village = await Village.get_or_none(town=town, code=args.village) if town else None
            if village is None:
                console.print(f"[red]No village {args.village} in town {args.town}.[/red]")
                return 1
            actor = await User.filter(role=Role.PLATFORM_ADMIN).order_by("id").first()
            if actor is None:
                console.print("[red]Create a platform admin first (torreya create-admin).[/red]")
                return 1
            with _progress() as progress:
                task = progress.add_task("Importing residents", total=None)
                result = await import_residents(
                    actor=actor, village=village, data=data,
                    progress=lambda done, total: progress.update(task, completed=done,
                                                                 total=total))
        if result.problems:
            console.print(f"[red]Nothing imported[/red]: {args.file}")
            for problem in result.problems:
                print(f"  {args.file}: {problem.message}")
            return 1
        console.print(f"[green]{result.created} residents imported[/green] into {village.name}.")
        return 0

    return asyncio.run(run())


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from torreya.demo import load_demo

    asyncio.run(_migrate(settings))
    logins = asyncio.run(load_demo(settings, residents=args.residents, console=console))
    console.print("\n[bold]Demo logins[/bold] (password for all: [bold]"
                  f"{logins['password']}[/bold])")
    for role, username in logins["users"]:
        console.print(f"  {role:<16} {username}")
    console.print("\nResidents log in with their phone too: gulaicun_r001 has 138 0000 0001."
                  + (" The code is in the server's log (TORREYA_SMS_BACKEND=log)."
                     if settings.SMS_BACKEND == "log" else ""))
    console.print(f"\nStart the server with [bold]torreya serve[/bold] and open "
                  f"{settings.BASE_URL}/login")
    return 0


def cmd_scheme(settings: Settings, args: argparse.Namespace) -> int:
    from torreya.db import orm
    from torreya.errors import DomainError
    from torreya.i18n import gettext
    from torreya.models import Role, Town, User
    from torreya.rewards.scheme import export_pack, import_pack, load_pack_file

    if args.action == "export":
        async def export() -> str | None:
            async with orm(settings):
                town = await Town.get_or_none(code=args.town or "")
                return await export_pack(town) if town else None

        text = asyncio.run(export())
        if text is None:
            console.print(f"[red]No town with code {args.town!r} (use --town).[/red]")
            return 1
        if args.file in (None, "-"):
            sys.stdout.write(text)
        else:
            Path(args.file).write_text(text, encoding="utf-8")
            console.print(f"Wrote {args.file}")
        return 0
    if not args.file:
        console.print("[red]Name the pack file.[/red]")
        return 2
    pack, problems = load_pack_file(Path(args.file))
    if problems:
        for problem in problems:  # plain lines: editors and CI jump to file:line
            print(problem)
        return 1
    if args.action == "check":
        console.print(f"[green]{args.file} is valid[/green]: {len(pack.rules)} rules, "
                      f"{len(pack.rewards)} items.")
        return 0

    async def run_import() -> int:
        await _migrate(settings)
        async with orm(settings):
            code = args.town or pack.town_code
            town = await Town.get_or_none(code=code) if code else None
            if town is None and args.town:
                pack.town_code = args.town
            actor = await User.filter(role=Role.PLATFORM_ADMIN).order_by("id").first()
            try:
                result = await import_pack(pack, town=town, actor=actor)
            except DomainError as error:
                console.print(f"[red]{args.file}: {gettext(error.message, **error.params)}"
                              "[/red]")
                return 1
        console.print(f"[green]Imported[/green] into {result.town.name} ({result.town.code}): "
                      f"{result.rules} rules, {result.created} new items, "
                      f"{result.updated} updated.")
        return 0

    return asyncio.run(run_import())


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """The delivery worker and the housekeeping on their own, for deployments that run them
    apart from the web hosts (then start those with TORREYA_WORKER=0). Stops cleanly on
    Ctrl-C or SIGTERM."""
    import contextlib
    import logging.config
    import signal

    from torreya.db import orm
    from torreya.housekeeping import housekeeping
    from torreya.ops.logs import config as log_config
    from torreya.outbox import worker

    logging.config.dictConfig(log_config(settings.LOG_FORMAT == "json"))

    async def run() -> None:
        await _migrate(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with orm(settings):
            console.print("Delivering webhooks and text messages from the outbox, and keeping "
                          "house (Ctrl-C to stop).")
            chores = asyncio.create_task(housekeeping(settings))
            try:
                await worker.run(settings, stop=stop)
            finally:
                chores.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await chores

    asyncio.run(run())
    return 0


def _with_progress(label: str, work):
    """Run `work(report)` under a progress bar that `report(done, total)` moves."""
    with _progress() as progress:
        task = progress.add_task(label, total=None)
        return work(lambda done, total: progress.update(task, completed=done, total=total))


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    """A consistent snapshot while serve keeps serving (SQLite's online backup API,
    PostgreSQL's pg_dump)."""
    from torreya.ops.backup import BackupError, backup

    target = Path(args.file)
    try:
        _with_progress("Backing up", lambda report: backup(settings, target, report))
    except BackupError as error:
        console.print(f"[red]{error}[/red]")
        return 1
    console.print(f"[green]Backup written[/green]: {target} ({target.stat().st_size:,} bytes). "
                  "Keep TORREYA_SECRET_KEY apart from it: a restore needs the same key.")
    return 0


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    """Load a backup into an empty database; then check the secret key against it."""
    from torreya.ops.backup import BackupError, restore

    try:
        restored = _with_progress("Restoring",
                                  lambda report: restore(settings, Path(args.file), report))
    except BackupError as error:
        console.print(f"[red]Not restored: {error}[/red]")
        return 1
    if not restored.keys_ok:
        console.print("[red]Restored, but TORREYA_SECRET_KEY is not the key this backup was "
                      "made with: the towns' signing keys cannot be opened and the ledger's "
                      "seals will not verify. Set the original key, then run torreya audit."
                      "[/red]")
        return 1
    console.print(f"[green]Restored[/green] {restored.towns} town(s). Now run `torreya audit`: "
                  "a clean audit proves every balance, entry, link and signed head whole.")
    return 0


def cmd_expire_vouchers(settings: Settings, args: argparse.Namespace) -> int:
    from torreya.db import orm
    from torreya.rewards.service import expire_vouchers

    async def run() -> int:
        async with orm(settings):
            total = 0
            while count := await expire_vouchers():
                total += count
        return total

    console.print(f"{asyncio.run(run())} voucher(s) expired and refunded.")
    return 0


def cmd_export_chain(settings: Settings, args: argparse.Namespace) -> int:
    """A town's hash chain, keys and signed heads, a line at a time, for an outside
    auditor (format torreya-chain-lines, docs/trust.md)."""
    from torreya.db import orm
    from torreya.models import ChainLink, Town
    from torreya.trust.chain import chain_pending
    from torreya.trust.export import export_lines

    async def run(out) -> tuple[int, int] | None:
        # offline work, as the audit: a batch read with stale statistics (a chain just
        # linked) outlasted the request timeout at 3.2 M links of a 10 M town
        async with orm(settings, timeouts=False):
            town = await Town.get_or_none(code=args.town)
            if town is None:
                return None
            await chain_pending()
            with _progress(quiet=out is sys.stdout) as progress:
                task = progress.add_task("Exporting the chain", total=await ChainLink.filter(
                    town_id=town.id).count())
                return await export_lines(town, out.write,
                                          lambda n: progress.advance(task, n))

    if args.file == "-":
        written = asyncio.run(run(sys.stdout))
    else:
        with open(args.file, "w", encoding="utf-8") as out:
            written = asyncio.run(run(out))
    if written is None:
        console.print(f"[red]No town with code {args.town!r}.[/red]")
        return 2
    if args.file != "-":
        console.print(f"[green]Exported[/green] {written[0]} entries and {written[1]} signed "
                      f"heads to {args.file}.")
    return 0


def cmd_rotate_key(settings: Settings, args: argparse.Namespace) -> int:
    """A new signing key for the town; the old one is retired and still verifies."""
    from torreya.db import orm
    from torreya.models import Town
    from torreya.trust.signing import rotate_key

    async def run() -> str | None:
        async with orm(settings):
            town = await Town.get_or_none(code=args.town)
            return (await rotate_key(settings, town.id)).public_key if town else None

    public_key = asyncio.run(run())
    if public_key is None:
        console.print(f"[red]No town with code {args.town!r}.[/red]")
        return 2
    console.print(f"[green]New signing key[/green] {public_key}: publish it; heads signed "
                  "before still verify with the old key.")
    return 0


def cmd_verify_export(args: argparse.Namespace) -> int:
    """Offline: no database, no server, only the file and the town's published key(s). The
    file is read a line at a time."""
    from torreya.trust.export import read_lines
    from torreya.trust.verify import verify_export

    try:
        with open(args.file, encoding="utf-8") as lines:
            header, links = read_lines(iter(lines))
            problems, count = verify_export(header, links, args.public_key or None)
    except (OSError, ValueError, KeyError, TypeError) as error:
        console.print(f"[red]Cannot read {args.file}[/red]: {error}")
        return 2
    heads = header.get("signed_heads", [])
    if problems:
        console.print(f"[red]{len(problems)} problem(s)[/red] in {args.file}:")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    last = heads[-1]
    console.print(f"[green]The chain verifies[/green]: {count} entries of "
                  f"{header['town']['name']}, {len(heads)} signed head(s); the last, of "
                  f"{last['period']}, covers link {last['seq']} (hash {last['hash'][:16]}…).")
    if not args.public_key:
        console.print("[yellow]Checked with the keys inside the file: compare them with the "
                      "town's published key, or pass --public-key.[/yellow]")
    return 0


def cmd_verify_certificate(args: argparse.Namespace) -> int:
    """Offline: a saved certificate (the JSON its address answers, or the text of its
    second QR) against the town's published key. Exit 0 valid, 1 not, 2 unreadable."""
    from torreya.hours.certificate import problems, read_saved

    try:
        with open(args.file, encoding="utf-8") as saved_file:
            saved = read_saved(saved_file.read())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        console.print(f"[red]Cannot read {args.file}[/red]: {error}", highlight=False)
        return 2
    found = problems(saved, args.public_key, full_name=args.name)
    if found:
        console.print(f"[red]The certificate does not verify[/red] ({args.file}):",
                      highlight=False)
        for problem in found:
            print(f"  - {problem}")
        return 1
    signed = json.loads(saved["payload"])
    hours, minutes = divmod(signed["minutes"], 60)
    console.print(f"[green]The certificate verifies[/green]: {signed['holder']} of "
                  f"{signed['village']}, {signed['town']}: {hours} h {minutes} min in "
                  f"{signed['items']} item(s), {signed['from']} to {signed['to']}, issued "
                  f"{signed['issued_at']} (no. {signed['code']}).", highlight=False)
    if args.name is None:
        console.print("The holder's full name was not checked: pass --name to check it.")
    if "status" not in saved:
        console.print("[yellow]Offline, revocation cannot be seen: open its address to see "
                      "whether the town revoked it.[/yellow]")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="torreya", description="Torreya safety points (平安积分)")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="migrate if needed, then serve")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--forwarded-allow-ips", default="127.0.0.1")
    serve.add_argument("--timeout-keep-alive", type=int, default=5,
                       help="close idle keep-alive connections after this many seconds")
    serve.add_argument("--timeout-graceful-shutdown", type=int, default=10,
                       help="seconds that requests in flight get to finish on shutdown")
    serve.add_argument("--limit-concurrency", type=int, default=None,
                       help="answer 503 beyond this many connections and tasks per worker")
    serve.set_defaults(func=cmd_serve)
    backup = sub.add_parser("backup", help="write a consistent backup while serve serves")
    backup.add_argument("file")
    backup.set_defaults(func=cmd_backup)
    restore = sub.add_parser("restore", help="load a backup into an empty database")
    restore.add_argument("file")
    restore.set_defaults(func=cmd_restore)
    migrate = sub.add_parser("migrate", help="bring the schema up to date")
    migrate.add_argument("--check", action="store_true",
                         help="change nothing; exit 1 when migrations are pending")
    migrate.set_defaults(func=cmd_migrate)
    admin = sub.add_parser("create-admin", help="create a platform admin")
    admin.add_argument("username")
    admin.add_argument("--password-stdin", action="store_true")
    admin.set_defaults(func=cmd_create_admin)
    audit = sub.add_parser("audit", help="verify every ledger invariant and the hash chain")
    audit.add_argument("--since-checkpoint", action="store_true",
                       help="only what came after the last clean full audit (nightly)")
    audit.set_defaults(func=cmd_audit)
    demo = sub.add_parser("demo", help="load a demo town (古来镇, 香榧币)")
    demo.add_argument("--residents", type=int, default=40)
    demo.set_defaults(func=cmd_demo)
    roster = sub.add_parser("import-residents", help="import a CSV roster into a village")
    roster.add_argument("file")
    roster.add_argument("--town", required=True, help="town code")
    roster.add_argument("--village", required=True, help="village code")
    roster.set_defaults(func=cmd_import_residents)
    scheme = sub.add_parser("scheme", help="scheme packs: check, import, export")
    scheme.add_argument("action", choices=["check", "import", "export"])
    scheme.add_argument("file", nargs="?", help="the pack (export: where to write, - for stdout)")
    scheme.add_argument("--town", help="town code (import: overrides the pack's town_code)")
    scheme.set_defaults(func=cmd_scheme)
    sub.add_parser("expire-vouchers", help="refund vouchers past their expiry"
                   ).set_defaults(func=cmd_expire_vouchers)
    export = sub.add_parser("export-chain", help="export a town's hash chain for auditors")
    export.add_argument("file", help="where to write (- for stdout)")
    export.add_argument("--town", required=True, help="town code")
    export.set_defaults(func=cmd_export_chain)
    rotate = sub.add_parser("rotate-key", help="give a town a new signing key")
    rotate.add_argument("--town", required=True, help="town code")
    rotate.set_defaults(func=cmd_rotate_key)
    verify = sub.add_parser("verify-export", help="check an exported chain offline")
    verify.add_argument("file")
    verify.add_argument("--public-key", action="append",
                        help="the town's published public key (hex); may be repeated")
    verify.set_defaults(func=None, offline=cmd_verify_export)
    certificate = sub.add_parser("verify-certificate",
                                 help="check a saved certificate of volunteer hours offline")
    certificate.add_argument("file", help="the JSON its address answers, or its QR's text")
    certificate.add_argument("--public-key", required=True,
                             help="the town's published public key (hex)")
    certificate.add_argument("--name", help="the holder's full name, to check it too")
    certificate.set_defaults(func=None, offline=cmd_verify_certificate)
    sub.add_parser("worker", help="deliver webhooks and text messages from the outbox"
                   " (apart from serve)").set_defaults(func=cmd_worker)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "offline", None):  # needs no settings, no database
        return args.offline(args)
    try:
        settings = Settings.from_env()
        return args.func(settings, args)
    except ConfigurationError as error:
        console.print(f"[red]Torreya cannot start[/red]: {error}", highlight=False,
                      soft_wrap=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
