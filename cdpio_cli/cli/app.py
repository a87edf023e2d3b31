"""The `cdpio` Typer app: global options, command registration, clean exits.

Each command lives in its own small module (`cdpio_cli/cli/<name>.py`) as a
function named `command`; those modules import only typer at the top, so
`cdpio --help` and `cdpio --version` stay fast (help_render.py loads typer's
help renderer without the rich modules it never draws; the import bound is
tested in tests/test_integrations.py).  All logic lives in the core modules
they call.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import sys
import types
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any, NoReturn

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandInfo, TyperInfo

from cdpio_cli import __version__
from cdpio_cli.cli.output import GlobalOptions
from cdpio_cli.errors import ExitCode

if TYPE_CHECKING:  # typer >= 0.26 raises its vendored copy of these classes
    import typer._click as click
    from click.exceptions import ClickException
    from typer._click.shell_completion import CompletionItem

HELP = """Set up and prove a Segment -> Customer.io integration.

cdpio checks your credentials, sends test events, replays recorded events,
lints event data and proves delivery by looking in Customer.io.  With no
config file it runs against a local sandbox, so every command works with no
account.

Exit codes: 0 all checks passed, 1 a check failed, 2 usage/config/input
error, 3 a credential was rejected, 4 a service could not be reached,
130 interrupted.
"""

# (command name, module under cdpio_cli.cli).  Order = --help order (command groups last, as typer lists them).
COMMANDS: list[tuple[str, str]] = [
    ("init", "init"),
    ("check-keys", "check_keys"),
    ("send-test", "send_test"),
    ("verify", "verify"),
    ("replay", "replay"),
    ("lint", "lint"),
    ("audit", "audit"),
    ("explain", "explain"),
    ("doctor", "doctor"),
    ("sandbox", "sandbox"),
    ("completion", "completion"),
    ("plan", "plan"),
]


class _Commands(MutableMapping[str, "click.Command"]):
    """The group's commands, each built from its function (typer's conversion,
    a tenth of `cdpio --help`) only when asked for: the command being run, its
    --help, a completion.  While the group only lists them (`cdpio --help`,
    the command names a shell completes), `listing` hands out a stand-in that
    carries just the name and the help text the list shows."""

    def __init__(self) -> None:
        self.built: dict[str, click.Command] = {}
        self.listing = False

    def __getitem__(self, name: str) -> click.Command:
        command = self.built.get(name)
        if command is not None:
            return command
        module_name = _MODULES.get(name)
        if module_name is None:
            raise KeyError(name)
        module = importlib.import_module(f"cdpio_cli.cli.{module_name}")
        if self.listing:
            return _listed(name, module)
        command = self.built[name] = _built(name, module)
        return command

    def __setitem__(self, name: str, command: click.Command) -> None:
        self.built[name] = command

    def __delitem__(self, name: str) -> None:
        del self.built[name]

    def __iter__(self) -> Iterator[str]:
        return iter([*_MODULES, *(name for name in self.built if name not in _MODULES)])

    def __len__(self) -> int:
        return len(set(_MODULES) | set(self.built))


def _built(name: str, module: types.ModuleType) -> click.Command:
    """The command as typer builds it from `app.command(name)` / `app.add_typer(module.app, name=name)`."""
    if isinstance(getattr(module, "app", None), typer.Typer):  # a command group (`cdpio plan infer`)
        # typer < 0.16 suggests no commands (and takes no such argument).
        suggest: dict[str, Any] = {"suggest_commands": app.suggest_commands} if hasattr(app, "suggest_commands") else {}
        return typer.main.get_group_from_info(
            TyperInfo(module.app, name=name),
            pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=app.rich_markup_mode,
            **suggest,
        )
    return typer.main.get_command_from_info(
        CommandInfo(name=name, callback=module.command),
        pretty_exceptions_short=app.pretty_exceptions_short,
        rich_markup_mode=app.rich_markup_mode,
    )


def _listed(name: str, module: types.ModuleType) -> click.Command:
    """What a list of commands reads of one: its name and help, as typer would set them."""
    if isinstance(getattr(module, "app", None), typer.Typer):
        help_text = typer.main.solve_typer_info_defaults(TyperInfo(module.app, name=name)).help
    else:
        doc = inspect.getdoc(module.command)
        help_text = inspect.cleandoc(doc) if doc else None
    return TyperCommand(name=name, help=help_text, rich_markup_mode=app.rich_markup_mode)


class _LazyGroup(TyperGroup):
    """The `cdpio` group: its commands are built on demand (_Commands)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _Commands()

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with self._listing():
            super().format_help(ctx, formatter)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        with self._listing():
            return super().shell_complete(ctx, incomplete)

    @contextlib.contextmanager
    def _listing(self) -> Iterator[None]:
        commands = self.commands
        if not isinstance(commands, _Commands):
            yield
            return
        commands.listing = True
        try:
            yield
        finally:
            commands.listing = False


_MODULES = dict(COMMANDS)

app = typer.Typer(
    name="cdpio",
    help=HELP,
    cls=_LazyGroup,
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion; see also `cdpio completion`
    pretty_exceptions_show_locals=False,  # locals may hold credentials
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"cdpio {__version__}")
        raise typer.Exit(0)


