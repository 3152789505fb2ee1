"""topics/ as code: topic declarations and record JSON Schemas, checked against the shared samples.

The same samples (topics/samples/{valid,invalid}/<record-type>.<case>.json) are parsed by the
worker's Swift parsers in Tests/RankingTests/RecordSamplesTests.swift; together the two tests keep
the schemas and the code in agreement.
"""
import json
import os
import re

import pytest

jsonschema = pytest.importorskip("jsonschema", reason="install tools/requirements-deploy.txt")
from jsonschema import Draft202012Validator  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOPICS = os.path.join(ROOT, "topics")
SAMPLES = os.path.join(TOPICS, "samples")

# Record type (sample file prefix) -> schema file.
RECORD_SCHEMAS = {
    "user-activity": "schemas/user-activity.schema.json",
    "ranking-request": "schemas/ranking-request.schema.json",
    "ranking-response": "schemas/ranking-response.schema.json",
    "error-response": "schemas/error-response.schema.json",
    "user-state": "schemas/user-state.schema.json",
}
CONTRACT_TOPICS = {"user-activity", "ranking-requests", "ranking-responses", "ranking-dlq", "user-state"}


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def load_json_text(text):
    """Strict JSON: NaN/Infinity are rejected, like the worker's reader."""
    return json.loads(text, parse_constant=_reject_constant)


def load_file(path):
    with open(path, encoding="utf-8") as f:
        return load_json_text(f.read())


def validator(rel):
    schema = load_file(os.path.join(TOPICS, rel))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def samples(kind):
    out = []
    for name in sorted(os.listdir(os.path.join(SAMPLES, kind))):
        assert name.endswith(".json"), f"{kind}/{name}: samples are .json files"
        rtype = name.split(".", 1)[0]
        assert rtype in RECORD_SCHEMAS, f"{kind}/{name}: unknown record type {rtype!r}"
        out.append((rtype, name[: -len(".json")], os.path.join(SAMPLES, kind, name)))
    return out


def errors_of(rtype, path):
    """Schema errors of a sample; a sample that is not JSON counts as one error."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        doc = load_json_text(text)
    except ValueError as e:
        return [f"not JSON: {e}"]
    return [e.message for e in validator(RECORD_SCHEMAS[rtype]).iter_errors(doc)]


def topic_files():
    return sorted(n for n in os.listdir(TOPICS) if n.endswith(".json") and n != "topic.schema.json")


@pytest.mark.parametrize("rel", sorted(set(RECORD_SCHEMAS.values())) + ["topic.schema.json"])
def test_every_schema_is_a_valid_draft_2020_12_schema(rel):
    validator(rel)


@pytest.mark.parametrize("rtype,case,path", samples("valid"), ids=lambda v: v if isinstance(v, str) and "/" not in v else None)
def test_valid_sample_satisfies_its_schema(rtype, case, path):
    assert errors_of(rtype, path) == [], f"{case} should be valid"


@pytest.mark.parametrize("rtype,case,path", samples("invalid"), ids=lambda v: v if isinstance(v, str) and "/" not in v else None)
def test_invalid_sample_violates_its_schema(rtype, case, path):
    assert errors_of(rtype, path) != [], f"{case} should be rejected by {RECORD_SCHEMAS[rtype]}"


def test_every_record_type_has_valid_and_invalid_samples():
    for kind in ("valid", "invalid"):
        have = {rtype for rtype, _, _ in samples(kind)}
        assert have == set(RECORD_SCHEMAS), f"{kind} samples missing for {set(RECORD_SCHEMAS) - have}"


def test_reader_lenient_list_names_existing_invalid_samples():
    lenient = load_file(os.path.join(SAMPLES, "reader-lenient.json"))["accepted_by_reader"]
    invalid = {case for _, case, _ in samples("invalid")}
    for case, reason in lenient.items():
        assert case in invalid, f"reader-lenient.json names {case}, which is not an invalid sample"
        assert reason.strip(), f"reader-lenient.json: {case} needs a reason"


def test_topic_files_declare_exactly_the_contract_topics():
    names = set()
    topic_validator = validator("topic.schema.json")
    for fname in topic_files():
        doc = load_file(os.path.join(TOPICS, fname))
        errs = [e.message for e in topic_validator.iter_errors(doc)]
        assert errs == [], f"topics/{fname}: {errs}"
        assert fname == doc["name"] + ".json", f"topics/{fname} declares {doc['name']}"
        names.add(doc["name"])
    assert names == CONTRACT_TOPICS


def test_co_partitioned_topics_share_one_partition_count():
    groups = {}
    for fname in topic_files():
        doc = load_file(os.path.join(TOPICS, fname))
        if "co_partition_group" in doc:
            groups.setdefault(doc["co_partition_group"], {})[doc["name"]] = doc["partitions"]
    users = groups.get("users", {})
    assert set(users) == {"user-activity", "ranking-requests", "user-state"}, \
        "contract section 1: user-activity, ranking-requests and user-state are co-partitioned"
    assert len(set(users.values())) == 1, f"co-partitioned topics differ in partitions: {users}"


def test_user_state_is_compacted_and_the_others_are_not():
    for fname in topic_files():
        doc = load_file(os.path.join(TOPICS, fname))
        policy = doc["config"].get("cleanup.policy")
        if doc["name"] == "user-state":
            assert policy == "compact"
        else:
            assert policy == "delete", f"{doc['name']} should expire by retention"
        assert int(doc["config"]["max.message.bytes"]) >= 65536
        assert int(doc["config"].get("min.insync.replicas", "1")) <= doc["replication_factor"]


def test_dlq_takes_the_largest_input_record_with_its_headers():
    docs = {d["name"]: d for d in (load_file(os.path.join(TOPICS, f)) for f in topic_files())}
    biggest_input = max(int(docs[t]["config"]["max.message.bytes"]) for t in ("user-activity", "ranking-requests"))
    assert int(docs["ranking-dlq"]["config"]["max.message.bytes"]) >= biggest_input + 65536, \
        "a bad record goes to the DLQ unchanged plus headers: its limit must exceed the inputs'"


def test_value_schemas_named_by_topics_exist():
    for fname in topic_files():
        doc = load_file(os.path.join(TOPICS, fname))
        refs = doc.get("value_schema")
        refs = [] if refs is None else [refs] if isinstance(refs, str) else refs
        for ref in refs:
            assert os.path.isfile(os.path.join(TOPICS, ref)), f"topics/{fname}: {ref} does not exist"
            assert ref in RECORD_SCHEMAS.values()


def test_schema_action_enum_matches_the_contract_order():
    schema = load_file(os.path.join(TOPICS, "schemas/user-activity.schema.json"))
    assert schema["properties"]["action"]["enum"] == [
        "impression", "click", "like", "comment", "share", "dwell", "hide"]


def test_sample_names_are_record_type_dot_case():
    for kind in ("valid", "invalid"):
        for name in os.listdir(os.path.join(SAMPLES, kind)):
            assert re.fullmatch(r"[a-z-]+\.[A-Za-z0-9-]+\.json", name), f"{kind}/{name}"
