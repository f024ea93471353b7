"""Each room shows its public names in a sorted ``__all__``, and every name exists."""

import importlib

import pytest

ROOMS = [
    "sandbox",
    "sandbox.records",
    "sandbox.turns",
    "sandbox.models",
    "sandbox.hub",
    "sandbox.episodes",
    "sandbox.runs",
    "sandbox.tasks",
    "sandbox.datasets",
    "sandbox.view",
    "sandbox.train",
    "sandbox.improve",
    "servers",
    "tools",
    "rewards",
]


@pytest.mark.parametrize("room", ROOMS)
def test_all_is_sorted_and_complete(room: str) -> None:
    module = importlib.import_module(room)
    names = module.__all__
    assert names == sorted(names)
    for name in names:
        assert getattr(module, name) is not None


def test_records_do_not_pull_in_llama_cpp() -> None:
    import subprocess
    import sys

    code = "import sandbox, rewards, sys; print('llama_cpp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_cli_and_the_training_room_do_not_pull_in_torch() -> None:
    import subprocess
    import sys

    code = "import sandbox.cli, sandbox.train, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
