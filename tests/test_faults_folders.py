"""Fault hunt 4: run folders shared between commands, runs and users — nothing dirac did not write is replaced,
a refused run changes nothing, and every refusal is one line naming the file and the fix.

In this process throughout (``dirac.cli.train.run``, ``dirac.cli.sample.run``/``main``, :class:`OutputFolder`);
the trainings are the seconds-long tiny network of ``tests/helpers.py``.
"""

from __future__ import annotations

import json
import sys

import pytest
import torch
from helpers import checksums, sample, tiny_training, train_tiny, unchanged

from dirac.cli import check_hydra_overrides, hydra_command
from dirac.evaluation import OutputFolder
from dirac.runlock import RunLock

TRAIN = tiny_training(trainer__max_steps=2)
FAST = ["checkpoint=blur_default", "num_images=2", "sampler.steps=2", "sampler.t_stop=0.5", "metrics=[psnr]"]


def _train_refusal(out) -> str:
    with pytest.raises(SystemExit) as e:
        train_tiny(out, TRAIN)
    text = str(e.value.code)
    assert text.startswith("error:") and "\n" not in text
    return text


def _sample_run(tmp_path, name: str, *extra: str) -> None:
    sample(tmp_path, name, *FAST, *extra)


def test_training_never_replaces_files_it_did_not_write(tmp_path):
    """A folder holding a user's ``.hydra/config.yaml`` and ``schedule.json`` (names training writes) is refused
    untouched; once the user moves them, training runs there."""
    out = tmp_path / "mine"
    (out / ".hydra").mkdir(parents=True)
    (out / ".hydra" / "config.yaml").write_text("other-app: 1\n")
    (out / "schedule.json").write_text('{"mine": 1}')
    before = checksums(out)
    for _ in range(2):  # a refused run marks nothing: the second is refused too
        assert "was not written by a dirac training" in _train_refusal(out)
        assert unchanged(before, checksums(out)) == []
    (out / "schedule.json").unlink()
    (out / ".hydra" / "config.yaml").unlink()
    assert train_tiny(out, TRAIN).is_symlink()


def test_training_resumes_and_restarts_in_its_own_folder(tmp_path):
    """A folder an earlier training held (its lock file, its files) is that training's: rerunning takes it."""
    out = tmp_path / "run"
    train_tiny(out, TRAIN)
    assert (out / "schedule.json").is_file()
    train_tiny(out, tiny_training(trainer__max_steps=4))
    assert json.loads((out / "train_summary.json").read_text())["step"] == 4


def test_a_training_stopped_before_its_first_checkpoint_reruns_in_its_folder(tmp_path, monkeypatch):
    """Its schedule.json (a name training writes) is its own: the mark written before it says so."""

    def stop(*args, **kwargs):
        raise ValueError("stopped after the first files")

    out = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr("dirac.training.Trainer.fit", stop)
        with pytest.raises(SystemExit, match="stopped after the first files"):
            train_tiny(out, TRAIN)
    assert (out / "schedule.json").is_file() and not (out / "checkpoints" / "last").exists()
    assert train_tiny(out, TRAIN).is_symlink()


def test_training_refuses_another_commands_outputs(tmp_path):
    """``sample.py``'s folder (its manifest, its .hydra record): training there would replace its record."""
    _sample_run(tmp_path, "s")
    out = tmp_path / "s"
    before = checksums(out)
    assert "manifest.json" in _train_refusal(out)
    assert unchanged(before, checksums(out)) == []


def test_training_refuses_the_shipped_models(tmp_path, monkeypatch):
    stand_in = tmp_path / "pretrained" / "blur_default"  # never the real shipped folder: a regression would write
    stand_in.mkdir(parents=True)
    (stand_in / "state.json").write_text("{}")
    monkeypatch.setattr("dirac.shipped.pretrained_dir", lambda: stand_in.parent)
    assert "inside dirac's shipped models" in _train_refusal(stand_in)
    assert sorted(p.name for p in stand_in.iterdir()) == ["state.json"]  # not even a lock file


def test_sampling_refuses_a_folder_another_run_holds(tmp_path):
    """Two ``sample.py`` runs into one folder would mix their outputs: the second stops at once."""
    out = tmp_path / "s"
    with RunLock(out):
        with pytest.raises(OSError, match="in use by another dirac run"):
            _sample_run(tmp_path, "s")
    assert sorted(p.name for p in out.iterdir()) == [".dirac.lock"]
    _sample_run(tmp_path, "s")  # free again: the lock file is no output and no user's file
    files = json.loads((out / "manifest.json").read_text())["files"]
    assert ".dirac.lock" not in files and "metrics.json" in files


def test_sampling_into_a_training_folder_names_it(tmp_path):
    out = tmp_path / "run"
    train_tiny(out, TRAIN)
    before = checksums(out)
    for overwrite in ("false", "true"):
        with pytest.raises(FileExistsError, match="holds a training run"):
            _sample_run(tmp_path, "run", f"overwrite={overwrite}")
    assert unchanged(before, checksums(out)) == []


