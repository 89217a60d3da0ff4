"""adapters/registry.py against the registry stand-in: names read as a runtime reads them,
the Accept header a multi-architecture image needs, mirrors and credentials files."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.request

import pytest

from adapters.registry import ImageName, RegistryClient, read_credentials


@pytest.mark.parametrize(
    ("reference", "registry", "repository", "tag"),
    [
        ("temporalio/ui:2.31.2", "docker.io", "temporalio/ui", "2.31.2"),
        ("busybox", "docker.io", "library/busybox", "latest"),
        (
            "registry.example.com:5000/t/admin-tools:1.29",
            "registry.example.com:5000",
            "t/admin-tools",
            "1.29",
        ),
        ("localhost/x:y", "localhost", "x", "y"),
        ("quay.io/org/img", "quay.io", "org/img", "latest"),
    ],
)
def test_names_are_read_as_a_runtime_reads_them(reference, registry, repository, tag):
    assert ImageName.parse(reference) == ImageName(registry, repository, tag)


def _token(image_registry, name: str) -> str:
    """An anonymous pull token for `name`, as the token flow hands it out."""
    url = f"{image_registry.url}/token?service=registry.standin&scope=repository:{name}:pull"
    token: str = json.loads(urllib.request.urlopen(url).read())["token"]
    return token


def test_a_multi_arch_image_is_found_only_with_index_types_accepted(image_registry):
    client = RegistryClient({"docker.io": image_registry.url})
    assert client.exists("temporalio/ui:2.52.0").verdict == "found"
    # The same HEAD with a single-manifest Accept (as an old client sends): 404.
    token = _token(image_registry, "temporalio/ui")
    request = urllib.request.Request(
        f"{image_registry.url}/v2/temporalio/ui/manifests/2.52.0",
        method="HEAD",
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.docker.distribution.manifest.v2+json",
        },
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request)
    assert info.value.code == 404


def test_the_catalog_is_what_the_shipped_charts_pin(image_registry):
    assert "temporalio/admin-tools:1.29.1-tctl-1.18.4-cli-1.5.0" in image_registry.images
    assert "temporalio/admin-tools:1.29.1" not in image_registry.images, "a bare tag"


def test_credentials_come_from_a_docker_config(tmp_path):
    auth = base64.b64encode(b"robot:s3cret").decode()
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "auths": {
                    "https://index.docker.io/v1/": {"auth": auth},
                    "registry.example.com": {"auth": auth},
                }
            }
        )
    )
    assert read_credentials(str(path)) == {
        "docker.io": ("robot", "s3cret"),
        "registry.example.com": ("robot", "s3cret"),
    }
    path.write_text("{")
    with pytest.raises(ValueError) as info:
        read_credentials(str(path))
    assert "s3cret" not in str(info.value) and str(path) in str(info.value)


def _get_manifest(image_registry, name: str, reference: str) -> tuple[bytes, str]:
    token = _token(image_registry, name)
    request = urllib.request.Request(
        f"{image_registry.url}/v2/{name}/manifests/{reference}",
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.oci.image.index.v1+json",
        },
    )
    with urllib.request.urlopen(request) as response:
        return response.read(), response.headers["Docker-Content-Digest"]


def test_a_tag_resolves_to_the_digest_of_its_manifest_and_a_moved_tag_to_another(
    image_registry,
):
    """#23.5: the digest the client reads is the SHA-256 of the manifest's bytes (as the
    distribution API defines it); a re-pushed tag names another manifest, and the earlier
    one stays reachable by its digest."""
    client = RegistryClient({"docker.io": image_registry.url})
    image_registry.add("temporalio/moving:1.0")
    before = client.exists("temporalio/moving:1.0").digest
    body, header = _get_manifest(image_registry, "temporalio/moving", "1.0")
    assert before == header == "sha256:" + hashlib.sha256(body).hexdigest()
    assert client.exists("temporalio/moving:1.0").digest == before, "stable until re-pushed"

    image_registry.move_tag("temporalio/moving:1.0")
    after = client.exists("temporalio/moving:1.0").digest
    assert after is not None and after != before
    old_body, old_header = _get_manifest(image_registry, "temporalio/moving", before)
    assert (old_body, old_header) == (body, before)
    # What the kubelet stand-in asks: a pinned reference is pulled by its digest alone.
    assert image_registry.has(f"temporalio/moving:1.0@{before}")
    assert image_registry.has(f"temporalio/moving@{after}")
    assert not image_registry.has("temporalio/moving@sha256:" + "0" * 64)
