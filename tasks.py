"""invoke entry point: assembles the command collections that live in `pipeline/cli/`.

No logic here; each collection is a thin layer over one `pipeline` module.
"""

from invoke.collection import Collection

from pipeline.cli import build, check, council, deploy, gate, inspect, net, node, plan, release

ns = Collection()
for top_level in (
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
ns.add_collection(Collection.from_module(net, name="net"))
ns.add_collection(Collection.from_module(node, name="node"))
ns.add_collection(Collection.from_module(plan, name="plan"))
ns.add_collection(Collection.from_module(release, name="release"))
ns.add_collection(Collection.from_module(gate, name="gate"))
ns.add_collection(Collection.from_module(check, name="check"))
