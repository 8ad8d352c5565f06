#!/usr/bin/env python3
"""Generates the Python gRPC client of kanban.v1 from the repository's proto/ directory.

The generated modules are checked in under src/kanband_hermes/pb/ so that `pip install
integrations/hermes` needs neither grpcio-tools nor a build step; tests/test_generated.py
regenerates them into a temporary directory and fails if they differ from the checked-in
copy. The output depends on the grpcio-tools version, so it is pinned here.

    python regen.py            # rewrite src/kanband_hermes/pb
    python regen.py --out DIR  # write the package into DIR instead (what the test does)

protoc emits absolute imports (`from kanban.v1 import task_pb2`), which would claim a
top-level `kanban` package in Hermes's environment; they are rewritten to point into
`kanband_hermes.pb`.
"""

import argparse
import pathlib
import re
import shutil
import sys
import tempfile

GRPCIO_TOOLS_VERSION = "1.85.1"

HERE = pathlib.Path(__file__).resolve().parent
PROTO_ROOT = HERE.parents[1] / "proto" / "proto"
PACKAGE = "kanband_hermes.pb"
DEFAULT_OUT = HERE / "src" / "kanband_hermes" / "pb"

INIT_DOC = '"""kanban.v1 messages and stubs generated from proto/ by integrations/hermes/regen.py; do not edit."""\n'


def generate(out: pathlib.Path) -> None:
    """Writes the `pb` package (generated modules and their `__init__.py` files) into `out`."""
    from importlib.metadata import version

    from grpc_tools import protoc

    installed = version("grpcio-tools")
    if installed != GRPCIO_TOOLS_VERSION:
        sys.exit(f"regen: grpcio-tools {GRPCIO_TOOLS_VERSION} is pinned, {installed} is installed")
    files = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / "kanban" / "v1").glob("*.proto"))
    well_known = pathlib.Path(protoc.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        code = protoc.main(
            ["protoc", f"-I{PROTO_ROOT}", f"-I{well_known}", f"--python_out={tmp}", f"--grpc_python_out={tmp}", *files]
        )
        if code != 0:
            sys.exit(f"regen: grpc_tools.protoc failed with {code}")
        if out.exists():
            shutil.rmtree(out)
        for source in sorted(pathlib.Path(tmp).rglob("*.py")):
            target = out / source.relative_to(tmp)
            target.parent.mkdir(parents=True, exist_ok=True)
            text = re.sub(r"^from kanban\.v1 import ", f"from {PACKAGE}.kanban.v1 import ", source.read_text(), flags=re.M)
            target.write_text(text)
    for package in [out, out / "kanban", out / "kanban" / "v1"]:
        (package / "__init__.py").write_text(INIT_DOC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    generate(parser.parse_args().out)


if __name__ == "__main__":
    main()
