#!/usr/bin/env python3
"""Consistency checks of deploy/ against the code (run by scripts/check-deploy.sh).

- Every metric name the Grafana dashboard and the alert rules (and their promtool tests)
  use exists in crates/blyan-ops/src/catalog.rs; `_bucket`, `_sum` and `_count` only on
  histograms.
- The dashboard is well formed: unique panel ids, a query in every panel, the layout
  within Grafana's 24 columns, every query on the dashboard's data source variable.
- The Dockerfile builds with the toolchain of rust-toolchain.toml.
- With PyYAML: the YAML files parse; every BLYAN_<SECTION>__<KEY> variable that the
  Dockerfile, docker-compose.yml and devnet-init.sh set names a key of config/node.yaml;
  docker-compose.yml agrees with prometheus.yml (scrape targets are compose services on
  the image's metrics port), with the Grafana provisioning (data source URL, dashboard
  path) and with devnet-init.sh (addresses); files it mounts exist.

Exits 1 listing every problem found. Standard library only, plus PyYAML when available.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CATALOG = ROOT / "crates/blyan-ops/src/catalog.rs"
DASHBOARD = DEPLOY / "grafana/blyan-node.json"
ALERTS = DEPLOY / "prometheus/alerts.yml"
ALERT_TESTS = DEPLOY / "prometheus/alerts_test.yml"
PROMETHEUS = DEPLOY / "prometheus/prometheus.yml"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
DEVNET_INIT = DEPLOY / "devnet-init.sh"
NODE_CONFIG = ROOT / "config/node.yaml"
TOOLCHAIN = ROOT / "rust-toolchain.toml"
DATASOURCES = DEPLOY / "grafana/provisioning/datasources/prometheus.yml"
DASHBOARD_PROVIDERS = DEPLOY / "grafana/provisioning/dashboards/blyan.yml"

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
ENV_KEY = re.compile(r"\bBLYAN_([A-Z0-9]+)__([A-Z0-9_]+)\b")

problems: list[str] = []


def problem(message: str) -> None:
    problems.append(message)


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def catalog_metrics() -> dict[str, str]:
    """Metric name -> kind, from the `const ...: MetricDef = kind("name", ...)` items."""
    text = CATALOG.read_text()
    # Only the definitions: the test module names metrics that must *not* exist.
    text = text.split("#[cfg(test)]", 1)[0]
    found = dict(
        (name, kind)
        for kind, name in re.findall(
            r"MetricDef\s*=\s*(gauge|counter|histogram)\(\s*\"(blyan_[a-z0-9_]+)\"", text
        )
    )
    if len(found) < 10:
        problem(f"{rel(CATALOG)}: found only {len(found)} metric definitions; has its layout changed?")
    return found


def check_metric_names(catalog: dict[str, str]) -> None:
    used: set[str] = set()
    for path in (DASHBOARD, ALERTS, ALERT_TESTS):
        for name in sorted(set(re.findall(r"\bblyan_[a-z0-9_]+\b", path.read_text()))):
            used.add(name)
            if name in catalog:
                continue
            base = next((name[: -len(s)] for s in HISTOGRAM_SUFFIXES if name.endswith(s)), None)
            if base is not None and catalog.get(base) == "histogram":
                used.add(base)
                continue
            if base is not None and base in catalog:
                problem(f"{rel(path)}: {name}: {base} is a {catalog[base]}, not a histogram")
            else:
                problem(f"{rel(path)}: metric {name} is not in {rel(CATALOG)}")
    unused = sorted(set(catalog) - used)
    if unused:
        print(f"note: metrics neither charted nor alerted on: {', '.join(unused)}")


def check_dashboard() -> None:
    try:
        dashboard = json.loads(DASHBOARD.read_text())
    except json.JSONDecodeError as e:
        problem(f"{rel(DASHBOARD)}: not JSON: {e}")
        return
    variables = {v.get("name") for v in dashboard.get("templating", {}).get("list", [])}
    for needed in ("datasource", "node"):
        if needed not in variables:
            problem(f"{rel(DASHBOARD)}: no template variable ${needed}")
    ids: set[int] = set()
    panels = dashboard.get("panels", [])
    if not panels:
        problem(f"{rel(DASHBOARD)}: no panels")
    for panel in panels:
        title = panel.get("title", "?")
        pid = panel.get("id")
        if pid in ids:
            problem(f"{rel(DASHBOARD)}: panel id {pid} used twice")
        ids.add(pid)
        grid = panel.get("gridPos", {})
        if grid.get("x", 0) + grid.get("w", 0) > 24:
            problem(f"{rel(DASHBOARD)}: panel {title!r} is wider than 24 columns")
        if panel.get("type") == "row":
            continue
        targets = panel.get("targets", [])
        if not targets:
            problem(f"{rel(DASHBOARD)}: panel {title!r} has no query")
        for target in targets:
            if not target.get("expr", "").strip():
                problem(f"{rel(DASHBOARD)}: panel {title!r} has an empty query")
            if target.get("datasource", {}).get("uid") != "${datasource}":
                problem(f"{rel(DASHBOARD)}: panel {title!r} does not query $datasource")


def check_toolchain() -> None:
    channel = re.search(r'^channel\s*=\s*"([^"]+)"', TOOLCHAIN.read_text(), re.M)
    pinned = re.search(r"^ARG RUST_VERSION=(\S+)", DOCKERFILE.read_text(), re.M)
    if not channel or not pinned:
        problem(f"cannot read the toolchain of {rel(TOOLCHAIN)} or ARG RUST_VERSION of {rel(DOCKERFILE)}")
    elif channel.group(1) != pinned.group(1):
        problem(
            f"{rel(DOCKERFILE)} builds with Rust {pinned.group(1)}, "
            f"{rel(TOOLCHAIN)} pins {channel.group(1)}"
        )


def dockerfile_env() -> dict[str, str]:
    """The final stage's ENV (multi-line `ENV A=1 \\ B=2` form)."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    final = text.rsplit("\nFROM ", 1)[-1]
    env: dict[str, str] = {}
    for line in final.splitlines():
        if line.startswith("ENV "):
            for pair in line[4:].split():
                if "=" in pair:
                    key, value = pair.split("=", 1)
                    env[key] = value
    return env


