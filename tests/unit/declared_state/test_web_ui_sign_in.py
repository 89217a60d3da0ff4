"""`web_ui.auth: oidc` (#22.4): the Temporal UI server's own sign-in, declared with the client
secret as a Kubernetes Secret key reference only; bad combinations refused at load with the
file and key; what `validate` and `provision` say about who can sign in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from declared_state.chart_values import build_chart_values
from declared_state.loader import InvalidEnvironment, load_environment
from operations import environments, render
from tests.helpers import copy_environments

CANARY = "s3cr3t-canary-value"  # the secret's value: never in anything this tool makes
OIDC = {
    "provider_url": "https://login.example.com/realms/temporal",
    "client_id": "temporal-ui",
    "client_secret_ref": {"name": "temporal-ui-oidc", "key": "client-secret"},
}


@pytest.fixture
def env_dir(tmp_path: Path) -> Path:
    return copy_environments(tmp_path)


def declare(env_dir: Path, web_ui: Any, name: str = "staging", **more: Any) -> Path:
    path = env_dir / f"{name}.yaml"
    data = yaml.safe_load(path.read_text()) or {}
    data["web_ui"] = web_ui
    data.update(more)
    path.write_text(yaml.safe_dump(data))
    return path


def problems(env_dir: Path, name: str = "staging") -> list[str]:
    with pytest.raises(InvalidEnvironment) as info:
        load_environment(name, env_dir)
    return [str(p) for p in info.value.problems]


def test_oidc_becomes_the_ui_containers_sign_in_environment(env_dir):
    declare(env_dir, {"auth": "oidc", "oidc": OIDC})
    env = load_environment("staging", env_dir)
    expected = [
        {"name": "TEMPORAL_AUTH_ENABLED", "value": "true"},
        {"name": "TEMPORAL_AUTH_TYPE", "value": "oidc"},
        {"name": "TEMPORAL_AUTH_PROVIDER_URL", "value": OIDC["provider_url"]},
        {"name": "TEMPORAL_AUTH_CLIENT_ID", "value": "temporal-ui"},
        {
            "name": "TEMPORAL_AUTH_CLIENT_SECRET",
            "valueFrom": {"secretKeyRef": {"name": "temporal-ui-oidc", "key": "client-secret"}},
        },
        # from web_ingress: host temporal.staging.example.com with a tls_secret
        {
            "name": "TEMPORAL_AUTH_CALLBACK_URL",
            "value": "https://temporal.staging.example.com/auth/sso/callback",
        },
        {"name": "TEMPORAL_AUTH_SCOPES", "value": "openid,profile,email"},
    ]
    for version in ("0.52.0", "1.6.0"):
        chart = env.chart.model_copy(update={"version": version})
        values = build_chart_values(env.model_copy(update={"chart": chart}))
        assert values["web"]["additionalEnv"] == expected, version


def test_no_sign_in_by_default_sets_no_ui_environment(env_dir):
    env = load_environment("staging", env_dir)
    assert env.web_ui.auth == "none"
    assert "additionalEnv" not in build_chart_values(env)["web"]


def test_an_explicit_callback_and_scopes_are_kept(env_dir):
    oidc = {
        **OIDC,
        "callback_url": "https://ui.example.com/temporal/auth/sso/callback",
        "scopes": ["openid", "email", "groups"],
    }
    declare(env_dir, {"auth": "oidc", "oidc": oidc})
    web_env = {
        e["name"]: e.get("value")
        for e in build_chart_values(load_environment("staging", env_dir))["web"]["additionalEnv"]
    }
    assert web_env["TEMPORAL_AUTH_CALLBACK_URL"] == oidc["callback_url"]
    assert web_env["TEMPORAL_AUTH_SCOPES"] == "openid,email,groups"


@pytest.mark.parametrize(
    ("web_ui", "key", "says"),
    [
        ({"auth": "oidc"}, "web_ui.oidc", "required with auth: oidc"),
        ({"auth": "sso"}, "web_ui.auth", "'none' or 'oidc'"),
        ({"oidc": OIDC}, "web_ui.auth", "is none, so oidc would be ignored"),
        (
            {"auth": "oidc", "oidc": {k: v for k, v in OIDC.items() if k != "client_secret_ref"}},
            "web_ui.oidc.client_secret_ref",
            "required key is missing",
        ),
        (
            {"auth": "oidc", "oidc": {**OIDC, "client_secret": CANARY}},
            "web_ui.oidc.client_secret",
            "never the secret itself",
        ),
        (
            {
                "auth": "oidc",
                "oidc": {**OIDC, "client_secret_ref": {"name": "Bad_Name", "key": "k"}},
            },
            "web_ui.oidc.client_secret_ref.name",
            "is not a Secret name",
        ),
        (
            {"auth": "oidc", "oidc": {**OIDC, "provider_url": "login.example.com"}},
            "web_ui.oidc.provider_url",
            "not an absolute http(s) URL",
        ),
        (
            {"auth": "oidc", "oidc": {**OIDC, "provider_url": "http://login.example.com"}},
            "web_ui.oidc.provider_url",
            "'http://login.example.com' must be https",
        ),
        (
            {"auth": "oidc", "oidc": {**OIDC, "callback_url": "https://ui.example.com/callback"}},
            "web_ui.oidc.callback_url",
            "its path ends with /auth/sso/callback",
        ),
        (
            {
                "auth": "oidc",
                "oidc": {**OIDC, "callback_url": "http://ui.example.com/auth/sso/callback"},
            },
            "web_ui.oidc.callback_url",
            "must be https",
        ),
        (
            {"auth": "oidc", "oidc": {**OIDC, "scopes": ["profile", "email"]}},
            "web_ui.oidc.scopes",
            "must include 'openid'",
        ),
        (
            {"auth": "oidc", "oidc": {**OIDC, "scopes": ["openid", "a,b"]}},
            "web_ui.oidc.scopes",
            "no spaces or commas",
        ),
        (
            {"auth": "oidc", "oidc": {**OIDC, "client_id": "my client"}},
            "web_ui.oidc.client_id",
            "not a client id",
        ),
    ],
)
def test_bad_sign_in_declarations_are_named(env_dir, web_ui, key, says):
    path = declare(env_dir, web_ui)
    found = problems(env_dir)
    assert any(p.startswith(f"{path}: {key}: ") and says in p for p in found), found
    assert not any(CANARY in p for p in found)  # a secret written by mistake is not echoed


def test_a_plain_http_ingress_gives_no_https_callback(env_dir):
    """The callback comes from web_ingress; without a tls_secret it would be http."""
    path = declare(
        env_dir,
        {"auth": "oidc", "oidc": OIDC},
        web_ingress={
            "host": "temporal.staging.example.com",
            "access": {"allowed_cidrs": ["10.0.0.0/8"]},
        },
    )
    (found,) = problems(env_dir)
    assert found.startswith(f"{path}: web_ui.oidc.callback_url: ")
    assert "must be https" in found and "web_ingress, which has no tls_secret" in found


def test_without_an_ingress_host_the_callback_is_required(env_dir):
    path = declare(env_dir, {"auth": "oidc", "oidc": OIDC}, web_ingress={"enabled": False})
    (found,) = problems(env_dir)
    assert found.startswith(f"{path}: web_ui.oidc.callback_url: required without")


def test_http_is_accepted_for_a_loopback_provider_and_in_the_local_environment(env_dir):
    local_idp = {**OIDC, "provider_url": "http://127.0.0.1:8081/realms/t"}
    declare(env_dir, {"auth": "oidc", "oidc": local_idp})
    load_environment("staging", env_dir)
    declare(
        env_dir,
        {
            "auth": "oidc",
            "oidc": {
                **OIDC,
                "provider_url": "http://keycloak.auth.svc:8080/realms/t",
                "callback_url": "http://localhost:8080/auth/sso/callback",
            },
        },
        name="local",
    )
    stack = {
        "LOCAL_STACK_DB_HOST": "127.0.0.1",
        "LOCAL_STACK_DB_PORT": "3306",
        "LOCAL_STACK_IMAGE_REGISTRY": "http://127.0.0.1:5000",
        "LOCAL_STACK_KUBE_CONTEXT": "local",
    }
    assert load_environment("local", env_dir, variables=stack).web_ui.oidc is not None


@pytest.mark.parametrize(
    "extra",
    [
        {"web": {"additionalEnv": [{"name": "TEMPORAL_AUTH_ENABLED", "value": "false"}]}},
        {"web": {"additionalEnv": [{"name": "TEMPORAL_CODEC_ENDPOINT", "value": "https://c"}]}},
    ],
)
def test_extra_values_may_not_replace_the_sign_in(env_dir, extra):
    path = declare(env_dir, {"auth": "oidc", "oidc": OIDC}, extra_values=extra)
    (found,) = problems(env_dir)
    assert found.startswith(f"{path}: extra_values.web.additionalEnv: ")
    assert "declared in web_ui" in found


def test_extra_values_may_not_add_sign_in_variables_where_none_is_declared(env_dir):
    extra = {
        "web": {
            "additionalEnv": [
                {"name": "TEMPORAL_CODEC_ENDPOINT", "value": "https://codec.example.com"},
                {"name": "TEMPORAL_AUTH_ENABLED", "value": "true"},
            ]
        }
    }
    path = declare(env_dir, {"auth": "none"}, extra_values=extra)
    (found,) = problems(env_dir)
    assert found.startswith(f"{path}: extra_values.web.additionalEnv[1]: TEMPORAL_AUTH_ENABLED")
    # other UI settings stay possible
    extra["web"]["additionalEnv"].pop()
    declare(env_dir, {"auth": "none"}, extra_values=extra)
    load_environment("staging", env_dir)


def test_validate_and_provision_say_who_can_sign_in(env_dir):
    plain = environments.web_ui_exposure(load_environment("staging", env_dir))
    assert render.exposure_text(plain) == (
        "https://temporal.staging.example.com, allowed from 10.20.0.0/16, 192.168.10.0/24, "
        "no sign-in: whoever reaches it uses it (web_ui.auth: none)"
    )
    declare(env_dir, {"auth": "oidc", "oidc": OIDC})
    oidc = environments.web_ui_exposure(load_environment("staging", env_dir))
    assert render.exposure_line(oidc) == (
        "new cluster's Web UI: https://temporal.staging.example.com, allowed from "
        "10.20.0.0/16, 192.168.10.0/24, sign-in: OIDC, whoever "
        "https://login.example.com/realms/temporal lets sign in to client temporal-ui "
        "(the UI adds no roles of its own)"
    )
    declare(
        env_dir,
        {
            "auth": "oidc",
            "oidc": {**OIDC, "callback_url": "https://x.example.com/auth/sso/callback"},
        },
        web_ingress={"enabled": False},
    )
    hidden = environments.web_ui_exposure(load_environment("staging", env_dir))
    assert render.exposure_text(hidden).startswith(
        "no ingress (web_ingress.enabled: false), sign-in: OIDC, whoever https://login"
    )


def test_the_secret_reference_travels_and_no_secret_does(env_dir):
    declare(env_dir, {"auth": "oidc", "oidc": OIDC})
    env = load_environment("staging", env_dir)
    as_input = env.model_dump_json()
    assert '"client_secret_ref":{"name":"temporal-ui-oidc","key":"client-secret"}' in as_input
    values = json.dumps(build_chart_values(env))
    assert "TEMPORAL_AUTH_CLIENT_SECRET" in values and '"value"' in values
    secret = next(
        e
        for e in build_chart_values(env)["web"]["additionalEnv"]
        if e["name"] == "TEMPORAL_AUTH_CLIENT_SECRET"
    )
    assert set(secret) == {"name", "valueFrom"}  # a reference, never a value
