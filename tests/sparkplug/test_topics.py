"""The Sparkplug topic namespace and STATE payloads."""

from __future__ import annotations

import pytest

from plantwire.sparkplug.edge import EdgeNode
from plantwire.sparkplug.topics import (
    HostState,
    SparkplugTopic,
    StateTopic,
    TopicError,
    decode_state,
    device_topic,
    encode_state,
    legacy_state_topic,
    node_topic,
    parse_topic,
    state_topic,
)


def test_tck_id_topic_structure_namespace_and_message_types() -> None:
    assert node_topic("g", "NBIRTH", "e") == "spBv1.0/g/NBIRTH/e"
    assert device_topic("g", "DDATA", "e", "d") == "spBv1.0/g/DDATA/e/d"
    assert state_topic("h") == "spBv1.0/STATE/h" and legacy_state_topic("h") == "STATE/h"
    assert parse_topic("spBv1.0/g/DCMD/e/d") == SparkplugTopic("g", "DCMD", "e", "d")
    assert parse_topic("spBv1.0/g/NDEATH/e") == SparkplugTopic("g", "NDEATH", "e")
    assert parse_topic("spBv1.0/STATE/h") == StateTopic("h")
    assert parse_topic("STATE/h") == StateTopic("h", legacy=True)


@pytest.mark.parametrize(
    "topic",
    [
        "spBv1.0/g/DDATA/e",  # tck-id-topic-structure-namespace-device-id-associated-message-types
        "spBv1.0/g/NDATA/e/d",  # ...-device-id-non-associated-message-types
        "spBv1.0/g/XDATA/e",
        "spAv1.0/g/NDATA/e",
        "spBv1.0/g/NDATA",
        "spBv1.0//NDATA/e",
    ],
)
def test_tck_id_topic_structure_bad_topics_are_refused(topic: str) -> None:
    with pytest.raises(TopicError):
        parse_topic(topic)


@pytest.mark.parametrize("bad", ["a+b", "a#", "", "a/b"])
def test_tck_id_topic_structure_namespace_valid_ids(bad: str) -> None:
    with pytest.raises(TopicError):
        EdgeNode("g", bad)
    with pytest.raises(TopicError):
        EdgeNode(bad, "e")
    with pytest.raises(TopicError):
        state_topic(bad)


def test_node_and_device_type_checks() -> None:
    with pytest.raises(TopicError):
        node_topic("g", "DDATA", "e")
    with pytest.raises(TopicError):
        device_topic("g", "NDATA", "e", "d")


def test_tck_id_message_flow_edge_node_ncmd_and_device_dcmd_subscribe() -> None:
    assert EdgeNode("g", "e").subscriptions() == ["spBv1.0/g/NCMD/e", "spBv1.0/g/DCMD/e/+"]


def test_state_payloads() -> None:
    assert decode_state(encode_state(True, 5)) == HostState(True, 5)
    assert decode_state(b"OFFLINE", legacy=True) == HostState(False, None)
    for bad in (b"{", b'{"online": "yes", "timestamp": 1}', b'{"online": true}', b"[]"):
        with pytest.raises(TopicError):
            decode_state(bad)
    with pytest.raises(TopicError):
        decode_state(b"MAYBE", legacy=True)
