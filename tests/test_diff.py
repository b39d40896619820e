"""Runtime diff: the pure comparison (table-driven), type shapes, artifact naming, real runtimes."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import git
import pytest
from fixtures.runtime_wasm import TYPE_SECTION, module
from fixtures.runtimes import runtime_wasm
from invoke.context import Context
from invoke.exceptions import Exit

from pipeline import diff, runtime_info, store
from pipeline.artifact import RuntimeBlob
from pipeline.cli import deploy as cli
from pipeline.diff import Change, Entry, RuntimeSummary, diff_summaries
from pipeline.errors import PipelineError
from pipeline.project import Project

# --- the pure diff ------------------------------------------------------------------------------
BASE = RuntimeSummary(
    blake2_256="0x" + "aa" * 32,
    size=1000,
    versions={"spec_name": "example-runtime", "spec_version": 100, "transaction_version": 1},
    apis={"Core": 5, "Metadata": 2},
    extensions=("CheckSpecVersion", "CheckNonce"),
    pallets={"System": 0, "Notes": 8},
    items={
        "call": {"Notes.set_note": Entry("[0] set_note(text: BoundedVec<u8>)", "c1")},
        "event": {"Notes.NoteSet": Entry("[0] NoteSet(who: AccountId32)", "e1")},
        "storage": {"Notes.Notes": Entry("map[Blake2_128Concat](AccountId32) -> Vec<u8>", "s1")},
        "constant": {
            "Notes.MaxNoteLen": Entry("u32 = 256", "k1", "256"),
            "System.Version": Entry(
                "RuntimeVersion = {…}", "k3", '{"spec_name":"example-runtime","spec_version":100}'
            ),
        },
        "error": {},
    },
)


def with_items(kind: str, entries: dict[str, Entry]) -> RuntimeSummary:
    """BASE with some entries of one kind replaced."""
    return replace(BASE, items={**BASE.items, kind: {**BASE.items[kind], **entries}})


NOTES_V0 = BASE.items["storage"]["Notes.Notes"]
VERSION_101 = Entry(
    "RuntimeVersion = {…}", "k4", '{"spec_name":"example-runtime","spec_version":101}'
)
NOTE_V1 = Entry("map[Blake2_128Concat](AccountId32) -> Note<u32>", "s2")
CASES: list[tuple[str, RuntimeSummary, list[Change]]] = [
    ("identical", BASE, []),
    (
        "spec bump",
        replace(BASE, versions={**BASE.versions, "spec_version": 101}),
        [Change("version", "spec_version", "changed", "100", "101")],
    ),
    (
        "api added, changed and removed",
        replace(BASE, apis={"Core": 6, "GenesisBuilder": 1}),
        [
            Change("api", "Core", "changed", "v5", "v6"),
            Change("api", "Metadata", "removed", "v2", None),
            Change("api", "GenesisBuilder", "added", None, "v1"),
        ],
    ),
    (
        "extension added and reordered",
        replace(BASE, extensions=("CheckNonce", "CheckSpecVersion", "CheckMetadataHash")),
        [
            Change("extension", "CheckSpecVersion", "changed", "#0", "#1"),
            Change("extension", "CheckNonce", "changed", "#1", "#0"),
            Change("extension", "CheckMetadataHash", "added", None, "#2"),
        ],
    ),
    (
        "storage value type changes",
        with_items("storage", {"Notes.Notes": NOTE_V1}),
        [Change("storage", "Notes.Notes", "changed", NOTES_V0.signature, NOTE_V1.signature, True)],
    ),

    (
        "same signature, different layout",
        with_items("storage", {"Notes.Notes": replace(NOTES_V0, shape="s9")}),
        [
            Change(
                "storage", "Notes.Notes", "changed",
                "map[Blake2_128Concat](AccountId32) -> Vec<u8>",
                "map[Blake2_128Concat](AccountId32) -> Vec<u8> (layout changed)", True,
            )
        ],
    ),
    (
        "constant value changes",
        with_items("constant", {"Notes.MaxNoteLen": Entry("u32 = 512", "k2", "512")}),
        [Change("constant", "Notes.MaxNoteLen", "changed", "u32 = 256", "u32 = 512")],
    ),
    (
        "a struct constant shows only the fields that changed",
        with_items("constant", {"System.Version": VERSION_101}),
        [
            Change(
                "constant", "System.Version", "changed",
                'RuntimeVersion = {"spec_version":100}', 'RuntimeVersion = {"spec_version":101}',
            )
        ],
    ),
    (
        "call added, event removed",
        replace(
            BASE,
            items={
                **BASE.items,
                "call": {**BASE.items["call"], "Notes.clear_note": Entry("[1] clear_note()", "c2")},
                "event": {},
            },
        ),
        [
            Change("call", "Notes.clear_note", "added", None, "[1] clear_note()"),
            Change("event", "Notes.NoteSet", "removed", "[0] NoteSet(who: AccountId32)", None),
        ],
    ),
    (
        "a removed pallet is one change, not one per item",
        replace(
            BASE,
            pallets={"System": 0},
            items={
                kind: {n: e for n, e in entries.items() if not n.startswith("Notes.")}
                for kind, entries in BASE.items.items()
            },
        ),
        [Change("pallet", "Notes", "removed", "index 8", None)],
    ),
    (
        "a moved pallet changes every call's encoding",
        replace(BASE, pallets={"System": 0, "Notes": 9}),
        [Change("pallet", "Notes", "changed", "index 8", "index 9")],
    ),
]  # fmt: skip


@pytest.mark.parametrize(("after", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_diff_summaries(after: RuntimeSummary, expected: list[Change]) -> None:
    assert diff_summaries(BASE, after) == expected


def test_diff_is_symmetric_in_what_it_finds() -> None:
    after = with_items("storage", {"Notes.Notes": NOTE_V1})
    [forward], [backward] = diff_summaries(BASE, after), diff_summaries(after, BASE)
    assert (forward.before, forward.after) == (backward.after, backward.before)


def test_render_groups_changes_and_counts_them() -> None:
    before = replace(BASE, storage_versions={"System": 0, "Notes": 0})
    after = replace(
        with_items("storage", {"Notes.Notes": NOTE_V1}),
        versions={**BASE.versions, "spec_version": 101},
        storage_versions={"System": 0, "Notes": 1},
    )
    lines = diff.render("old.wasm", "new.wasm", before, after)
    assert lines[0].startswith("A: old.wasm: example-runtime 100, 0xaaaa")
    assert lines[2:] == [
        "versions",
        "  ~ spec_version: 100 => 101",
        "pallet Notes",
        "  ~ storage Notes: map[Blake2_128Concat](AccountId32) -> Vec<u8> => "
        "map[Blake2_128Concat](AccountId32) -> Note<u32>",
        "2 changes: 0 added, 0 removed, 2 changed",
        "verdicts",
        "  compatible: no (1 breaking changes)",
        "  transaction_version bump required: no (transaction_version 1 -> 1)",
        "  storage migration required: yes",
        "    Notes: storage version 0 -> 1 (bumped)",
        "  migration missing: no",
    ]
    assert diff.render("a", "b", BASE, BASE)[2:] == [
        "no differences",
        "verdicts",
        "  compatible: yes",
        "  transaction_version bump required: no (transaction_version 1 -> 1)",
        "  storage migration required: no",
        "  migration missing: no",
    ]


def test_summary_survives_json() -> None:
    again = RuntimeSummary.from_dict(json.loads(json.dumps(BASE.as_dict())))
    assert again == BASE


# --- type names and shapes ----------------------------------------------------------------------
def registry(note_fields: list[tuple[str, int]], first_id: int = 0) -> list[dict[str, Any]]:
    """u8, u32, Vec<u8>, a `Note` struct with the given fields, and a RuntimeCall enum; ids
    start at `first_id` so that equal types can sit at different ids."""
    i = first_id
    types = [
        {"id": i, "type": {"path": [], "params": [], "def": {"primitive": "u8"}}},
        {"id": i + 1, "type": {"path": [], "params": [], "def": {"primitive": "u32"}}},
        {"id": i + 2, "type": {"path": [], "params": [], "def": {"sequence": {"type": i}}}},
        {
            "id": i + 3,
            "type": {
                "path": ["pallet_notes", "Note"],
                "params": [{"name": "N", "type": i + 1}],
                "def": {
                    "composite": {"fields": [{"name": n, "type": i + t} for n, t in note_fields]}
                },
            },
        },
        {
            "id": i + 4,
            "type": {
                "path": ["example_runtime", "RuntimeCall"],
                "params": [],
                "def": {"variant": {"variants": [{"name": "System", "index": 0, "fields": []}]}},
            },
        },
        {"id": i + 5, "type": {"path": [], "params": [], "def": {"tuple": [i + 1, i + 3]}}},
    ]
    return types


V1 = [("text", 2), ("set_at", 1)]


def test_type_names_read_like_rust() -> None:
    types = diff._Types(registry(V1))
    assert [types.name(i) for i in range(6)] == [
        "u8", "u32", "Vec<u8>", "Note<u32>", "RuntimeCall", "(u32, Note<u32>)",
    ]  # fmt: skip


def test_shapes_follow_layout_not_ids() -> None:
    here, there = diff._Types(registry(V1)), diff._Types(registry(V1, first_id=40))
    assert [here.shape(i) for i in range(6)] == [there.shape(40 + i) for i in range(6)]


def test_a_field_change_inside_a_named_type_changes_every_shape_using_it() -> None:
    before = diff._Types(registry(V1))
    after = diff._Types(registry([("text", 2), ("set_at", 0)]))  # set_at: u32 -> u8
    assert before.name(5) == after.name(5)
    assert before.shape(5) != after.shape(5)
    assert before.shape(2) == after.shape(2)


def test_shapes_stop_at_the_depth_limit_and_at_outer_enums() -> None:
    types = diff._Types(registry(V1))
    assert types._layout(3, 0) == "named:pallet_notes::Note"
    assert types._layout(4, diff.SHAPE_DEPTH) == "named:example_runtime::RuntimeCall"


# --- naming artifacts ---------------------------------------------------------------------------
def make_project(root: Path) -> Project:
    return Project(root=root, runtime_path="runtime", runtime_package="example-runtime", suites={})


def publish(project: Project, blob: bytes, source_tree: str = "tree") -> Path:
    name = RuntimeBlob.from_bytes(blob).blake2_256[2:]
    folder = project.artifacts_dir / name
    folder.mkdir(parents=True)
    (folder / "example_runtime.compact.compressed.wasm").write_bytes(blob)
    (folder / "digest.json").write_text(json.dumps({"source_tree": source_tree}))
    return folder


def test_resolve_artifact_by_path_directory_and_hash(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    blob = runtime_wasm(100).read_bytes()
    folder = publish(project, blob)
    wasm = folder / "example_runtime.compact.compressed.wasm"
    assert store.resolve_artifact(project, str(wasm)) == wasm
    assert store.resolve_artifact(project, str(folder)) == wasm
    assert store.resolve_artifact(project, folder.name) == wasm
    assert store.resolve_artifact(project, "0x" + folder.name.upper()) == wasm


def test_unknown_hash_is_one_clear_line(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    with pytest.raises(PipelineError, match=r"unknown artifact 0xabab.*run `invoke build`") as err:
        store.resolve_artifact(project, "0x" + "ab" * 32)
    assert "\n" not in str(err.value)
    with pytest.raises(PipelineError, match="no artifact 'nonsense'"):
        store.resolve_artifact(project, "nonsense")


@pytest.mark.docker  # builds HEAD's runtime (spec 101)
def test_an_altered_artifact_is_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    folder = publish(project, runtime_wasm(100).read_bytes())
    (folder / "example_runtime.compact.compressed.wasm").write_bytes(runtime_wasm(101).read_bytes())
    with pytest.raises(PipelineError, match="was altered"):
        store.resolve_artifact(project, folder.name)


@pytest.mark.docker  # builds HEAD's runtime (spec 101)
def test_default_artifact_is_the_newest_build_of_head(tmp_path: Path) -> None:
    repo = git.Repo.init(tmp_path)
    (tmp_path / "runtime").mkdir()
    (tmp_path / "runtime" / "lib.rs").write_text("// runtime\n")
    repo.index.add(["runtime/lib.rs"])
    repo.index.commit("runtime")
    project = make_project(tmp_path)
    with pytest.raises(PipelineError, match=r"no artifact was built from HEAD .*invoke build"):
        store.resolve_artifact(project, None)
    tree = repo.head.commit.tree["runtime"].hexsha
    older = publish(project, runtime_wasm(100).read_bytes(), tree)
    newer = publish(project, runtime_wasm(101).read_bytes(), tree)
    publish(project, RuntimeBlob.load(runtime_wasm(101)).wasm, "another tree")  # newest
    past = time.time() - 60
    os.utime(older / "digest.json", (past, past))
    assert store.resolve_artifact(project, None).parent == newer


def test_no_commit_means_no_head_build(tmp_path: Path) -> None:
    git.Repo.init(tmp_path)
    with pytest.raises(PipelineError, match=r"no commit yet.*--artifact"):
        store.resolve_artifact(make_project(tmp_path), None)


# --- real runtimes ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cache() -> Iterator[Path]:
    """A private, initially empty summary cache for this module's real-runtime tests."""
    with (
        tempfile.TemporaryDirectory(prefix="diff-cache-") as tmp,
        pytest.MonkeyPatch.context() as mp,
    ):
        mp.setenv("PIPELINE_CACHE_DIR", tmp)
        yield Path(tmp)


