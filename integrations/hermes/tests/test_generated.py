"""The checked-in client in src/kanband_hermes/pb is what regen.py makes from proto/ today: a
.proto change without `python integrations/hermes/regen.py` fails here."""

import pathlib
import sys
import tempfile
import unittest

HERE = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))

import regen  # noqa: E402


def files(root: pathlib.Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.py"))}


class Generated(unittest.TestCase):
    def test_checked_in_client_matches_the_protos(self):
        with tempfile.TemporaryDirectory() as tmp:
            fresh = pathlib.Path(tmp) / "pb"
            regen.generate(fresh)
            expected, checked_in = files(fresh), files(regen.DEFAULT_OUT)
        self.assertEqual(sorted(checked_in), sorted(expected))
        stale = [name for name in expected if expected[name] != checked_in[name]]
        self.assertEqual(stale, [], "run `python integrations/hermes/regen.py` and commit the result")


if __name__ == "__main__":
    unittest.main()
