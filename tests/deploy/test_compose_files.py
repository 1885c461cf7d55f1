"""The docker-compose stack's files agree with each other and with the code (no Docker needed).

- the compose file has the services, health checks, restart policies and named volumes it promises;
- every ${VAR} it reads is documented in example.env, and example.env lists nothing unused;
- Grafana's provisioned data source and dashboard ask InfluxDB for the bucket variable, measurement,
  tags and fields that the InfluxDB store actually writes.
"""

from __future__ import annotations

import itertools
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
    one_shot = {name for name, service in services.items() if service.get("restart") == "no"}
    assert one_shot == {"mqtt-auth"}
    for name, service in services.items():
        if name in one_shot:  # runs to completion; what needs it waits for that
            needed = [s for s in services.values() if s.get("depends_on", {}).get(name)]
            assert needed and all(
                s["depends_on"][name] == {"condition": "service_completed_successfully"} for s in needed
            ), name
            continue
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
    """Every mounted file is in the repository, except ./pki, which `plantwire pki init` makes."""
    docs = (DEPLOY.parent / "docs" / "deploy.md").read_text()
    assert "plantwire pki init deploy/pki --hostname mosquitto" in docs
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source == "./pki" or source.startswith("./pki/"):
                continue
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


def test_mosquitto_requires_tls_passwords_acl_and_bound_client_ids(compose: dict[str, Any]) -> None:
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text().splitlines()
    for line in (
        "listener 8883",
        "allow_anonymous false",
        "use_username_as_clientid true",
        "max_queued_messages 0",
    ):
        assert line in conf, line
    for key in ("cafile", "certfile", "keyfile", "password_file", "acl_file"):
        assert any(line.startswith(f"{key} /mosquitto/data/secrets/") for line in conf), key
    assert not any(line.startswith("listener 1883") for line in conf)  # no plain-text listener
    script = (DEPLOY / "mosquitto" / "entrypoint.sh").read_text()
    for name in ("passwd", "acl", "ca.crt", "server.crt", "server.key"):
        assert name in script, name
    # mqtt-auth writes an identity for each service account, with the password from its variable.
    values = example_env()

    def fill(text: str) -> str:
        return _VAR.sub(lambda m: values[m.group(1)], str(text))

    auth = compose["services"]["mqtt-auth"]
    command = [fill(part) for part in auth["command"]]
    specs = dict(itertools.pairwise(command))
    for client, flag in (("platform", "--platform"), ("gateway", "--gateway")):
        env = {k: fill(v) for k, v in compose["services"][client]["environment"].items()}
        user, password_var = specs[flag].split(":")[:2]
        assert user == env["PLANTWIRE_MQTT__USERNAME"], client
        assert fill(auth["environment"][password_var]) == env["PLANTWIRE_MQTT__PASSWORD"], client
        assert env["PLANTWIRE_MQTT__PORT"] == "8883" and env["PLANTWIRE_MQTT__TLS_CA_FILE"] == "/pki/ca.crt"
        assert f'"{user}-cmd"' in env["PLANTWIRE_MQTT__CLIENT_USERNAMES"], client
    gateway = [fill(part) for part in compose["services"]["gateway"]["command"]]
    assert specs["--gateway"].split(":", 2)[2] == gateway[gateway.index("--id") + 1]


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
