"""The pipeline's Docker images as cache entries: builder and node images are tagged by their
recipe's hash, so every Dockerfile change leaves the previous image (1.4 GB each) behind.

An image tag is an entry of the kind `docker:<repository>`, last used when it was tagged (the
engine records no later use). The current recipe's tags are never candidates, nor is an image
a container (running or not) was made from; the rest go by `cache.choose`'s rules, removed by
tag through the Docker SDK without force, so the engine itself refuses anything still needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import docker
import docker.errors

from pipeline import builder_image, nodebuild
from pipeline.cache import Entry, Pruned, Rules, choose

KIND_PREFIX: Final = "docker:"
OUR_REPOSITORIES: Final = (builder_image.IMAGE_REPO, nodebuild.IMAGE_REPO)


@dataclass(frozen=True)
class ImageFacts:
    """What the engine says of one image."""

    id: str
    tags: tuple[str, ...]
    size: int
    tagged: float  # epoch seconds of its last tagging (or its creation)


def image_entries(
    images: Iterable[ImageFacts],
    repositories: Sequence[str],
    current: set[str],
    in_use: set[str],
) -> list[Entry]:
    """One entry per tag of `repositories` that is not the current recipe's; an image a
    container uses is busy."""
    entries = []
    for image in images:
        for tag in image.tags:
            repository = tag.rpartition(":")[0]
            if repository not in repositories or tag in current:
                continue
            entries.append(
                Entry(
                    kind=KIND_PREFIX + repository,
                    name=tag,
                    size=image.size,
                    frees=image.size if len(image.tags) == 1 else 0,
                    last_used=image.tagged,
                    busy="a container uses it" if image.id in in_use else None,
                )
            )
    return entries


def current_tags(client: docker.DockerClient) -> set[str]:
    """The tags this checkout's recipes build: the builder's, and the node's on top of the
    current builder image (when that exists, no node image is current without it)."""
    tags = {builder_image.builder_tag()}
    try:
        builder_id = str(client.images.get(builder_image.builder_tag()).id)
    except docker.errors.ImageNotFound:
        return tags
    return tags | {nodebuild.node_image_tag(builder_id)}


def engine_entries(
    client: docker.DockerClient,
    repositories: Sequence[str] = OUR_REPOSITORIES,
    current: set[str] | None = None,
) -> list[Entry]:
    """The prunable image tags the engine holds now."""
    images = [_facts(image.attrs) for image in client.images.list()]
    used = {str(c.attrs.get("Image", "")) for c in client.containers.list(all=True)}
    return image_entries(
        images, repositories, current_tags(client) if current is None else current, used
    )


def prune_images(
    client: docker.DockerClient,
    rules: Rules,
    dry_run: bool = False,
    repositories: Sequence[str] = OUR_REPOSITORIES,
    current: set[str] | None = None,
) -> Pruned:
    """Remove the stale tags `choose` picks (without force: the engine keeps what a container
    or another image still needs, and such a tag is reported busy)."""
    decision = choose(
        engine_entries(client, repositories, current), rules, datetime.now().timestamp()
    )
    if dry_run:
        return Pruned(decision.remove, decision.busy)
    removed, busy = [], list(decision.busy)
    for entry, reason in decision.remove:
        try:
            client.images.remove(entry.name)
        except docker.errors.ImageNotFound:
            pass  # removed meanwhile
        except docker.errors.APIError as exc:
            busy.append(_with_busy(entry, exc.explanation or str(exc)))
            continue
        removed.append((entry, reason))
    return Pruned(tuple(removed), tuple(busy))


def _with_busy(entry: Entry, why: Any) -> Entry:
    return Entry(entry.kind, entry.name, entry.size, 0, entry.last_used, busy=str(why))


def _facts(attrs: Mapping[str, Any]) -> ImageFacts:
    stamp = str((attrs.get("Metadata") or {}).get("LastTagTime") or "")
    if stamp.startswith("0001-"):  # the engine's zero time: never tagged since it was made
        stamp = ""
    stamp = stamp or str(attrs.get("Created", ""))
    return ImageFacts(
        id=str(attrs["Id"]),
        tags=tuple(attrs.get("RepoTags") or ()),
        size=int(attrs.get("Size", 0)),
        tagged=_epoch(stamp),
    )


def _epoch(stamp: str) -> float:
    """Docker's RFC 3339 time (nanoseconds, `Z`) in epoch seconds; 0 when it has none."""
    head, _, fraction = stamp.rstrip("Z").partition(".")
    try:
        moment = datetime.fromisoformat(head + "+00:00")
    except ValueError:
        return 0.0
    return moment.timestamp() + float(f"0.{fraction or 0}"[:11])
