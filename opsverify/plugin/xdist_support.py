"""pytest-xdist (``-n N``): all checks of one target go to one worker, and each worker starts the
probes of every check it was given at once, as a single process does.

The controller deals the targets out with :func:`deal`, the same function every worker runs on its
own collection (which is the controller's: xdist checks that all collected the same) with its
``workerinput`` (``workerid``, ``workercount``, and whether the controller deals by target, set in
``pytest_configure_node``): so a worker knows its checks before running the first without looking
inside xdist. A worker that is not one of the dealt (one started to replace a
crashed worker) probes each check when it runs it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pytest

from opsverify import analysis
from opsverify.plugin.state import WAITED_KEY, is_worker, ov

SHARE_KEY = pytest.StashKey[frozenset[str]]()
DEALT = "opsverify_dealt_by_target"  # in a worker's workerinput: the controller deals with deal()


def target_scope(nodeid: str) -> str:
    """The unit of work of a check: its case id (``checks/test_http.py::test_x[staging-web]`` →
    ``staging-web``), so one worker runs every check of a target and probes it once."""
    if nodeid.endswith("]") and "[" in nodeid:
        return nodeid[nodeid.rindex("[") + 1 : -1]
    return nodeid


def deal(nodeids: Sequence[str], workers: int) -> list[list[str]]:
    """The node ids each of ``workers`` runs: targets in collection order, target k to worker k mod N."""
    units: dict[str, list[str]] = {}
    for nodeid in nodeids:
        units.setdefault(target_scope(nodeid), []).append(nodeid)
    shares: list[list[str]] = [[] for _ in range(max(1, workers))]
    for number, unit in enumerate(units.values()):
        shares[number % len(shares)].extend(unit)
    return shares


def worker_number(workerinput: dict[str, Any]) -> int:
    """``gw3`` → 3 (``-1`` for an id that is not xdist's ``gwN``)."""
    text = str(workerinput.get("workerid", "")).removeprefix("gw")
    return int(text) if text.isdigit() else -1


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under ``-n N`` (default ``--dist load``), send all checks of one target to one worker.

    Each worker then probes each of its targets once, as a single process would. (xdist's own
    ``loadgroup`` cannot be used: it renames node ids in a way pytest 9 no longer honours.)
    All targets are dealt out at the start rather than one at a time as workers finish: a worker
    can only probe concurrently what it has been given, and handing out one target per completed
    check made ``-n 2`` as slow as a sequential run.
    """
    if config.getoption("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByTargetScheduling(LoadScopeScheduling):  # type: ignore[misc]
        collection: list[str] | None

        def _split_scope(self, nodeid: str) -> str:
            return target_scope(nodeid)

        def schedule(self) -> None:
            if self.collection is not None or not self.collection_is_completed:
                super().schedule()
                return
            nodes = sorted((n for n in self.nodes if not n.shutting_down), key=lambda n: worker_number(n.workerinput))
            if not nodes or not self._check_nodes_have_same_collection():
                super().schedule()
                return
            collection: list[str] = list(next(iter(self.registered_collections.values())))
            self.collection = collection
            by_number = {worker_number(n.workerinput): n for n in nodes}
            slots = max(len(nodes), int(nodes[0].workerinput.get("workercount", len(nodes))))
            for number, share in enumerate(deal(collection, slots)):
                node = by_number.get(number) or nodes[number % len(nodes)]  # a slot without its worker: any
                work = self.assigned_work.setdefault(node, {})
                for nodeid in share:
                    work.setdefault(target_scope(nodeid), {})[nodeid] = False
                indices = [self.registered_collections[node].index(nodeid) for nodeid in share]
                if indices:
                    node.send_runtest_some(indices)
            for node in nodes:
                node.shutdown()

    return ByTargetScheduling(config, log)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Tell each worker whether the controller deals the checks out by target (``--dist load``)."""
    node.workerinput[DEALT] = node.config.getoption("dist") == "load"


def _share(session: pytest.Session) -> frozenset[str]:
    """The node ids the controller dealt to this worker (empty when it cannot be told)."""
    config = session.config
    found = config.stash.get(SHARE_KEY, None)
    if found is None:
        workerinput: dict[str, Any] = getattr(config, "workerinput", {})
        number, count = worker_number(workerinput), int(workerinput.get("workercount", 0) or 0)
        if workerinput.get(DEALT) and 0 <= number < count:
            found = frozenset(deal([i.nodeid for i in session.items], count)[number])
        else:
            found = frozenset()
        config.stash[SHARE_KEY] = found
    return found


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """On a worker: before its first check, start the probes of every check dealt to it (and run a
    ``--until-pass`` wait or an analysis window over them)."""
    config = item.config
    if not is_worker(config):
        return
    if config.stash.get(WAITED_KEY, False):
        ov(config).prefetch([item])  # started with the others, unless it was not dealt to this worker
        return
    config.stash[WAITED_KEY] = True
    share = _share(item.session)
    owned = [item, *(i for i in item.session.items if i.nodeid in share and i is not item)]
    started = time.monotonic()
    ov(config).prefetch(owned)
    analysis.wait_or_window(item.session, owned, item, started)