def runtimes() -> list[diff.Runtime]:
    return [diff.Runtime(str(p), RuntimeBlob.load(p), p) for p in map(runtime_wasm, (100, 101))]


def test_100_to_101_shows_the_spec_bump_and_the_notes_migration(cache: Path) -> None:
    old, new = diff.summaries(runtimes())
    assert old.versions["spec_version"] == 100
    assert {"System", "Balances", "Sudo", "Council", "Notes"} <= set(old.pallets)
    assert old.items["storage"]["Notes.Notes"].signature.endswith("-> BoundedVec<u8> (optional)")
    changes = {(c.kind, c.name): c for c in diff_summaries(old, new)}
    assert changes[("version", "spec_version")] == Change(
        "version", "spec_version", "changed", "100", "101"
    )
    notes = changes[("storage", "Notes.Notes")]
    assert notes.change == "changed" and str(notes.after).endswith("-> Note (optional)")
    assert changes[("constant", "System.Version")].after == (
        'RuntimeVersion = {"spec_version":101}'
    )
    assert ("call", "System.set_code") not in changes
    assert diff_summaries(old, old) == []
    assert len(list(cache.glob("metadata/*.json"))) == 2


def test_a_warm_diff_takes_under_a_second(cache: Path) -> None:
    diff.summaries(runtimes())  # cached by the test above, or now
    started = time.monotonic()
    first, second = diff.summaries(runtimes())
    diff.render("a", "b", first, second)
    assert time.monotonic() - started < 1.0


