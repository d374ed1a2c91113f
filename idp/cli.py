"""The ``idp`` command: one entry point for every long-running piece of the platform.

Each subcommand imports its module lazily, so ``idp --help`` stays fast and a missing
optional piece only breaks the subcommand that needs it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

# service.name of flow-run processes: seed 000 calls the orchestrator "workflow-engine".
FLOW_RUN_SERVICE = "workflow-engine"


def _sandbox(argv: list[str]) -> int:
    from sandbox.run import main

    return main(argv)


def _control_plane(argv: list[str]) -> int:
    from services.platform.control_plane.__main__ import main

    main(argv, prog="idp control-plane")
    return 0


def _execution_workers(argv: list[str]) -> int:
    from services.platform.execution_workers.__main__ import main

    main(argv, prog="idp execution-workers")
    return 0


def _flow_run(argv: list[str]) -> int:
    """``python -m prefect.engine [FLOW_RUN_ID]`` with tracing configured first.

    The process work pool's ``command`` for traced deployments: Prefect opens the flow
    run's span before any flow code runs, so tracing must exist before the engine starts;
    spans are flushed before the process exits, however the run ends.
    """
    import runpy

    from prefect.settings import get_current_settings

    from core.telemetry import configure_tracing, flush_tracing

    api_url = get_current_settings().api.url
    # Prefect's own API calls (states, logs, events) would bury the workflow's spans.
    configure_tracing(FLOW_RUN_SERVICE, skip_urls=[api_url] if api_url else [])
    sys.argv = ["prefect.engine", *argv]
    sys.modules.pop("prefect.engine", None)  # run a fresh __main__, as Prefect's runner does
    try:
        runpy.run_module("prefect.engine", run_name="__main__", alter_sys=True)
    finally:
        flush_tracing()
    return 0


def _bootstrap(argv: list[str]) -> int:
    from deployments.bootstrap import main

    return main(argv)


def _walkthrough(argv: list[str]) -> int:
    from idp.walkthrough import main

    return main(argv)


def _demo(argv: list[str]) -> int:
    from idp.demo import main

    return main(argv)


COMMANDS: dict[str, tuple[str, Callable[[list[str]], int]]] = {
    "sandbox": ("start the local GitHub/Harbor/Vault/secret-endpoint sandbox", _sandbox),
    "control-plane": ("run control-plane-api (domain state, commands, events)", _control_plane),
    "execution-workers": (
        "run execution-workers (side effects on GitHub, Harbor, secrets)",
        _execution_workers,
    ),
    "bootstrap": ("register block types and save block documents from the environment", _bootstrap),
    "flow-run": ("run one flow run, traced (python -m prefect.engine, tracing first)", _flow_run),
    "demo": ("run the main job on the embedded default", _demo),
    "walkthrough": ("drive every provider block once against an in-process sandbox", _walkthrough),
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"} or args[0] not in COMMANDS:
        width = max(len(name) for name in COMMANDS)
        print("usage: idp COMMAND [ARGS]\n\ncommands:")
        for name, (help_text, _) in COMMANDS.items():
            print(f"  {name:<{width}}  {help_text}")
        return 0 if not args or args[0] in {"-h", "--help"} else 2
    _, run = COMMANDS[args[0]]
    return run(args[1:])


if __name__ == "__main__":
    raise SystemExit(main())