def port_of(address: str) -> str:
    return address.rsplit(":", 1)[-1]


def check_yaml() -> None:
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        print("SKIPPED YAML checks (docker-compose.yml, provisioning, config keys): PyYAML not installed for python3")
        return

    def load(path: Path):
        try:
            return yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            problem(f"{rel(path)}: YAML error: {e}")
            return None

    config = load(NODE_CONFIG)
    compose = load(COMPOSE)
    prometheus = load(PROMETHEUS)
    datasources = load(DATASOURCES)
    providers = load(DASHBOARD_PROVIDERS)
    for path in (ALERTS, ALERT_TESTS):
        load(path)
    if not all(isinstance(d, dict) for d in (config, compose, prometheus, datasources, providers)):
        problem("a YAML file does not hold a mapping; later checks skipped")
        return

    # Configuration keys set through the environment.
    for path in (DOCKERFILE, COMPOSE, DEVNET_INIT):
        for section, key in sorted(set(ENV_KEY.findall(path.read_text()))):
            name = f"{section.lower()}.{key.lower()}"
            if not isinstance(config.get(section.lower()), dict) or key.lower() not in config[section.lower()]:
                problem(f"{rel(path)}: BLYAN_{section}__{key} sets {name}, which {rel(NODE_CONFIG)} does not have")

    env = dockerfile_env()
    metrics_port = port_of(env.get("BLYAN_METRICS__LISTEN_ADDR", ""))
    api_port = port_of(env.get("BLYAN_API__LISTEN_ADDR", ""))
    p2p_port = port_of(env.get("BLYAN_NETWORK__LISTEN_ADDR", ""))
    if env.get("BLYAN_STORAGE__PATH") != "/data" or not re.search(r'^VOLUME \["/data"\]', DOCKERFILE.read_text(), re.M):
        problem(f"{rel(DOCKERFILE)}: storage.path and the volume should both be /data")
    exposed = re.search(r"^EXPOSE (.+)$", DOCKERFILE.read_text(), re.M)
    exposed_ports = exposed.group(1).split() if exposed else []
    for port, proto in ((p2p_port, "udp"), (api_port, "tcp"), (metrics_port, "tcp")):
        if f"{port}/{proto}" not in exposed_ports:
            problem(f"{rel(DOCKERFILE)}: EXPOSE lacks {port}/{proto}")

    services = compose.get("services", {})
    nodes = {name: svc for name, svc in services.items() if svc.get("image", "").startswith("blyan-node")}
    if len(nodes) != 3:
        problem(f"{rel(COMPOSE)}: expected 3 blyan-node services, found {sorted(nodes)}")

    # Prometheus scrapes every node service on the image's metrics port.
    jobs = {job.get("job_name"): job for job in prometheus.get("scrape_configs", [])}
    job = jobs.get("blyan-node")
    if job is None:
        problem(f"{rel(PROMETHEUS)}: no blyan-node scrape job")
    else:
        targets = [t for sc in job.get("static_configs", []) for t in sc.get("targets", [])]
        hosts = {t.rsplit(":", 1)[0] for t in targets}
        if hosts != set(nodes):
            problem(f"{rel(PROMETHEUS)}: targets {sorted(hosts)} are not the compose node services {sorted(nodes)}")
        for target in targets:
            if port_of(target) != metrics_port:
                problem(f"{rel(PROMETHEUS)}: target {target} is not on the metrics port {metrics_port}")
    prom_service = services.get("prometheus", {})
    mounted = {v.split(":")[1]: v.split(":")[0] for v in prom_service.get("volumes", []) if v.startswith("./")}
    if mounted.get("/etc/prometheus/prometheus.yml") != "./prometheus/prometheus.yml":
        problem(f"{rel(COMPOSE)}: prometheus does not mount prometheus/prometheus.yml")
    for rule_file in prometheus.get("rule_files", []):
        if f"/etc/prometheus/{rule_file}" not in mounted:
            problem(f"{rel(COMPOSE)}: prometheus does not mount the rule file {rule_file}")

    # Nodes: API port, addresses of devnet-init.sh, volumes.
    init_text = DEVNET_INIT.read_text()
    prefix = re.search(r"^subnet_prefix=(\S+)", init_text, re.M)
    init_port = re.search(r"^p2p_port=(\S+)", init_text, re.M)
    for name, svc in sorted(nodes.items()):
        number = name.removeprefix("node")
        container_ports = {p.rsplit(":", 1)[-1] for p in svc.get("ports", [])}
        if container_ports and container_ports != {api_port}:
            problem(f"{rel(COMPOSE)}: {name} publishes {sorted(container_ports)}, the API listens on {api_port}")
        address = svc.get("networks", {}).get("blyan", {}).get("ipv4_address")
        if prefix and address != f"{prefix.group(1)}.1{number}":
            problem(f"{rel(COMPOSE)}: {name} has address {address}, devnet-init.sh uses {prefix.group(1)}.1{number}")
        advertise = svc.get("environment", {}).get("BLYAN_NETWORK__ADVERTISE_ADDR")
        if advertise is not None and advertise != f"{address}:{p2p_port}":
            problem(f"{rel(COMPOSE)}: {name} advertises {advertise}, not {address}:{p2p_port}")
        if init_port and init_port.group(1) != p2p_port:
            problem(f"{rel(DEVNET_INIT)}: p2p_port {init_port.group(1)} is not the image's {p2p_port}")
        volumes = [v.split(":") for v in svc.get("volumes", [])]
        if not any(len(v) >= 2 and v[1] == "/data" for v in volumes):
            problem(f"{rel(COMPOSE)}: {name} has no volume on /data")
        genesis = svc.get("environment", {}).get("BLYAN_CONSENSUS__GENESIS_FILE")
        if genesis is None or not any(len(v) >= 2 and v[1] == genesis for v in volumes):
            problem(f"{rel(COMPOSE)}: {name} does not mount its genesis file {genesis}")
        build = svc.get("build", {})
        if (COMPOSE.parent / build.get("context", ".") / build.get("dockerfile", "Dockerfile")).resolve() != DOCKERFILE:
            problem(f"{rel(COMPOSE)}: {name} does not build deploy/Dockerfile")

    # Grafana: provisioning mounted, data source on the prometheus service, dashboard path.
    grafana = services.get("grafana", {})
    grafana_mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana.get("volumes", []) if v.startswith("./")}
    urls = [d.get("url", "") for d in datasources.get("datasources", [])]
    if "http://prometheus:9090" not in urls:
        problem(f"{rel(DATASOURCES)}: no data source at http://prometheus:9090 (the compose prometheus service)")
    paths = [p.get("options", {}).get("path") for p in providers.get("providers", [])]
    dashboard_mount = next((t for t, s in grafana_mounts.items() if s == "./grafana/blyan-node.json"), None)
    if dashboard_mount is None or str(Path(dashboard_mount).parent) not in paths:
        problem(f"{rel(COMPOSE)}: grafana mounts blyan-node.json at {dashboard_mount}, providers read {paths}")

    # Every file or directory mounted from deploy/ exists (devnet/ is made by devnet-init.sh).
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./") and not source.startswith("./devnet"):
                if not (COMPOSE.parent / source).exists():
                    problem(f"{rel(COMPOSE)}: {name} mounts {source}, which does not exist")


def main() -> int:
    catalog = catalog_metrics()
    check_metric_names(catalog)
    check_dashboard()
    check_toolchain()
    check_yaml()
    if problems:
        for message in problems:
            print(f"error: {message}", file=sys.stderr)
        return 1
    print(f"deploy/ is consistent ({len(catalog)} catalog metrics)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
