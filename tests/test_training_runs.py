"""A training run and its folder: one run per output_dir, a resume that continues the log where its
checkpoint stands, settings checked against the checkpoint's, one writer at a time, damaged
checkpoints named, and the training programs' --out and --resume."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from minibert.training.log import read_log
from minibert.training.loop import Trainer, TrainingConfig, TrainingError
from tasks import finetune_cross_encoder, pretrain
from test_training_loop import new_model, pretraining_data, step_data

ROOT = Path(__file__).resolve().parents[1]


def logged_steps(folder: Path) -> list[int]:
    return [r["step"] for r in read_log(folder / "log.jsonl") if "loss" in r]


def train(out: Path, total_steps: int = 2, **changes) -> Trainer:
    config = TrainingConfig(**{"total_steps": total_steps, "learning_rate": 1e-3, "output_dir": str(out),
                               "progress": False, **changes})
    trainer = Trainer(new_model(), config)
    trainer.train(step_data(pretraining_data()))
    return trainer


# -- 1. one run per folder; a resume continues its log ------------------------------------------

def test_a_second_fresh_run_into_the_same_output_dir_is_refused(tmp_path):
    train(tmp_path, total_steps=3)
    again = Trainer(new_model(), TrainingConfig(total_steps=3, output_dir=str(tmp_path), progress=False))
    with pytest.raises(TrainingError, match=rf"{re.escape(str(tmp_path))} already holds a training run "
                                            r"\(checkpoint/, log\.jsonl\).*Trainer\.resume"):
        again.train(step_data(pretraining_data()))  # was: log.jsonl read steps 1, 2, 3, 1, 2, 3
    assert logged_steps(tmp_path) == [1, 2, 3]


def test_a_resume_after_a_kill_rewinds_the_log_to_its_checkpoint(tmp_path):
    """Killed at step 5 with the last checkpoint at step 4: step 5 is done again, and logged once."""
    data = step_data(pretraining_data())

    def killed_at_step_five(step):
        if step == 5:
            raise KeyboardInterrupt
        return data(step)

    first = Trainer(new_model(), TrainingConfig(total_steps=8, learning_rate=1e-3, save_every=2,
                                                output_dir=str(tmp_path), progress=False))
    with pytest.raises(KeyboardInterrupt):
        first.train(killed_at_step_five)
    assert logged_steps(tmp_path) == [1, 2, 3, 4, 5]
    resumed = Trainer(new_model(), TrainingConfig(total_steps=8, learning_rate=1e-3, save_every=2,
                                                  output_dir=str(tmp_path), progress=False))
    resumed.resume(tmp_path / "checkpoint")
    assert resumed.step == 4 and logged_steps(tmp_path) == [1, 2, 3, 4]
    resumed.train(data)
    assert logged_steps(tmp_path) == list(range(1, 9))  # was: 1, 2, 3, 4, 5, 5, 6, 7, 8


def test_an_evaluation_before_training_belongs_to_the_run(tmp_path):
    """A baseline evaluate() before train() writes the log first; the run then trains (it refused itself:
    'already holds a training run (log.jsonl)'). Into a folder that holds another run, it is refused."""
    config = TrainingConfig(total_steps=2, learning_rate=1e-3, output_dir=str(tmp_path), progress=False)
    trainer = Trainer(new_model(), config, evaluate=lambda model: {"loss": 1.0})
    trainer.evaluate()
    trainer.train(step_data(pretraining_data()))
    assert [r["step"] for r in read_log(tmp_path / "log.jsonl")] == [0, 1, 2, 2]  # baseline, steps, final eval
    other = Trainer(new_model(), config, evaluate=lambda model: {"loss": 1.0})
    with pytest.raises(TrainingError, match="already holds a training run"):
        other.evaluate()
    with pytest.raises(TrainingError, match="already holds a training run"):
        other.save_checkpoint()


def test_a_torn_last_line_of_the_log_is_dropped_on_resume(tmp_path):
    """A run killed while writing a log line leaves it cut short: the resume drops it (it was a bare
    JSONDecodeError naming no file); a bad line anywhere else is named."""
    train(tmp_path, total_steps=2, save_every=1)
    with open(tmp_path / "log.jsonl", "a", encoding="utf-8") as log:
        log.write('{"step": 3, "lo')
    resumed = Trainer(new_model(), TrainingConfig(total_steps=3, learning_rate=1e-3, output_dir=str(tmp_path),
                                                  progress=False))
    resumed.resume(tmp_path / "checkpoint", allow_config_change=True)
    assert logged_steps(tmp_path) == [1, 2]
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    (tmp_path / "log.jsonl").write_text("\n".join([lines[0], "not json", *lines[1:]]) + "\n")
    with pytest.raises(ValueError, match=rf"{re.escape(str(tmp_path / 'log.jsonl'))}, line 2: not a JSON record"):
        Trainer(new_model(), resumed.config).resume(tmp_path / "checkpoint", allow_config_change=True)


def test_a_model_converted_to_another_dtype_resumes(tmp_path):
    """A transformers 5 config.json says "dtype"; a model loaded from it and converted keeps the file's word
    in its config, while its checkpoint says what the weights are: that is no other model config."""
    model = new_model().to(torch.bfloat16)
    model.config.extra["dtype"] = "float32"  # as from_pretrained(file, dtype="bfloat16") keeps it
    config = TrainingConfig(total_steps=2, learning_rate=1e-3, save_every=1, output_dir=str(tmp_path), progress=False)
    Trainer(model, config).train(step_data(pretraining_data()))
    again = new_model().to(torch.bfloat16)
    again.config.extra["dtype"] = "float32"
    trainer = Trainer(again, config)
    trainer.resume(tmp_path / "checkpoint")  # was: "saved from another model config; it differs in dtype"
    assert trainer.step == 2


# -- 2. a resume with other settings than the checkpoint's ---------------------------------------

def test_a_resume_with_another_schedule_says_what_changed_and_is_refused_unless_allowed(tmp_path):
    train(tmp_path, total_steps=2, save_every=1)
    changed = TrainingConfig(total_steps=5, learning_rate=2e-3, adam_betas=(0.8, 0.99), output_dir=str(tmp_path),
                             progress=False, seed=7, save_every=3)  # seed and save_every change no schedule
    trainer = Trainer(new_model(), changed)
    with pytest.raises(TrainingError, match=re.escape(
            f"{tmp_path / 'checkpoint'} was saved with other training settings: learning_rate 0.001 -> 0.002, "
            "adam_betas (0.9, 0.999) -> (0.8, 0.99), total_steps 2 -> 5; ") + ".*allow_config_change=True"):
        trainer.resume(tmp_path / "checkpoint")  # was: resumed silently, on a schedule that jumps at the seam
    assert trainer.step == 0
    trainer.resume(tmp_path / "checkpoint", allow_config_change=True)
    assert trainer.step == 2
    # The optimizer goes on with the new settings, not the ones stored with its state.
    assert all(group["betas"] == (0.8, 0.99) for group in trainer.optimizer.param_groups)
    trainer.train(step_data(pretraining_data()))
    assert logged_steps(tmp_path) == [1, 2, 3, 4, 5]


def test_a_resume_whose_trainable_parameters_differ_names_the_checkpoint(tmp_path):
    train(tmp_path, total_steps=2)
    model = new_model()
    for param in model.bert.embeddings.parameters():
        param.requires_grad = False
    trainer = Trainer(model, TrainingConfig(total_steps=2, learning_rate=1e-3, output_dir=str(tmp_path),
                                            progress=False))
    with pytest.raises(TrainingError, match=rf"{re.escape(str(tmp_path / 'checkpoint'))}: its optimizer state does "
                                            r"not fit this model's trainable parameters"):
        trainer.resume(tmp_path / "checkpoint")  # was: torch's ValueError about parameter groups


# -- 3. settings that write nothing, or a schedule that cannot run -------------------------------

def test_settings_that_write_nothing_or_never_finish_warming_up_are_refused(tmp_path):
    with pytest.raises(ValueError, match="TrainingConfig.output_dir must be a folder's path or None, got ''"):
        TrainingConfig(save_every=2, output_dir="")  # was: trained, wrote nothing
    with pytest.raises(ValueError, match="TrainingConfig.output_dir must be a folder's path or None, got ''"):
        TrainingConfig(output_dir="")
    with pytest.raises(ValueError, match=r"TrainingConfig.warmup_steps \(10\) must not exceed total_steps \(5\)"):
        TrainingConfig(warmup_steps=10, total_steps=5)  # was: accepted; the peak learning rate never reached
    assert TrainingConfig(warmup_steps=5, total_steps=5).warmup_steps == 5
    a_file = tmp_path / "run"
    a_file.write_text("")
    with pytest.raises(NotADirectoryError, match=f"TrainingConfig.output_dir {re.escape(str(a_file))} is a file"):
        Trainer(new_model(), TrainingConfig(output_dir=str(a_file)))  # was: [Errno 17] File exists


# -- 4. one writer per folder ---------------------------------------------------------------------

SLOW_SAVER = """
import sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_training_loop import new_model, pretraining_data, step_data
from minibert.training.loop import Trainer, TrainingConfig