@pytest.mark.docker  # builds HEAD's runtime (spec 101)
def test_the_cli_prints_the_diff_and_json(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pipeline.toml").write_text('[runtime]\npath = "r"\npackage = "example-runtime"\n')
    monkeypatch.chdir(tmp_path)
    a, b = str(runtime_wasm(100)), str(runtime_wasm(101))
    cli.diff(Context(), a, b)
    out = capsys.readouterr().out
    assert "~ spec_version: 100 => 101" in out and "~ storage Notes:" in out
    cli.diff(Context(), a, b, json_=True)
    report = json.loads(capsys.readouterr().out)
    assert report["a"]["versions"]["spec_version"] == 100
    bump = {"kind": "version", "name": "spec_version", "change": "changed"}
    assert {**bump, "before": "100", "after": "101", "layout_changed": False} in report["changes"]
    verdicts = report["verdicts"]
    assert verdicts["storage_migration_required"] is True
    assert verdicts["migrations"]["Notes"]["storage_version"] == [0, 1]
    assert verdicts["migrations"]["Notes"]["storage_version_bumped"] is True
    assert "  storage migration required: yes" in out and "Notes: storage version 0 -> 1" in out
    with pytest.raises(Exit) as exit_info:
        cli.diff(Context(), a, "0x" + "cd" * 32)
    assert exit_info.value.code == 1
    assert str(exit_info.value.message).startswith("error: unknown artifact 0xcdcd")


def test_a_wasm_that_is_no_runtime_is_named_as_inspect_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pipeline.toml").write_text('[runtime]\npath = "r"\npackage = "example-runtime"\n')
    monkeypatch.chdir(tmp_path)
    other = tmp_path / "other.wasm"
    other.write_bytes(module(TYPE_SECTION))
    with pytest.raises(PipelineError) as inspected:
        runtime_info.version_of(RuntimeBlob.load(other))  # what `invoke inspect` reads
    with pytest.raises(Exit) as refused:
        cli.diff(Context(), str(runtime_wasm(100)), str(other))
    assert refused.value.code == 1
    assert str(refused.value.message) == f"error: {other}: {inspected.value}"
