"""The command tree, and `runtime-pipeline`: the console script that serves it from any repo.

`runtime-pipeline release` is `invoke release` without a `tasks.py`: an invoke `Program` over the
same `Collection`, so a runtime repo only installs the package. A repo that prefers `invoke`
keeps a one-line `tasks.py` (`from pipeline.cli.main import ns`).
"""

from __future__ import annotations

from invoke.collection import Collection

from pipeline.cli import (
    adopt,
    build,
    cache,
    check,
    council,
    deploy,
    gate,
    inspect,
    net,
    node,
    plan,
    release,
)

BINARY = "runtime-pipeline"


def namespace() -> Collection:
    """Every command: top-level tasks, then one collection per area."""
    ns = Collection()
    for top_level in (
        adopt.init,
        build.build,
        build.verify,
        inspect.inspect,
        deploy.deploy,
        deploy.diff,
        deploy.test,
        council.propose,
        council.track,
        council.enact,
    ):
        ns.add_task(top_level)
    ns.add_collection(Collection("council", council.simulate))
    for module, name in (
        (net, "net"),
        (node, "node"),
        (plan, "plan"),
        (release, "release"),
        (gate, "gate"),
        (check, "check"),
        (cache, "cache"),
    ):
        ns.add_collection(Collection.from_module(module, name=name))
    return ns


ns = namespace()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("runtime-pipeline")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def main() -> None:
    """The `runtime-pipeline` console script (made here: `invoke` reads only `ns`)."""
    from invoke.program import Program

    Program(namespace=ns, name="runtime-pipeline", binary=BINARY, version=_version()).run()
