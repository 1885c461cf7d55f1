"""The docker-compose stack's files agree with each other and with the code (no Docker needed).

- the compose file has the services, health checks, restart policies and named volumes it promises;
- every ${VAR} it reads is documented in example.env, and example.env lists nothing unused;
- Grafana's provisioned data source and dashboard ask InfluxDB for the bucket variable, measurement,
  tags and fields that the InfluxDB store actually writes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from plantwire_platform.store.influx.store import (
    FIELDS,
    MEASUREMENT,
    TAG_DEVICE,
    TAG_GATEWAY,
    TAG_TAG,
    InfluxSettings,
)

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
OURS = ("platform", "gateway", "sim-cnc", "sim-pump", "sim-meter")
_VAR = re.compile(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)(?:[:?\-][^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def example_env() -> dict[str, str]:
    out = {}
    for raw in (DEPLOY / "example.env").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"example.env line {raw!r} is not NAME=value"
            out[name] = value
    return out


def test_services_have_health_checks_restart_policies_and_named_volumes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) >= {"mosquitto", "influxdb", "grafana", *OURS}
    for name, service in services.items():
        assert service.get("restart") == "unless-stopped", name
        assert "test" in service.get("healthcheck", {}), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith("./") or source in compose["volumes"], (name, volume)
    for name in OURS:
        assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile"
        assert services[name]["image"] == "plantwire:local"
    assert (DEPLOY / "Dockerfile").read_text().count('ENTRYPOINT ["plantwire"]') == 1


def test_services_wait_for_what_they_need(compose: dict[str, Any]) -> None:
    services = compose["services"]
    healthy = {"condition": "service_healthy"}
    assert services["platform"]["depends_on"] == {"mosquitto": healthy, "influxdb": healthy}
    gateway_needs = services["gateway"]["depends_on"]
    assert gateway_needs["mosquitto"] == healthy
    assert all(gateway_needs[s] == healthy for s in OURS if s.startswith("sim-"))


def test_mounted_config_files_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), (name, source)


def test_every_variable_is_in_example_env_and_every_example_is_used() -> None:
    text = (DEPLOY / "docker-compose.yml").read_text()
    used = set(_VAR.findall(text))
    documented = example_env()
    assert used == set(documented), {
        "used but not in example.env": sorted(used - set(documented)),
        "in example.env but unused": sorted(set(documented) - used),
    }
    env_text = (DEPLOY / "example.env").read_text()
    for name in documented:
        # Each variable has a comment above it or above its group.
        assert re.search(rf"#[^\n]*\n(?:[A-Z_]+=[^\n]*\n)*{name}=", env_text), name


def test_platform_environment_matches_the_influx_settings(compose: dict[str, Any]) -> None:
    env = compose["services"]["platform"]["environment"]
    prefix = "PLANTWIRE_STORE__INFLUXDB__"
    given = {k.removeprefix(prefix).lower() for k in env if k.startswith(prefix)}
    assert given <= set(InfluxSettings.model_fields), given - set(InfluxSettings.model_fields)
    assert {"url", "org", "bucket", "token"} <= given
    assert env["PLANTWIRE_STORE__BACKEND"] == "influxdb"
    influx = compose["services"]["influxdb"]["environment"]
    # The platform writes to the bucket and org InfluxDB was initialised with, using its token.
    assert env[prefix + "BUCKET"] == influx["DOCKER_INFLUXDB_INIT_BUCKET"]
    assert env[prefix + "ORG"] == influx["DOCKER_INFLUXDB_INIT_ORG"]
    assert env[prefix + "TOKEN"] == influx["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"]


def test_mosquitto_requires_passwords_and_keeps_zero_loss_queues(compose: dict[str, Any]) -> None:
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text().splitlines()
    assert "allow_anonymous false" in conf
    assert any(line.startswith("password_file ") for line in conf)
    assert "max_queued_messages 0" in conf
    script = (DEPLOY / "mosquitto" / "entrypoint.sh").read_text()
    broker_env = compose["services"]["mosquitto"]["environment"]
    for name in broker_env:
        assert f'"${name}"' in script, name
    for client in ("platform", "gateway"):
        env = compose["services"][client]["environment"]
        user = env["PLANTWIRE_MQTT__USERNAME"]
        assert user in broker_env.values(), client


# --- Grafana ------------------------------------------------------------------------------------------


def dashboard_queries() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "plantwire-plant.json").read_text())
    queries = [t["query"] for p in dashboard["panels"] for t in p["targets"]]
    assert queries, "the dashboard has no panels with queries"
    return queries


def test_dashboard_queries_read_what_the_influx_store_writes() -> None:
    for query in dashboard_queries():
        assert 'from(bucket: "${bucket}")' in query, query
        assert f'r._measurement == "{MEASUREMENT}"' in query, query
        fields = re.findall(r'r\._field == "([^"]+)"', query)
        assert fields and set(fields) <= set(FIELDS), (fields, query)
        for tag in re.findall(r"\br\.([a-z_]+)\b", query):
            assert tag in {"_measurement", "_field", "_value", TAG_DEVICE, TAG_GATEWAY, TAG_TAG}, tag


def test_dashboard_variables_and_datasource() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "plantwire-plant.json").read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(variables) == {"bucket", "device"}
    assert f'tag: "{TAG_DEVICE}"' in variables["device"]["query"]
    assert f'r._measurement == "{MEASUREMENT}"' in variables["device"]["query"]
    source = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "influxdb.yml").read_text()
    )
    (ds,) = source["datasources"]
    uids = {p["datasource"]["uid"] for p in dashboard["panels"]}
    assert uids == {ds["uid"]}
    assert ds["jsonData"]["version"] == "Flux"
    assert ds["secureJsonData"]["token"] == "${INFLUXDB_TOKEN}"
    grafana_env = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]["grafana"]
    assert {"INFLUXDB_TOKEN", "INFLUXDB_ORG", "INFLUXDB_BUCKET"} <= set(grafana_env["environment"])