out, ready, go = map(Path, sys.argv[1:])
model = new_model()
save, saves = model.save_pretrained, []

def slow_save(folder, **kwargs):  # the second save (step 2) waits, half-written, until told to go on
    save(folder, **kwargs)
    saves.append(folder)
    if len(saves) == 2:
        ready.touch()
        deadline = time.monotonic() + 120
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

model.save_pretrained = slow_save
Trainer(model, TrainingConfig(total_steps=2, learning_rate=1e-3, save_every=1, output_dir=str(out),
                              progress=False)).train(step_data(pretraining_data()))
"""


def start_slow_saver(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """A process training into tmp_path/run, stopped in the middle of its second save."""
    out, ready = tmp_path / "run", tmp_path / "ready"
    process = subprocess.Popen([sys.executable, "-c", SLOW_SAVER.format(tests=str(ROOT / "tests")),
                                str(out), str(ready), str(tmp_path / "go")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 120
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the training process did not reach its second save: {process.communicate()[1][-3000:]}")
        time.sleep(0.05)
    return process, out


def test_a_second_trainer_on_a_folder_in_use_is_refused_and_the_first_saves_intact(tmp_path):
    process, out = start_slow_saver(tmp_path)
    try:
        other = Trainer(new_model(), TrainingConfig(total_steps=3, learning_rate=1e-3, output_dir=str(out),
                                                    progress=False))
        with pytest.raises(TrainingError, match=rf"{re.escape(str(out))} is in use by another Trainer "
                                                rf"\(process {process.pid}\)"):
            other.resume(out / "checkpoint")  # was: resumed, and its save deleted the other's half-written one
            other.train(step_data(pretraining_data()))
    finally:
        (tmp_path / "go").touch()
        _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-3000:]
    assert torch.load(out / "checkpoint" / "training_state.pt", weights_only=True)["step"] == 2
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint", "log.jsonl", "loss.png"]  # no lock file left


def test_a_run_killed_while_saving_leaves_no_lock_and_its_folder_resumes(tmp_path):
    """kill -9 in the middle of the step-2 save: the kernel drops the dead process's lock, the resume
    rewinds the log to the step-1 checkpoint, and the next save clears the half-written folder."""
    process, out = start_slow_saver(tmp_path)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert logged_steps(out) == [1, 2] and list(out.glob(".checkpoint.tmp-*"))
    trainer = Trainer(new_model(), TrainingConfig(total_steps=3, learning_rate=1e-3, save_every=1,
                                                  output_dir=str(out), progress=False))
    trainer.resume(out / "checkpoint", allow_config_change=True)  # total_steps 2 -> 3
    assert trainer.step == 1
    trainer.train(step_data(pretraining_data()))
    assert logged_steps(out) == [1, 2, 3]
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint", "log.jsonl", "loss.png"]


# -- 6. a damaged checkpoint ----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["training_state.pt", "model.safetensors"])
def test_a_truncated_checkpoint_file_is_named_with_what_to_use_instead(tmp_path, name):
    train(tmp_path, total_steps=2)
    shutil.copytree(tmp_path / "checkpoint", tmp_path / "intact")
    path = tmp_path / "checkpoint" / name
    path.write_bytes(path.read_bytes()[:1000])
    again = Trainer(new_model(), TrainingConfig(total_steps=2, learning_rate=1e-3, output_dir=str(tmp_path),
                                                progress=False))
    with pytest.raises(TrainingError, match=rf"^{re.escape(str(path))} is truncated or corrupt \(.+\); "
                                            rf"no older checkpoint is kept in {re.escape(str(tmp_path))}"):
        again.resume(tmp_path / "checkpoint")  # was: miniz's RuntimeError, or a SafetensorError naming no file
    # A run killed between a save's last two renames keeps the previous checkpoint too: named as the way out.
    older = tmp_path / ".checkpoint.old"
    (tmp_path / "intact").rename(older)
    with pytest.raises(TrainingError, match=rf"truncated or corrupt .+; an older checkpoint is {re.escape(str(older))}: "
                                            "resume from it"):
        again.resume(tmp_path / "checkpoint")
    again.resume(older)
    assert again.step == 2


# -- 1, 5, 7. the training programs --------------------------------------------------------------

@pytest.fixture
def no_data_preparation(monkeypatch):
    """Usage errors must come before the minutes of data preparation: fail if it starts."""
    def prepare(*args, **kwargs):
        raise AssertionError("data preparation started")

    monkeypatch.setattr(pretrain, "build_data", prepare)
    monkeypatch.setattr(finetune_cross_encoder, "articles", prepare)


def usage_error(program, argv, capsys) -> str:
    """argparse's usage lines, then the one line that says what is wrong: that line."""
    with pytest.raises(SystemExit) as exit_:
        program.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err, err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize("program", [pretrain, finetune_cross_encoder])
