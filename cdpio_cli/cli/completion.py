"""`cdpio completion SHELL`: print the shell completion script (Typer's)."""

from __future__ import annotations

import typer

SHELLS = ("bash", "zsh", "fish")


def command(
    shell: str = typer.Argument(..., metavar="SHELL", help="bash, zsh or fish."),
) -> None:
    """Print the completion script for bash, zsh or fish on stdout.

    Load it from your shell's start-up file (docs/integrations.md):

        bash:  eval "$(cdpio completion bash)"          (in ~/.bashrc)

        zsh:   cdpio completion zsh > "${fpath[1]}/_cdpio"

        fish:  cdpio completion fish > ~/.config/fish/completions/cdpio.fish

    `cdpio --install-completion` does the same for the shell you are in.

    Example:

        cdpio completion fish > ~/.config/fish/completions/cdpio.fish
    """
    import sys

    from cdpio_cli.errors import UsageError

    if shell not in SHELLS:
        raise UsageError(f"no completion for shell {shell!r}", hint=f"use one of {', '.join(SHELLS)}")
    # Typer's own scripts: they call back into `cdpio` with _CDPIO_COMPLETE set,
    # which the app answers before running any command.
    from typer._completion_shared import get_completion_script

    sys.stdout.write(
        get_completion_script(prog_name="cdpio", complete_var="_CDPIO_COMPLETE", shell=shell).rstrip("\n") + "\n"
    )