@app.callback()
def _global(
    ctx: typer.Context,
    config: str | None = typer.Option(
        None,
        "--config",
        "-c",
        metavar="PATH",
        help="Config file (default: $CDPIO_CONFIG, then ./cdpio.yaml, ./.cdpio.yaml).",
    ),
    sandbox: bool = typer.Option(False, "--sandbox", help="Use the embedded local sandbox."),
    sandbox_url: str | None = typer.Option(
        None,
        "--sandbox-url",
        metavar="URL",
        help="Use a running `cdpio sandbox` at URL.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
    junit: str | None = typer.Option(None, "--junit", metavar="PATH", help="Write a JUnit XML report."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors on stderr."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="More detail (never secrets)."),
    no_color: bool = typer.Option(False, "--no-color", help="No colour (also: NO_COLOR=1)."),
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version_callback,
        is_eager=True,
        help="Show the version and exit.",
    ),
) -> None:
    if sandbox and sandbox_url:
        from cdpio_cli.errors import UsageError

        raise UsageError("use either --sandbox (embedded) or --sandbox-url URL (a running sandbox), not both")
    if junit:
        # Before any work: a CI retry after a late failure would send everything again.
        from cdpio_cli.paths import check_writable_file

        check_writable_file(junit, "--junit", "reports/cdpio.xml")
    ctx.obj = GlobalOptions(
        config=config,
        sandbox=sandbox,
        sandbox_url=sandbox_url,
        json=json_out,
        junit=junit,
        quiet=quiet,
        verbose=verbose,
        no_color=no_color,
        command=ctx.invoked_subcommand or "",
    )


# Global flags may also be written after the command (`cdpio lint --json f`).
_GLOBAL_FLAGS = {"--sandbox", "--json", "--quiet", "-q", "--verbose", "-v", "--no-color"}
_GLOBAL_VALUED = {"--config", "-c", "--sandbox-url", "--junit"}
_COMMAND_NAMES = {name for name, _ in COMMANDS}


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move global options written after the command name in front of it."""
    command_at = next((i for i, a in enumerate(argv) if a in _COMMAND_NAMES), None)
    if command_at is None:
        return list(argv)
    head, tail = list(argv[:command_at]), []
    moved: list[str] = []
    rest = argv[command_at:]
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg == "--":
            tail.extend(rest[i:])
            break
        key = arg.split("=", 1)[0]
        if i > 0 and arg in _GLOBAL_FLAGS:
            moved.append(arg)
        elif i > 0 and key in _GLOBAL_VALUED:
            if "=" in arg:
                moved.append(arg)
            elif i + 1 < len(rest):
                moved.extend([arg, rest[i + 1]])
                i += 1
            else:
                tail.append(arg)
        else:
            tail.append(arg)
        i += 1
    return head + moved + tail


def _click_exception_types() -> tuple[type[ClickException], ...]:
    """ClickException classes: typer >= 0.26 vendors click, older typer uses click.

    Only the ones already loaded: a click nobody imported raises nothing, and
    importing it costs `cdpio --help` a tenth of its time.
    """
    modules = (sys.modules.get(name) for name in ("typer._click.exceptions", "click.exceptions"))
    return tuple(module.ClickException for module in modules if module is not None)


def _skip_httpx_cli() -> None:
    """Keep `import httpx` from importing httpx's own command-line client.

    httpx imports it (click, rich.progress, pygments: a third of a replay
    run's imports) whenever those are installed, and typer installs them;
    cdpio never runs it (https://github.com/encode/httpx/pull/3547).  A None
    in sys.modules makes that import fail, and httpx then defines a stub.
    """
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]  # None is the documented "do not import"


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app, turn every error into one line.

    Without `argv` this is the process (`cdpio`, `python -m cdpio_cli`): it
    ends through `exiting.exit_process`.  With `argv` (a caller in the same
    process) it raises SystemExit, as `sys.exit` does."""
    if argv is not None:
        _main(argv)
    try:
        _main(sys.argv[1:])
    except SystemExit as exc:
        from cdpio_cli.cli.exiting import exit_process

        exit_process(exc.code)


def _main(argv: list[str]) -> NoReturn:
    from cdpio_cli.errors import CdpioError

    _skip_httpx_cli()
    args = hoist_global_options(argv)
    command = typer.main.get_command(app)
    cmd_name = next((a for a in args if a in _COMMAND_NAMES), "")
    click_errors = _click_exception_types()
    if not args or "--help" in args or "-h" in args:
        from cdpio_cli.cli.help_render import import_help_renderer

        import_help_renderer()
    from cdpio_cli.cli.signals import InterruptSignals

    stop = InterruptSignals()
    try:
        with stop:
            code = command.main(args=args, prog_name="cdpio", standalone_mode=False)
    except CdpioError as exc:
        from cdpio_cli.cli.output import report_error

        sys.exit(report_error(exc, cmd_name, args))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("cdpio: interrupted\n")
        sys.exit(ExitCode.INTERRUPTED)
    except click_errors as exc:  # unknown flag or command, bad flag value
        from cdpio_cli.cli.output import report_error
        from cdpio_cli.errors import UsageError

        exc.show()  # click's usage text; the other outputs still get the error
        sys.exit(report_error(UsageError(exc.format_message()), cmd_name, args, say=False))
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # a bug: say so without locals (they may hold keys)
        from cdpio_cli.credentials import redact

        if "--verbose" in args or "-v" in args:
            import traceback

            sys.stderr.write(redact("".join(traceback.format_exception(exc))))
        sys.stderr.write(
            redact(
                f"cdpio: internal error: {type(exc).__name__}: {exc} "
                "(this is a bug in cdpio; rerun with --verbose for the traceback)\n"
            )
        )
        sys.exit(1)
    if stop.interrupted and code == ExitCode.INTERRUPTED:
        # typer turns an unhandled Ctrl-C into a silent exit 130: say it.  A
        # command that handles it (the sandbox stops cleanly) keeps its code.
        sys.stderr.write("cdpio: interrupted\n")
    sys.exit(code if isinstance(code, int) else 0)
