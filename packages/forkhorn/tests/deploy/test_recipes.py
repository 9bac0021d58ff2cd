"""The deployment recipes the docs show but the tests cannot run whole (a container image,
a Kubernetes manifest) agree with forkhorn; the middleware samples do what the docs say."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from forkhorn.cli import build_parser, parse_command_line
from forkhorn.config.config import Config
from proxies import DEPLOY_DOCS


def load_sample(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, DEPLOY_DOCS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def settings_of(argv: list[str]) -> Config:
    """The config a ``forkhorn ...`` command line gives (refused lines fail the test)."""
    assert Path(argv[0]).name == "forkhorn"
    parsed = parse_command_line(build_parser(), argv[1:])
    cfg = Config()
    for name, value in parsed.values.items():
        cfg.set(name, value, source="docs")
    return cfg


def dockerfile_command() -> list[str]:
    match = re.search(r"^CMD (\[.*\])$", (DEPLOY_DOCS / "Dockerfile").read_text(), re.MULTILINE)
    assert match, "the Dockerfile's CMD is in the exec form"
    command: list[str] = json.loads(match[1])
    return command


def test_the_dockerfile_command_is_accepted() -> None:
    cfg = settings_of(dockerfile_command())
    assert cfg.bind == ["0.0.0.0:8000"]
    assert cfg.keepalive > 60  # above a proxy's idle timeout (docs/deploy/nginx.conf)


def test_the_kubernetes_timings_fit_forkhorn_graceful_stop() -> None:
    yaml = pytest.importorskip("yaml")
    deployment, service = list(yaml.safe_load_all((DEPLOY_DOCS / "kubernetes.yaml").read_text()))
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    graceful = settings_of(dockerfile_command()).graceful_timeout
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > int(pre_stop[1]) + graceful
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["ports"][0]["containerPort"] == 8000
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    env = {item["name"]: item["value"] for item in container["env"]}
    cfg = Config()
    cfg.set("forwarded_allow_ips", env["FORWARDED_ALLOW_IPS"])  # a valid value
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def call(app: Any, environ: dict[str, Any]) -> tuple[str, bytes]:
    seen: list[str] = []
    body = b"".join(app(environ, lambda status, headers: seen.append(status)))
    return seen[0], body


def echo_remote(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [environ["REMOTE_ADDR"].encode()]


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("10.0.0.5", "203.0.113.7", "203.0.113.7"),
        ("10.0.0.5", "198.51.100.1, 203.0.113.7", "203.0.113.7"),  # the left is the client's
        ("10.0.0.5", "203.0.113.7, 10.0.0.9", "203.0.113.7"),  # two proxies of ours
        ("192.0.2.50", "203.0.113.7", "192.0.2.50"),  # not from our proxy: ignored
        ("10.0.0.5", None, "10.0.0.5"),
    ],
)
def test_the_real_client_ip_middleware(peer: str, forwarded: str | None, client: str) -> None:
    app = load_sample("realip").RealClientIP(echo_remote, trusted=["10.0.0.0/8"])
    environ = {"REMOTE_ADDR": peer}
    if forwarded:
        environ["HTTP_X_FORWARDED_FOR"] = forwarded
    assert call(app, environ) == ("200 OK", client.encode())


def test_the_health_middleware() -> None:
    app = load_sample("healthz").Healthz(echo_remote)
    assert call(app, {"PATH_INFO": "/healthz"}) == ("200 OK", b"ok\n")
    assert call(app, {"PATH_INFO": "/x", "REMOTE_ADDR": "192.0.2.1"}) == ("200 OK", b"192.0.2.1")