def test_out_that_is_a_file_or_holds_a_run_is_a_usage_error_before_any_data_preparation(
        program, tmp_path, capsys, no_data_preparation):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    assert f"argument --out: {a_file} is a file, not a folder" in usage_error(  # was: [Errno 17], after the data
        program, ["--out", str(a_file), "--steps", "2"], capsys)
    assert f"argument --out: {a_file} is a file, not a folder" in usage_error(
        program, ["--out", str(a_file / "run"), "--steps", "2"], capsys)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "log.jsonl").write_text("")
    message = usage_error(program, ["--out", str(tmp_path / "run"), "--steps", "2"], capsys)
    assert f"argument --out: {tmp_path / 'run'} is not empty (log.jsonl)" in message and "--resume" in message
    message = usage_error(program, ["--out", str(tmp_path / "run"), "--resume"], capsys)
    assert f"--resume: {tmp_path / 'run'} holds no checkpoint to resume" in message
    (tmp_path / "run" / "checkpoint").mkdir()
    (tmp_path / "run" / "checkpoint" / "training_state.pt").write_text("")
    message = usage_error(program, ["--out", str(tmp_path / "run"), "--resume", "--steps", "5"], capsys)
    assert "--resume goes on with the run's own --steps" in message


def test_pretrain_resume_goes_on_from_the_last_checkpoint_in_out(tmp_path, monkeypatch):
    out = tmp_path / "run"
    batches = pretrain._MaskedOnly.__call__

    def killed_at_step_three(self, step):
        if step == 3:
            raise KeyboardInterrupt
        return batches(self, step)

    monkeypatch.setattr(pretrain._MaskedOnly, "__call__", killed_at_step_three)
    with pytest.raises(KeyboardInterrupt):
        pretrain.run("tiny", out=out, steps=4, progress=False, max_documents=60)
    assert logged_steps(out) == [1, 2, 3]
    monkeypatch.setattr(pretrain._MaskedOnly, "__call__", batches)
    report = pretrain.run("tiny", out=out, progress=False, max_documents=60, resume=True)
    assert logged_steps(out) == [1, 2, 3, 4] and report["steps"] == 4
    assert len(report["losses"]["first"]) == 4  # the whole run's, read back from the log
    assert json.loads((out / "metrics.json").read_text())["steps"] == 4


def test_a_training_error_is_one_line_after_the_progress_bar(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        finetune_cross_encoder.main(["--learning-rate", "1e30", "--steps", "2", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and "Traceback" not in err, err  # was: a traceback around the message
    bar, message = err.rstrip("\n").rsplit("\n", 1)  # the bar's last drawing ends its line; the message has one
    assert bar.startswith("\rtraining:") and "error" not in bar, err
    assert re.fullmatch(r"python -m tasks\.finetune_cross_encoder: error: the loss became (nan|inf) at step 2; "
                        r"stopped\. The last good checkpoint, kept as it was, is .+\.", message), err