def test_a_users_file_where_an_output_folder_goes_is_refused_before_anything_is_removed(tmp_path):
    """``.hydra`` (or ``figures``) as a user's file: refused at the folder check, the previous run intact (the run
    used to remove it, then stop at its first write with a bare errno)."""
    root = tmp_path / "out"
    first = OutputFolder(root)
    first.prepare()
    first.image("figures/grid.png", torch.rand(3, 4, 4))
    first.finish()
    (root / ".hydra").write_text("mine")
    before = checksums(root)
    with pytest.raises(FileExistsError, match=r"\.hydra is a file or link dirac did not write"):
        OutputFolder(root, record={".hydra/config.yaml": "x: 1\n"}).prepare(overwrite=True)
    assert checksums(root) == before
    (root / "figures" / "grid.png").unlink()  # the user replaces the listed folder by a file of the same name
    (root / "figures").rmdir()
    (root / "figures").write_text("mine too")
    with pytest.raises(FileExistsError, match="figures is a file or link dirac did not write"):
        OutputFolder(root).prepare(overwrite=True)
    assert (root / "figures").read_text() == "mine too" and (root / "manifest.json").is_file()


def _run_listing(root, *entries: str):
    """A finished run (``metrics.json``) whose manifest was edited to list ``entries`` too."""
    first = OutputFolder(root)
    first.prepare()
    first.json("metrics.json", {"a": 1})
    first.finish()
    data = json.loads((root / "manifest.json").read_text())
    (root / "manifest.json").write_text(json.dumps({**data, "files": [*data["files"], *entries]}))
    return root


@pytest.mark.parametrize("entry", ["./mine.txt", "x/../mine.txt", "reconstructions//mine.txt", "a" * 300])
def test_an_edited_manifest_entry_never_removes_a_users_file(tmp_path, entry):
    """Removal and the user-file check see the same names: an entry not in the form dirac writes is refused."""
    root = _run_listing(tmp_path / "out", entry)
    (root / "mine.txt").write_text("keep me")
    with pytest.raises(ValueError) as e:
        OutputFolder(root).prepare(overwrite=True)
    assert "not a path dirac writes" in str(e.value) and "\n" not in str(e.value)
    assert (root / "mine.txt").read_text() == "keep me" and (root / "metrics.json").is_file()


def test_a_listed_job_log_or_lock_is_never_removed(tmp_path):
    root = _run_listing(tmp_path / "out", "sample.log", ".dirac.lock")
    (root / "sample.log").write_text("this run's log")
    (root / ".dirac.lock").write_text("pid=1")
    again = OutputFolder(root, ignore=["sample.log"])
    assert again.prepare(overwrite=True) == ["metrics.json"]
    again.finish()
    assert (root / "sample.log").read_text() == "this run's log" and (root / ".dirac.lock").is_file()


def test_hydra_settings_that_write_before_dirac_checks_are_refused_first(tmp_path, monkeypatch):
    """``hydra.output_subdir`` set would replace another run's record before any check; a run folder under a file
    would end in Hydra's traceback: both refused from the command line, before Hydra acts."""
    a_file = tmp_path / "f"
    a_file.write_text("mine")
    for args, words in (
        (["hydra.output_subdir=.hydra"], "leave it null"),
        (["+hydra.output_subdir=rec", "trainer.lr=0.5"], "hydra.output_subdir=rec"),
        ([f"hydra.run.dir={a_file}"], "is a file, not a folder"),
        ([f"hydra.run.dir='{a_file}/sub'"], f"{a_file} is a file"),
    ):
        with pytest.raises(SystemExit) as e:
            check_hydra_overrides(args)
        assert words in str(e.value.code) and "\n" not in str(e.value.code)
    check_hydra_overrides(["hydra.output_subdir=null", f"hydra.run.dir={tmp_path / 'new'}", "-m"])  # accepted
    from dirac.cli.train import main

    out = tmp_path / "run"
    train_tiny(out, TRAIN)
    before = checksums(out)
    monkeypatch.setattr(sys, "argv", ["train.py", *TRAIN, "hydra.output_subdir=.hydra", f"hydra.run.dir={out}"])
    with pytest.raises(SystemExit, match="hydra.output_subdir"):
        main()
    assert checksums(out) == before


def test_a_config_files_output_subdir_is_overridden_to_null(monkeypatch):
    """A config file (``--config-dir``) may set ``hydra.output_subdir``: the command forces it to null, once."""
    seen = []
    argv = ["sample.py", "num_images=2", "hydra.output_subdir=null"]
    monkeypatch.setattr(sys, "argv", list(argv))
    hydra_command(lambda: seen.append(list(sys.argv)))
    assert seen == [["sample.py", "num_images=2", "hydra.output_subdir=null"]] and sys.argv == argv
    monkeypatch.setattr(sys, "argv", ["sample.py"])
    hydra_command(lambda: seen.append(list(sys.argv)))
    assert seen[-1] == ["sample.py", "hydra.output_subdir=null"]


def test_the_command_line_never_lets_hydra_write_into_the_shipped_models(tmp_path, monkeypatch):
    """Hydra makes the run folder and its job log before dirac runs: a ``hydra.run.dir`` inside the shipped models
    is refused before Hydra starts (the folder keeps exactly its files)."""
    stand_in = tmp_path / "pretrained" / "blur_default"
    stand_in.mkdir(parents=True)
    (stand_in / "state.json").write_text("{}")
    monkeypatch.setattr("dirac.shipped.pretrained_dir", lambda: stand_in.parent)
    from dirac.cli.sample import main as sample_main
    from dirac.cli.train import main as train_main

    for main, args in ((train_main, TRAIN), (sample_main, FAST)):
        for where in (stand_in, stand_in / "new"):
            monkeypatch.setattr(sys, "argv", ["x.py", *args, f"hydra.run.dir={where}"])
            with pytest.raises(SystemExit, match="inside dirac's shipped models"):
                main()
    assert sorted(p.name for p in stand_in.parent.rglob("*")) == ["blur_default", "state.json"]
