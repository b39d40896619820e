"""The release journal: durable lines on disk, torn tails repaired, replay, and no secrets."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from invoke.collection import Collection
from invoke.program import Program

from pipeline.cli import release as release_cli
from pipeline.errors import PipelineError
from pipeline.ledger import (
    SCHEMA,
    UNKNOWN_OUTCOME,
    Ledger,
    StageFailure,
    archive_releases,
    find_secret,
    list_releases,
    open_ledger,
    read_records,
    replay,
)

RELEASE = {"artifact": "0x" + "ab" * 32, "environment": "local", "ref": "v1.2.0"}
MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank yellow"


def new_ledger(state_dir: Path, release_id: str = "r1") -> Ledger:
    return open_ledger(state_dir, release_id, create=RELEASE)


def ledger_path(state_dir: Path, release_id: str = "r1") -> Path:
    return state_dir / "releases" / release_id / "ledger.jsonl"


def lines(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return [json.loads(line) for line in data.splitlines()]


def write_some(ledger: Ledger) -> str:
    ledger.stage_started("build")
    ledger.stage_done("build", {"artifact": RELEASE["artifact"]})
    ledger.stage_started("deploy-reckless")
    intent = ledger.intent(
        stage="deploy-reckless",
        network="staging-reckless",
        signer="5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
        nonce=7,
        call_hash="0x" + "cd" * 32,
        call="Sudo.sudo(System.set_code)",
    )
    ledger.submitted(intent, "0x" + "ef" * 32)
    return intent


def test_unresolved_nonces_are_those_of_the_same_call_without_an_outcome(tmp_path: Path) -> None:
    signer, call_hash = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY", "0x" + "cd" * 32
    with new_ledger(tmp_path) as ledger:
        settled = write_some(ledger)  # nonce 7
        ledger.result(settled, success=False, block_hash=None, block_number=None, error="x")
        write_some(ledger)  # nonce 7 again, outcome unknown
        ledger.intent(  # another call of the same signer
            stage="s",
            network="staging-reckless",
            signer=signer,
            nonce=8,
            call_hash="0x01",
            call="c",
        )
        same = {"network": "staging-reckless", "signer": signer, "call_hash": call_hash}
        assert ledger.unresolved_nonces(**same) == [7]
        assert ledger.unresolved_nonces(**{**same, "network": "production"}) == []


def test_new_ledger_starts_with_a_schema_versioned_release_record(tmp_path: Path) -> None:
    with new_ledger(tmp_path) as ledger:
        assert ledger.release_id == "r1"
    path = ledger_path(tmp_path)
    (first,) = lines(path)
    assert first["schema"] == SCHEMA == 1 and first["type"] == "release"
    assert first["release"] == "r1" and first["created"]
    assert {k: first[k] for k in RELEASE} == RELEASE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_records_are_one_json_line_each_and_survive_reopening(tmp_path: Path) -> None:
    with new_ledger(tmp_path) as ledger:
        intent = write_some(ledger)
        ledger.result(
            intent,
            success=True,
            block_hash="0x" + "01" * 32,
            block_number=12,
            events=[{"event": "System.CodeUpdated"}],
        )
        written = ledger.records
    on_disk = lines(ledger_path(tmp_path))
    assert on_disk == written
    assert [r["type"] for r in on_disk] == [
        "release",
        "stage_started",
        "stage_done",
        "stage_started",
        "intent",
        "submitted",
        "result",
    ]
    assert all("at" in r for r in on_disk[1:])
    with open_ledger(tmp_path, "r1") as again:
        assert again.records == written and again.repaired is None
        state = again.state
    assert state.done == {"build": {"artifact": RELEASE["artifact"]}}
    assert state.running == "deploy-reckless"
    assert state.intents[intent].extrinsic_hash == "0x" + "ef" * 32
    result = state.intents[intent].result
    assert result is not None and result["block_number"] == 12
    assert state.unresolved == [] and state.warnings() == []


def test_intent_without_result_is_an_unknown_outcome(tmp_path: Path) -> None:
    with new_ledger(tmp_path) as ledger:
        intent = write_some(ledger)
    with open_ledger(tmp_path, "r1") as ledger:
        state = ledger.state
    assert [i.id for i in state.unresolved] == [intent] == ["intent-1"]
    (warning,) = state.warnings()
    assert warning.endswith(f"nonce 7, call 0x{'cd' * 32}): {UNKNOWN_OUTCOME}")
    assert "staging-reckless" in warning and "5Grwva" in warning


def rec(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, **fields}


def intent_rec(intent_id: str) -> dict[str, Any]:
    return rec(
        "intent",
        id=intent_id,
        stage="s",
        network="n",
        signer="5x",
        nonce=0,
        call_hash="0x00",
        call="c",
    )


HEAD = rec("release", schema=1, release="r")

REPLAY = [
    ("nothing yet", [], {}, None, None, []),
    ("started", [rec("stage_started", stage="a")], {}, "a", None, []),
    (
        "done keeps latest result in completion order",
        [
            rec("stage_done", stage="a", result={"n": 1}),
            rec("stage_done", stage="b", result={}),
            rec("stage_done", stage="a", result={"n": 2}),
        ],
        {"b": {}, "a": {"n": 2}},
        None,
        None,
        [],
    ),
    (
        "failure then success of the same stage clears it",
        [
            rec("stage_started", stage="a"),
            rec("stage_failed", stage="a", error="boom"),
            rec("stage_started", stage="a"),
            rec("stage_done", stage="a", result={}),
        ],
        {"a": {}},
        None,
        None,
        [],
    ),
    (
        "failure stays when another stage completes",
        [rec("stage_failed", stage="a", error="boom"), rec("stage_done", stage="b", result={})],
        {"b": {}},
        None,
        StageFailure("a", "boom", None),
        [],
    ),
    (
        "rerun that fails keeps the earlier result",
        [
            rec("stage_done", stage="a", result={"n": 1}),
            rec("stage_started", stage="a"),
            rec("stage_failed", stage="a", error="again", at="t"),
        ],
        {"a": {"n": 1}},
        None,
        StageFailure("a", "again", "t"),
        [],
    ),
    (
        "submitted but no result",
        [
            intent_rec("i1"),
            rec("submitted", intent="i1", extrinsic_hash="0x1"),
            intent_rec("i2"),
            rec("result", intent="i2", success=False),
        ],
        {},
        None,
        None,
        ["i1"],
    ),
]


@pytest.mark.parametrize(
    ("records", "done", "running", "failure", "unresolved"),
    [c[1:] for c in REPLAY],
    ids=[c[0] for c in REPLAY],
)
def test_replay(
    records: list[dict[str, Any]],
    done: dict[str, Any],
    running: str | None,
    failure: StageFailure | None,
    unresolved: list[str],
) -> None:
    state = replay([HEAD, *records])
    assert state.release == HEAD
    assert state.done == done and list(state.done) == list(done)
    assert state.running == running
    assert state.last_failure == failure
    assert [i.id for i in state.unresolved] == unresolved


BROKEN = [
    (
        "result for unknown intent",
        [rec("result", intent="i9", success=True)],
        "line 2: result for unknown intent i9",
    ),
    (
        "submitted for unknown intent",
        [rec("submitted", intent="i9", extrinsic_hash="0x")],
        "line 2: submitted for unknown intent i9",
    ),
    (
        "second result",
        [intent_rec("i1"), rec("result", intent="i1"), rec("result", intent="i1")],
        "line 4: result after the result of i1",
    ),
    ("intent twice", [intent_rec("i1"), intent_rec("i1")], "line 3: intent i1 recorded twice"),
    ("intent lacking a field", [rec("intent", id="i1")], "line 2: intent record lacks 'stage'"),
    (
        "stage record lacking stage",
        [rec("stage_done", result={})],
        "line 2: stage_done record lacks 'stage'",
    ),
    ("unknown type", [rec("vote")], "line 2: unknown record type 'vote'"),
]


@pytest.mark.parametrize(
    ("records", "message"), [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN]
)
def test_replay_refuses_inconsistent_records(records: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(PipelineError, match=f"^ledger {message}: the journal contradicts itself"):
        replay([HEAD, *records])


def test_replay_needs_a_release_record_first() -> None:
    with pytest.raises(PipelineError, match="does not start with a release record"):
        replay([rec("stage_started", stage="a")])


@pytest.mark.parametrize(
    "tail",
    [
        b'{"type":"stage_done","stage":"dep',  # cut mid-record
        b'{"type":"stage_started","stage":"x"}',  # whole JSON, but the newline never made it
        b"\x00\x00\x00\x00\n",  # zero-filled block after a crash
        b'{"type":"stage_do\n',
    ],
)
def test_torn_last_record_is_reported_and_truncated(tmp_path: Path, tail: bytes) -> None:
    with new_ledger(tmp_path) as ledger:
        write_some(ledger)
        records = ledger.records
    path = ledger_path(tmp_path)
    intact = path.read_bytes()
    with path.open("ab") as handle:
        handle.write(tail)
    seen, note = read_records(tmp_path, "r1")  # a status view reports but does not repair
    assert seen == records and note is not None
    assert path.read_bytes() == intact + tail
    with open_ledger(tmp_path, "r1") as ledger:
        assert ledger.records == records
        assert ledger.repaired == (
            f"ledger {path}: dropped an incomplete last record at line {len(records) + 1} "
            f"({len(tail)} bytes) left by an interrupted write"
        )
        assert path.read_bytes() == intact
        ledger.stage_done("deploy-reckless", {"ok": True})
    assert len(lines(path)) == len(records) + 1


def test_damage_before_the_last_line_is_refused_naming_the_line(tmp_path: Path) -> None:
    with new_ledger(tmp_path) as ledger:
        write_some(ledger)
    path = ledger_path(tmp_path)
    content = path.read_bytes().split(b"\n")
    content[2] = content[2][:-5]
    path.write_bytes(b"\n".join(content))
    before = path.read_bytes()
    with pytest.raises(PipelineError, match=r"ledger .* is damaged at line 3: restore it"):
        open_ledger(tmp_path, "r1")
    with pytest.raises(PipelineError, match="damaged at line 3"):
        read_records(tmp_path, "r1")
    assert path.read_bytes() == before


def test_damaged_last_line_followed_by_a_torn_tail_is_damage(tmp_path: Path) -> None:
    new_ledger(tmp_path).close()
    with ledger_path(tmp_path).open("ab") as handle:
        handle.write(b'garbage\n{"type":')
    with pytest.raises(PipelineError, match="damaged at line 2"):
        open_ledger(tmp_path, "r1")


def test_contradictory_file_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    new_ledger(tmp_path).close()
    path = ledger_path(tmp_path)
    with path.open("a") as handle:
        handle.write(json.dumps(rec("result", intent="intent-1", success=True)) + "\n")
    with pytest.raises(PipelineError) as info:
        open_ledger(tmp_path, "r1")
    assert str(info.value).startswith(f"{path} line 2: result for unknown intent intent-1: ")


def test_future_schema_is_refused(tmp_path: Path) -> None:
    path = ledger_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"schema": 2, "type": "release"}) + "\n")
    with pytest.raises(PipelineError, match="has schema 2; this pipeline reads schema 1"):
        open_ledger(tmp_path, "r1")


def test_interrupted_creation_is_finished_by_the_next_create(tmp_path: Path) -> None:
    path = ledger_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"schema":1,"ty')
    with pytest.raises(PipelineError, match=r"no complete release record \(its creation was"):
        open_ledger(tmp_path, "r1")
    assert path.read_bytes() == b""  # the torn first record was dropped all the same
    with new_ledger(tmp_path) as ledger:
        assert ledger.records[0]["type"] == "release" and ledger.repaired is None
    assert len(lines(path)) == 1


def test_create_is_a_resume_when_the_fields_match(tmp_path: Path) -> None:
    with new_ledger(tmp_path) as ledger:
        ledger.stage_started("build")
    with new_ledger(tmp_path) as ledger:
        assert len(ledger.records) == 2
    with pytest.raises(PipelineError, match=r"created with environment='local', not 'live'"):
        open_ledger(tmp_path, "r1", create={**RELEASE, "environment": "live"})


def test_release_fields_the_ledger_owns_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="schema, type are set by the ledger"):
        open_ledger(tmp_path, "r1", create={"schema": 9, "type": "x"})
    assert list_releases(tmp_path) == []


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    with new_ledger(tmp_path):
        with pytest.raises(PipelineError, match="is open in another process"):
            open_ledger(tmp_path, "r1")
        assert read_records(tmp_path, "r1")[0][0]["type"] == "release"  # readers are welcome
    open_ledger(tmp_path, "r1").close()


def test_closed_ledger_refuses_appends(tmp_path: Path) -> None:
    ledger = new_ledger(tmp_path)
    ledger.close()
    with pytest.raises(PipelineError, match="is closed"):
        ledger.stage_started("build")


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (rec("release"), "'release' cannot be appended"),
        (rec("vote"), "'vote' cannot be appended"),
        (rec("result", intent="intent-9", success=True), "result for unknown intent"),
        (rec("stage_done", stage="a", result={"blob": b"\x00"}), "not plain JSON"),
        (rec("stage_done", stage="a", result={"x": float("nan")}), "not plain JSON"),
    ],
)
def test_invalid_appends_write_nothing(
    tmp_path: Path, record: dict[str, Any], message: str
) -> None:
    with new_ledger(tmp_path) as ledger:
        before = ledger_path(tmp_path).read_bytes()
        with pytest.raises(PipelineError, match=message):
            ledger.append(record)
        assert ledger_path(tmp_path).read_bytes() == before and len(ledger.records) == 1


SECRETS = [
    ({"seed": "0x" + "11" * 32}, "record.seed"),
    ({"result": {"signer": {"private_key": "abc"}}}, "record.result.signer.private_key"),
    ({"Mnemonic": "x"}, "record.Mnemonic"),
    ({"sudo-suri": "x"}, "record.sudo-suri"),
    ({"key_uri": "//Alice"}, "record.key_uri"),
    ({"secretPhrase": 1}, "record.secretPhrase"),
    ({"sudoSURI": "x"}, "record.sudoSURI"),
    ({"signer": "//Alice"}, "record.signer"),
    ({"events": ["ok", {"data": "bottom //Bob"}]}, "record.events[1].data"),
    ({"error": MNEMONIC}, "record.error"),
    ({"error": f"could not sign with {MNEMONIC}//hard: bad"}, "record.error"),
    ({"note": " ".join(["abandon"] * 23 + ["art"])}, "record.note"),
]


@pytest.mark.parametrize(("record", "path"), SECRETS, ids=[s[1] for s in SECRETS])
def test_secret_looking_records_are_refused_without_quoting_them(
    tmp_path: Path, record: dict[str, Any], path: str
) -> None:
    assert find_secret(record) == path
    with new_ledger(tmp_path) as ledger:
        before = ledger_path(tmp_path).read_bytes()
        with pytest.raises(PipelineError) as info:
            ledger.stage_done("deploy", record)
        message = str(info.value)
        assert message.startswith(f"refusing to write {path.replace('record', 'record.result', 1)}")
        for value in _strings(record):
            assert value not in message
        assert ledger_path(tmp_path).read_bytes() == before


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return [value] if isinstance(value, str) and len(value) > 3 else []


@pytest.mark.parametrize(
    "record",
    [
        {"call": "Sudo.sudo(System.set_code(0xabcdef…))", "call_hash": "0x" + "cd" * 32},
        {"endpoint": "ws://127.0.0.1:9944", "url": "wss://rpc.example.com/path"},
        {
            "signer": "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
            "public_key": "0x" + "d4" * 32,
        },
        {"seed": None, "private": ""},  # empty secret fields carry nothing
        {"error": "the motion for the upgrade of the runtime was not approved by the council"},
        {"summary": "bump spec version to fourteen because staging found three more issues today"},
        {"events": [{"module": "System", "event": "CodeUpdated", "attributes": None}]},
    ],
)
def test_public_data_is_not_mistaken_for_secrets(tmp_path: Path, record: dict[str, Any]) -> None:
    assert find_secret(record) is None
    with new_ledger(tmp_path) as ledger:
        ledger.stage_done("deploy", record)
    assert lines(ledger_path(tmp_path))[-1]["result"] == record


def test_secret_in_release_fields_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"release\.sudo_seed looks like a secret"):
        open_ledger(tmp_path, "r1", create={"sudo_seed": "0x00"})


def test_list_and_open_releases(tmp_path: Path) -> None:
    assert list_releases(tmp_path) == []
    for release_id in ("r2", "r10", "r1"):
        new_ledger(tmp_path, release_id).close()
    (tmp_path / "releases" / "stray").mkdir()
    assert list_releases(tmp_path) == ["r1", "r10", "r2"]
    with pytest.raises(PipelineError, match=r"no release r3 in .*: known releases: r1, r10, r2"):
        open_ledger(tmp_path, "r3")
    with pytest.raises(PipelineError, match="no release r3"):
        read_records(tmp_path, "r3")


@pytest.mark.parametrize("release_id", ["../escape", "a/b", "", ".hidden"])
def test_release_ids_are_plain_names(tmp_path: Path, release_id: str) -> None:
    with pytest.raises(PipelineError, match="is not a plain name"):
        open_ledger(tmp_path, release_id, create=RELEASE)


@pytest.mark.parametrize("content", [b"", b'{"schema":1,"ty'], ids=["empty", "torn-first-line"])
def test_a_ledger_without_its_release_record_names_the_file_and_the_fix(
    tmp_path: Path, content: bytes
) -> None:
    path = ledger_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    expected = (
        f"ledger {path} has no complete release record (its creation was interrupted): "
        f"run `invoke release` again to write it, or remove {path.parent}"
    )
    with pytest.raises(PipelineError) as viewed:
        read_records(tmp_path, "r1")  # what release.status, resume and plan.check read
    assert str(viewed.value) == expected
    with pytest.raises(PipelineError) as opened:
        open_ledger(tmp_path, "r1")  # what release.abort opens
    assert str(opened.value) == expected


@pytest.mark.parametrize(
    "reason",
    [
        "pasted by mistake 0x" + "9f" * 32,
        "0x" + "AB" * 32,
        "seed=0x" + "12" * 32 + ".",
        "wrong build " + MNEMONIC,
        "//Alice was the wrong key",
    ],
)
def test_an_abort_reason_holding_a_secret_is_refused(tmp_path: Path, reason: str) -> None:
    with new_ledger(tmp_path) as ledger:
        before = ledger_path(tmp_path).read_bytes()
        with pytest.raises(PipelineError) as refused:
            ledger.aborted(reason)
    assert str(refused.value).startswith("refusing to write ")
    assert "looks like a secret" in str(refused.value)
    assert reason not in str(refused.value)
    assert ledger_path(tmp_path).read_bytes() == before


@pytest.mark.parametrize(
    "reason", ["bad build 0x" + "9f" * 8 + "…", "hash 0x" + "9f" * 33 + " is too long to be a seed"]
)
def test_an_abort_reason_quoting_a_short_hash_is_kept(tmp_path: Path, reason: str) -> None:
    with new_ledger(tmp_path) as ledger:
        ledger.aborted(reason)
    assert lines(ledger_path(tmp_path))[-1]["reason"] == reason


def test_release_status_json_carries_the_torn_last_line_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fields = {"candidate": "HEAD", "env": "local", "policy": "no-nays", "plan": None}
    with open_ledger(tmp_path, "r1", create={**fields, "votes": "approve"}) as ledger:
        ledger.stage_started("build")
    with ledger_path(tmp_path).open("ab") as torn:
        torn.write(b'{"type":"stage_do')
    monkeypatch.setenv("PIPELINE_STATE_DIR", str(tmp_path))
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    Program(namespace=Collection.from_module(release_cli, name="release")).run(
        ["invoke", "status", "--id", "r1", "--json"], exit=False
    )
    warnings = json.loads(capsys.readouterr().out)["warnings"]
    assert warnings == [
        f"ledger {ledger_path(tmp_path)}: dropped an incomplete last record at line 3 "
        "(17 bytes) left by an interrupted write"
    ]


def test_archiving_moves_only_the_environments_releases(tmp_path: Path) -> None:
    for release_id, env in (("on-local", "local"), ("on-live", "live"), ("again", "local")):
        open_ledger(tmp_path, release_id, create={**RELEASE, "env": env}).close()
    held = open_ledger(tmp_path, "on-live")
    try:
        moved = archive_releases(tmp_path, "local")  # a running release elsewhere is no obstacle
    finally:
        held.close()
    assert sorted(path.name for path in moved) == ["again", "on-local"]
    assert list_releases(tmp_path) == ["on-live"]
    for path in moved:
        assert path.parent.parent == tmp_path / "archive"
        assert (path / "ledger.jsonl").is_file()
    assert archive_releases(tmp_path, "local") == []


def test_archiving_refuses_a_release_that_is_running(tmp_path: Path) -> None:
    open_ledger(tmp_path, "r1", create={**RELEASE, "env": "local"}).close()
    with open_ledger(tmp_path, "r1"), pytest.raises(PipelineError, match="is open in another"):
        archive_releases(tmp_path, "local")
    assert list_releases(tmp_path) == ["r1"]
