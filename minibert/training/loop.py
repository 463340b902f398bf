"""The training loop, for pre-training and for fine-tuning alike. Every optimizer step does, in order:

    1. forward      the model reads a micro-batch and, given its labels, returns the loss
    2. loss         scaled by 1 / (micro-batches per step), so the accumulated gradient is a mean
    3. backward     gradients, added up over the micro-batches (and averaged over processes by DDP)
    4. clip         the gradients' global norm, to max_grad_norm
    5. step         AdamW: Adam with decoupled weight decay, none on biases and LayerNorm weights
    6. schedule     the next learning rate: a linear warm-up, then a linear decay to 0

The data is a function of the step (`StepData`), and a checkpoint holds the model, the optimizer,
the step and the random-number states. So a run stopped at step k and resumed gives the losses the
uninterrupted run gives. Under torchrun, each process takes its share of every batch and
DistributedDataParallel averages the gradients; only rank 0 writes files.

    torchrun --nproc_per_node=2 -m tasks.pretrain ...      (gloo on CPU, nccl on CUDA)

tests/test_training_loop.py runs it: the resume, the torchrun equivalence and the bad-input cases.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import gc
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Sequence

import torch
import torch.distributed as dist

from ..bert.checks import positive_int
from ..bert.files import write_atomically, write_folder_atomically
from .log import JsonlLog, plot_loss_curve


class TrainingError(RuntimeError):
    """Training cannot go on: the loss is not a number, or a checkpoint does not fit the model."""


@dataclass
class TrainingConfig:
    learning_rate: float = 1e-4  # the peak, reached at the end of the warm-up
    weight_decay: float = 0.01  # decoupled (AdamW), on weight matrices only
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_epsilon: float = 1e-6  # BERT's; PyTorch's default is 1e-8
    warmup_steps: int = 0  # linear warm-up from 0 to learning_rate
    total_steps: int = 1000  # optimizer steps; the learning rate reaches 0 at the last one
    grad_accumulation: int = 1  # micro-batches per optimizer step
    max_grad_norm: float = 1.0  # clip the gradients' global L2 norm to this
    eval_every: int = 0  # evaluate every N steps (0: only at the end, if an evaluation is given)
    save_every: int = 0  # checkpoint every N steps (0: only at the end); needs output_dir
    output_dir: str | None = None  # log.jsonl, loss.png, checkpoint/ and the final model go here; under
    # torchrun give every process the same config: only rank 0 writes, but all of them meet at each save
    seed: int = 0
    progress: bool = True  # a tqdm bar with the loss, the learning rate and tokens per second
    max_seconds: float | None = None  # stop early, after the step that passes this wall-clock budget

    def __post_init__(self) -> None:
        for name in ("total_steps", "grad_accumulation"):
            positive_int(f"TrainingConfig.{name}", getattr(self, name))
        for name in ("warmup_steps", "eval_every", "save_every"):  # 0: none, or only at the end
            positive_int(f"TrainingConfig.{name}", getattr(self, name), at_least=0)
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(f"TrainingConfig.learning_rate must be a positive number, got {self.learning_rate!r}")
        # Each of these trained "successfully" into a wrong model before it was refused: a negative norm
        # flips the gradients (the loss climbs), 0 zeroes them, and an epsilon of 0 divides 0 by 0 for a
        # weight that no batch reaches (unused position embeddings became NaN and were saved).
        if not (self.adam_epsilon > 0 and math.isfinite(self.adam_epsilon)):
            raise ValueError(f"TrainingConfig.adam_epsilon must be a positive number, got {self.adam_epsilon!r}")
        if not self.max_grad_norm > 0:  # inf is allowed: no clipping
            raise ValueError(f"TrainingConfig.max_grad_norm must be above 0 (inf: no clipping), got {self.max_grad_norm!r}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise ValueError(f"TrainingConfig.weight_decay must be a number >= 0, got {self.weight_decay!r}")
        if len(self.adam_betas) != 2 or not all(0 <= beta < 1 for beta in self.adam_betas):
            raise ValueError(f"TrainingConfig.adam_betas must be two numbers in [0, 1), got {self.adam_betas!r}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError(f"TrainingConfig.max_seconds must be above 0, or None for no limit, got {self.max_seconds!r}")
        if self.warmup_steps > self.total_steps:  # the peak learning rate would never be reached
            raise ValueError(f"TrainingConfig.warmup_steps ({self.warmup_steps}) must not exceed "
                             f"total_steps ({self.total_steps})")
        if self.output_dir == "":  # "" is no folder (it wrote nothing), nor clearly "here": say "." for that
            raise ValueError("TrainingConfig.output_dir must be a folder's path or None, got ''")
        if self.save_every and self.output_dir is None:
            raise ValueError(f"TrainingConfig.save_every={self.save_every} needs output_dir: "
                             "checkpoints are written there")


# The settings a resume must find as the checkpoint has them: each shapes the learning rate of every step
# or what the optimizer does with it. (seed, save_every, eval_every, progress, max_seconds and output_dir
# may change: the random-number states come from the checkpoint.)
SCHEDULE_FIELDS = ("learning_rate", "weight_decay", "adam_betas", "adam_epsilon", "warmup_steps", "total_steps",
                   "grad_accumulation", "max_grad_norm")


# ---------------------------------------------------------------------------------------------
# The optimizer and the schedule, as BERT used them.
# ---------------------------------------------------------------------------------------------

def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Two groups for AdamW: weight matrices decay; biases and LayerNorm weights do not (decaying
    a LayerNorm's scale toward 0 would fight the normalisation it exists to do)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():  # a tied tensor appears once
        if not param.requires_grad:
            continue
        (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def learning_rate_at(step: int, config: TrainingConfig) -> float:
    """The learning rate of optimizer step `step` (counted from 0): a linear warm-up over
    warmup_steps, then a linear decay that would reach 0 just after the last step.

    >>> [learning_rate_at(s, TrainingConfig(learning_rate=1.0, warmup_steps=2, total_steps=6)) for s in range(6)]
    [0.5, 1.0, 1.0, 0.75, 0.5, 0.25]
    """
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    return config.learning_rate * (config.total_steps - step) / (config.total_steps - config.warmup_steps)


# ---------------------------------------------------------------------------------------------
# The data of each step: a pure function of the step number.
# ---------------------------------------------------------------------------------------------

class StepData:
    """The micro-batches of optimizer step `step` for this process: `step_data(step) -> [batch, ...]`.

    Each epoch visits the examples in a fresh order drawn from (seed, epoch). A step takes the next
    `batch_size` examples (the global batch, over all processes and micro-batches), and this process
    gets its share: micro-batch a of rank r holds positions (a * world + r) * m .. + m of the step's
    examples, m = batch_size / (grad_accumulation * world). `collate(examples, generators)` builds a
    batch; each example brings its own generator, seeded by (seed, epoch, example), so random choices
    such as masking do not depend on how the batch was split.
    """

    def __init__(self, examples: Sequence, batch_size: int, collate: Callable, seed: int = 0,
                 grad_accumulation: int = 1, rank: int = 0, world_size: int = 1):
        if batch_size % (grad_accumulation * world_size):
            raise ValueError(f"batch_size {batch_size} must divide evenly into {grad_accumulation} micro-batches "
                             f"on each of {world_size} process(es)")
        if len(examples) < batch_size:
            raise ValueError(f"{len(examples)} examples are fewer than one batch of {batch_size}")
        self.examples, self.batch_size, self.collate, self.seed = examples, batch_size, collate, seed
        self.grad_accumulation, self.rank, self.world_size = grad_accumulation, rank, world_size
        self.steps_per_epoch = len(examples) // batch_size  # the remainder of each epoch is left out

    def __call__(self, step: int) -> list[dict]:
        epoch, index = divmod(step, self.steps_per_epoch)
        order = torch.randperm(len(self.examples), generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))
        chosen = order[index * self.batch_size:(index + 1) * self.batch_size].tolist()
        m = self.batch_size // (self.grad_accumulation * self.world_size)
        batches = []
        for a in range(self.grad_accumulation):
            start = (a * self.world_size + self.rank) * m
            ids = chosen[start:start + m]
            generators = [torch.Generator().manual_seed((self.seed * 100_003 + epoch) * 1_000_003 + i) for i in ids]
            batches.append(self.collate([self.examples[i] for i in ids], generators))
        return batches


def to_device(batch: dict, device: torch.device) -> dict:
    """The batch's tensors on the model's device (a GPU, when the model was moved there)."""
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


# ---------------------------------------------------------------------------------------------
# Evaluation: what a held-out set says about the model.
# ---------------------------------------------------------------------------------------------

@torch.no_grad()
def evaluate_pretraining(model: torch.nn.Module, batches: Sequence[dict]) -> dict[str, float]:
    """Masked-LM top-1 and top-5 accuracy over the masked positions, next-sentence accuracy, and the
    mean loss, over batches made by MaskedPairBatches. Works for BertForPreTraining."""
    was_training = model.training
    model.eval()
    top1 = top5 = predicted = nsp_right = pairs = 0
    loss_sum = 0.0
    for batch in batches:
        batch = to_device(batch, next(model.parameters()).device)
        out = model.masked_positions_forward(**batch)  # logits at the masked positions only: (n, V)
        picked = batch["labels"] != -100  # (B, T)
        top = out.prediction_logits.topk(5, dim=-1).indices  # (n, 5)
        truth = batch["labels"][picked][:, None]  # (n, 1)
        top1 += int((top[:, :1] == truth).sum())
        top5 += int((top == truth).any(dim=-1).sum())
        predicted += int(picked.sum())
        nsp_right += int((out.seq_relationship_logits.argmax(-1) == batch["next_sentence_label"]).sum())
        pairs += len(batch["next_sentence_label"])
        loss_sum += out.loss.item() * len(batch["next_sentence_label"])
    model.train(was_training)
    return {"mlm_top1": top1 / predicted, "mlm_top5": top5 / predicted, "nsp_accuracy": nsp_right / pairs,
            "loss": loss_sum / pairs, "masked_tokens": predicted, "pairs": pairs}


@torch.no_grad()
def evaluate_classifier(model: torch.nn.Module, batches: Sequence[dict]) -> dict[str, float]:
    """Accuracy (one label per row) or mean squared error (one output, a regression), and the loss."""
    if not batches:
        raise ValueError("evaluate_classifier needs at least one batch; got none")
    was_training = model.training
    model.eval()
    right = rows = 0
    loss_sum = squared = 0.0
    for batch in batches:
        batch = to_device(batch, next(model.parameters()).device)
        out = model(**batch)
        labels = batch["labels"]
        if out.logits.shape[-1] == 1:
            squared += float(((out.logits[:, 0] - labels.float()) ** 2).sum())
        else:
            right += int((out.logits.argmax(-1) == labels).sum())
        rows += len(labels)
        loss_sum += out.loss.item() * len(labels)
    model.train(was_training)
    metric = {"mse": squared / rows} if out.logits.shape[-1] == 1 else {"accuracy": right / rows}
    return {**metric, "loss": loss_sum / rows, "rows": rows}


# ---------------------------------------------------------------------------------------------
# Processes: torchrun sets RANK and WORLD_SIZE; one process needs none of it.
# ---------------------------------------------------------------------------------------------

def setup_distributed(device: str = "cuda" if torch.cuda.is_available() else "cpu") -> tuple[int, int]:
    """(rank, world size). Under torchrun, joins the process group: nccl when the model will be on
    GPUs (`device` "cuda", one per process), gloo when it stays on the CPU."""
    launched = "RANK" in os.environ and "WORLD_SIZE" in os.environ  # torchrun sets both, even for one process
    if launched and not dist.is_initialized():
        on_gpu = str(device).startswith("cuda")
        dist.init_process_group(backend="nccl" if on_gpu else "gloo")
        if on_gpu:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def teardown_distributed() -> None:
    """Leave the process group, all processes together, after the last Trainer.train(). Without the
    barrier a process that finished first tears gloo down while another still saves; and a DDP
    wrapper still alive at that point can abort the process at exit ("terminate called without an
    active exception"), failing the whole torchrun. Does nothing outside torchrun."""
    if dist.is_initialized():
        gc.collect()  # DDP wrappers dropped by Trainer.train() but held in reference cycles
        dist.barrier()
        dist.destroy_process_group()


# ---------------------------------------------------------------------------------------------
# The output folder: its checkpoint, and one writer at a time.
# ---------------------------------------------------------------------------------------------

def find_checkpoint(checkpoint: Path) -> Path:
    """`checkpoint` as given; but where a run was killed between save_checkpoint's two renames, the
    folder `checkpoint/` is missing and the previous one, complete, is `.checkpoint.old` beside it:
    it is renamed back, and returned."""
    old = checkpoint.parent / ".checkpoint.old"
    if checkpoint.name == "checkpoint" and not checkpoint.exists() and (old / "training_state.pt").is_file():
        with contextlib.suppress(OSError):  # another process of the same run may have just done it
            old.rename(checkpoint)
    return checkpoint


def last_checkpoint(output_dir: str | Path) -> Path | None:
    """The checkpoint a run left in `output_dir`, where Trainer.resume finds it (see find_checkpoint), or
    None when there is none."""
    checkpoint = find_checkpoint(Path(output_dir) / "checkpoint")
    return checkpoint if (checkpoint / "training_state.pt").is_file() else None


def read_training_checkpoint(checkpoint: str | Path) -> tuple[int, TrainingConfig]:
    """The step a checkpoint was saved at, and the TrainingConfig it was saved with.

    Args:
        checkpoint: a checkpoint folder, as save_checkpoint writes it (output_dir/checkpoint).
    Returns:
        (step, config); the training programs' --resume plans the rest of the run from them.
    Raises:
        TrainingError: the folder has no training_state.pt, or it is truncated or corrupt.
    """
    checkpoint = find_checkpoint(Path(checkpoint))
    state = _read_training_state(checkpoint)
    saved = _saved_settings(state)
    return state["step"], TrainingConfig(**saved)


def _read_training_state(checkpoint: Path) -> dict:
    """training_state.pt: the step, the optimizer, the random-number states and the TrainingConfig."""
    path = checkpoint / "training_state.pt"
    if not path.is_file():
        raise TrainingError(f"{checkpoint} is not a training checkpoint: it has no training_state.pt")
    try:
        return torch.load(path, weights_only=True)
    except Exception as err:  # torch says "miniz error" or "unpickling" and names no file
        raise _damaged(path, err) from None


def _saved_settings(state: dict) -> dict:
    """The TrainingConfig a checkpoint was saved with, as keyword arguments (JSON keeps betas as a list)."""
    known = {field.name for field in dataclasses.fields(TrainingConfig)}
    saved = {k: v for k, v in json.loads(state["training_config"]).items() if k in known}
    saved["adam_betas"] = tuple(saved["adam_betas"])
    return saved


def _damaged(path: Path, err: Exception) -> TrainingError:
    """A checkpoint file that cannot be read, and the checkpoint to use instead if an older one is kept."""
    checkpoint = path.parent
    older = checkpoint.parent / ".checkpoint.old"
    if older != checkpoint and (older / "training_state.pt").is_file():
        instead = f"an older checkpoint is {older}: resume from it"
    else:
        instead = f"no older checkpoint is kept in {checkpoint.parent}; start again in an empty folder"
    detail = str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__
    return TrainingError(f"{path} is truncated or corrupt ({detail}); {instead}")


def lock_folder(folder: Path) -> IO:
    """Take `folder` for this trainer alone: an exclusive flock on `folder/.lock`, which holds the pid.

    Two Trainers writing into one folder would interleave their logs, overwrite each other's checkpoint,
    and the first to save would delete the other's half-written one as a dead run's leftover. The kernel
    drops a flock when its process ends, however it ends, so a run killed with kill -9 leaves no lock.

    Returns:
        the open lock file; unlock_folder(it) gives the folder back.
    Raises:
        TrainingError: another Trainer (in this process or another) holds the folder; names its pid.
    """
    path = folder / ".lock"
    while True:
        lock = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "unknown"  # empty for the instant before the holder writes it
            lock.close()
            raise TrainingError(f"{folder} is in use by another Trainer (process {holder}); two runs in one "
                                "folder would overwrite each other's checkpoints: wait for it to end, "
                                "or give this one another output_dir") from None
        # unlock_folder removes the file before letting go; if that happened between our open and our
        # flock, we hold a file no one else will see: open the one now at `path` instead.
        with contextlib.suppress(FileNotFoundError):
            if os.path.samestat(os.fstat(lock.fileno()), os.stat(path)):
                break
        lock.close()
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def unlock_folder(lock: IO) -> None:
    """Give back a folder taken by lock_folder; its .lock file goes with it."""
    os.unlink(lock.name)  # first, so no one can lock the file after we let go of it
    lock.close()


# ---------------------------------------------------------------------------------------------
# The trainer.
# ---------------------------------------------------------------------------------------------

class Trainer:
    def __init__(self, model: torch.nn.Module, config: TrainingConfig,
                 evaluate: Callable[[torch.nn.Module], dict] | None = None, tokenizer=None):
        if config.eval_every and evaluate is None:
            raise ValueError(f"TrainingConfig.eval_every={config.eval_every} needs an evaluation: "
                             "Trainer(model, config, evaluate=...), e.g. evaluate_pretraining on held-out batches")
        self.config, self.evaluate_fn, self.tokenizer = config, evaluate, tokenizer
        self.rank, self.world_size = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        self.model = model  # the model itself, to save and evaluate
        self.optimizer = torch.optim.AdamW(parameter_groups(model, config.weight_decay), lr=config.learning_rate,
                                           betas=config.adam_betas, eps=config.adam_epsilon)
        self.step = 0
        self.stopped_early = False  # set by train() when the time budget, not total_steps, ended the run
        self.out = Path(config.output_dir) if config.output_dir is not None else None
        if self.out is not None and self.out.exists() and not self.out.is_dir():
            raise NotADirectoryError(f"TrainingConfig.output_dir {self.out} is a file, not a folder")
        self.log = JsonlLog(self.out / "log.jsonl") if self.out and self.rank == 0 else None
        self._lock: IO | None = None  # output_dir's lock file, while train(), resume() or a save runs
        self._run_is_ours = False  # output_dir's run is this trainer's: train() started it, or resume() took it up
        torch.manual_seed(config.seed)  # dropout's randomness; the checkpoint carries it on
        self.device = next(model.parameters()).device  # batches follow the model: put it on a GPU first
        self._ddp = None  # under torchrun, DistributedDataParallel around the model while it trains

    @contextlib.contextmanager
    def _data_parallel(self):
        """Under torchrun, wrap the model in DDP, which averages the gradients over the processes in
        backward, for as long as training runs; then drop the wrapper. A wrapper left alive past
        teardown_distributed() can abort the process as Python exits."""
        if self.world_size == 1 or self._ddp is not None:
            yield
            return
        from torch.nn.parallel import DistributedDataParallel

        on_gpu = self.device.type == "cuda"
        self._ddp = DistributedDataParallel(self.model, device_ids=[self.device.index] if on_gpu else None)
        try:
            yield
        finally:
            self._ddp = None

    # -- the loop ----------------------------------------------------------------------------

    def train(self, step_data: Callable[[int], list[dict]]) -> list[float]:
        """Run from the current step to total_steps.

        Args:
            step_data: the micro-batches of each step, `step_data(step) -> [batch, ...]` (a StepData).
        Returns:
            each step's loss (the mean over this process's micro-batches).
        Raises:
            TrainingError: the loss became NaN or infinite; output_dir holds another run (its log and
                checkpoint: resume it, or give an empty folder); another Trainer is writing there.
        """
        with self._holding_output_dir(), self._data_parallel():
            self._refuse_another_run()
            return self._train(step_data)

    def _refuse_another_run(self) -> None:
        """A fresh run into a folder that holds a run is refused, not appended to: its log would read
        steps 1, 2, 3, 1, 2, ..., one curve drawn through both, and its first save would replace the
        other run's checkpoint. transformers' example scripts refused the same folder for the same reason
        (unless told --overwrite_output_dir); here the way on is Trainer.resume, or another folder."""
        if self.out is None or self.rank != 0 or self._run_is_ours:
            return
        found = [name for name, path in (("checkpoint/", self.out / "checkpoint"),
                                         (".checkpoint.old/", self.out / ".checkpoint.old"),
                                         ("log.jsonl", self.out / "log.jsonl")) if path.exists()]
        if found:
            checkpoint = last_checkpoint(self.out)
            way_on = (f"continue it with Trainer.resume({str(checkpoint)!r}) before train()" if checkpoint
                      else "it left no checkpoint to resume from")
            raise TrainingError(f"{self.out} already holds a training run ({', '.join(found)}): {way_on}, "
                                "or give an empty output_dir")
        self._run_is_ours = True

    def _train(self, step_data: Callable[[int], list[dict]]) -> list[float]:
        config = self.config
        self.model.train()
        losses = []
        started_at = time.perf_counter()
        budgeted = self._any_process(config.max_seconds is not None)
        # The bar closes on an error too, so that the error's message starts on a line of its own.
        with self._progress_bar() as bar:
            while self.step < config.total_steps:
                out_of_time = (config.max_seconds is not None
                               and time.perf_counter() - started_at > config.max_seconds)
                if budgeted and self._any_process(out_of_time):
                    self.stopped_early = True  # the learning rate had not decayed to 0 yet; the log says so
                    if self.log:
                        budget = (f"{config.max_seconds:.0f} s" if config.max_seconds is not None
                                  else "another process's")
                        self.log.write({"step": self.step, "stopped": f"time budget ({budget}) used"})
                    break
                started = time.perf_counter()
                loss, tokens = self.train_step(step_data(self.step))
                self.step += 1
                losses.append(loss)
                tokens_per_second = tokens * self.world_size / (time.perf_counter() - started)
                if not math.isfinite(loss):
                    raise TrainingError(f"the loss became {loss} at step {self.step}; stopped. "
                                        f"{self._last_checkpoint_note()} Try a lower learning_rate or check the data.")
                lr = self.optimizer.param_groups[0]["lr"]
                if self.log:
                    self.log.write({"step": self.step, "loss": loss, "lr": lr,
                                    "tokens_per_second": round(tokens_per_second)})
                if bar is not None:
                    bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tokens_per_second:,.0f}")
                    bar.update(1)
                if config.eval_every and self.step % config.eval_every == 0 and self.step < config.total_steps:
                    self.evaluate()
                if config.save_every and self.step % config.save_every == 0 and self.step < config.total_steps:
                    self.save_checkpoint()
        if self.evaluate_fn is not None:
            self.evaluate()
        if self.out:
            self.save_checkpoint()
        self.model.eval()
        return losses

    def _any_process(self, flag: bool) -> bool:
        """`flag` from this process, or'ed over all processes under torchrun. The processes must decide
        together when to stop: one that stopped alone would leave the others waiting in DDP's
        gradient exchange for ever."""
        if self.world_size == 1:
            return flag
        t = torch.tensor([float(flag)], device=self.device if dist.get_backend() == "nccl" else "cpu")
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def train_step(self, micro_batches: list[dict]) -> tuple[float, int]:
        """One optimizer step over the micro-batches: forward, loss, backward, clip, step, schedule."""
        with self._data_parallel():
            return self._train_step(micro_batches)

    def _train_step(self, micro_batches: list[dict]) -> tuple[float, int]:
        model = self._ddp if self._ddp is not None else self.model
        optimizer = self.optimizer
        for group in optimizer.param_groups:  # 6. schedule: this step's learning rate
            group["lr"] = learning_rate_at(self.step, self.config)
        total, tokens = 0.0, 0
        for i, batch in enumerate(micro_batches):
            batch = to_device(batch, self.device)
            last = i == len(micro_batches) - 1
            # DDP averages gradients at every backward; between micro-batches that traffic is wasted.
            sync = model.no_sync() if self.world_size > 1 and not last else contextlib.nullcontext()
            with sync:
                loss = model(**batch).loss  # 1. forward (the heads compute the loss from the labels)
                (loss / len(micro_batches)).backward()  # 2. loss scaled for accumulation, 3. backward
            total += loss.item() / len(micro_batches)
            tokens += int(batch["attention_mask"].sum()) if "attention_mask" in batch else batch["input_ids"].numel()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)  # 4. clip
        optimizer.step()  # 5. step
        optimizer.zero_grad(set_to_none=True)
        return total, tokens

    def evaluate(self) -> dict:
        self.model.eval()
        with torch.no_grad():
            metrics = self.evaluate_fn(self.model)
        self.model.train()
        if self.log:
            self._refuse_another_run()  # the first write into output_dir may be this one (a baseline before train)
            self.log.write({"step": self.step, "eval": metrics})
        return metrics

    # -- checkpoints --------------------------------------------------------------------------

    def save_checkpoint(self) -> Path | None:
        """`output_dir/checkpoint/`: the model (Hugging Face layout), the optimizer, the step and the
        random-number states. Written by bert/files.py's write_folder_atomically: into a temporary folder,
        then swapped in by renaming, so a run killed at any moment leaves the previous checkpoint or the
        new one, never half of one. (A folder cannot be swapped in one step: for an instant between the
        two renames the previous checkpoint is `.checkpoint.old`; find_checkpoint puts it back where a
        run killed in that instant left it.)"""
        if self.out is None:
            return None
        if self.rank == 0:
            with self._holding_output_dir():
                self._refuse_another_run()
                self._save_checkpoint()
        if self.world_size > 1:
            dist.barrier()
        return self.out / "checkpoint"

    def _save_checkpoint(self) -> None:
        """Rank 0's part of save_checkpoint."""
        write_folder_atomically(self.out / "checkpoint", self._write_checkpoint)
        if self.log:
            plot_loss_curve(self.out / "log.jsonl", self.out / "loss.png")

    def _write_checkpoint(self, folder: Path) -> None:
        """The checkpoint's files, into `folder` (empty, and not yet where a reader looks)."""
        # A resumable checkpoint keeps unmerged low-rank factors (lowrank.py) where the model has them.
        self.model.save_pretrained(folder, tokenizer=self.tokenizer, keep_low_rank=True)
        state = {
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),  # dropout's randomness
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "training_config": json.dumps(dataclasses.asdict(self.config)),
        }
        write_atomically(folder / "training_state.pt", lambda path: torch.save(state, path))

    def resume(self, checkpoint: str | Path, allow_config_change: bool = False) -> None:
        """Continue from a checkpoint: its weights, optimizer state, step and random-number states.

        The run goes on as if it had never stopped, so this trainer's model must have the checkpoint's
        model config, and its TrainingConfig the checkpoint's SCHEDULE_FIELDS. A checkpoint in this
        trainer's output_dir continues that folder's run: log.jsonl goes back to the checkpoint's step,
        so the steps done after it and done again are logged once.

        Args:
            checkpoint: a checkpoint folder, e.g. output_dir/checkpoint (see last_checkpoint).
            allow_config_change: go on although learning_rate, total_steps or another schedule or
                optimizer setting differs from the checkpoint's; this trainer's settings apply from here.
        Raises:
            TrainingError: not a training checkpoint; a file of it truncated or corrupt; saved from
                another model config, or for other trainable parameters; saved with other schedule
                settings (each named, old -> new) and allow_config_change not given; another Trainer
                is writing in output_dir.
        """
        with self._holding_output_dir():
            self._resume(find_checkpoint(Path(checkpoint)), allow_config_change)

    def _resume(self, checkpoint: Path, allow_config_change: bool) -> None:
        from ..bert.config import BertConfig

        state = _read_training_state(checkpoint)
        saved_config = BertConfig.from_json_file(checkpoint / "config.json").to_dict()
        ours = self.model.config.to_dict()
        differ = sorted(k for k in set(saved_config) | set(ours)
                        if k not in ("architectures", "torch_dtype", "dtype", "transformers_version")
                        and saved_config.get(k) != ours.get(k))
        if differ:
            raise TrainingError(f"{checkpoint} was saved from another model config; it differs in "
                                + ", ".join(f"{k} ({saved_config.get(k)!r} there, {ours.get(k)!r} here)"
                                            for k in differ))
        self._check_settings(checkpoint, _saved_settings(state), state["step"], allow_config_change)
        tensors = self._read_weights(checkpoint)
        missing, unexpected = self.model.load_state_dict(tensors, strict=False)
        missing = [k for k in missing if k != "cls.predictions.decoder.weight"]  # tied: stored once
        if missing or unexpected:
            raise TrainingError(f"{checkpoint}: the weights do not fit: missing {missing[:5]}, "
                                f"unexpected {unexpected[:5]}")
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except ValueError as err:  # torch: "loaded state dict contains a parameter group that doesn't match ..."
            raise TrainingError(f"{checkpoint}: its optimizer state does not fit this model's trainable "
                                f"parameters ({err}); freeze and unfreeze as the run did") from None
        # The optimizer's state brings the settings it was saved with; this trainer's go on from here
        # (the same, unless allow_config_change). The groups are parameter_groups': decay, then none.
        for group, weight_decay in zip(self.optimizer.param_groups, (self.config.weight_decay, 0.0)):
            group.update(betas=self.config.adam_betas, eps=self.config.adam_epsilon, weight_decay=weight_decay)
        self.step = state["step"]
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        if self.out is not None and checkpoint.parent.resolve() == self.out.resolve():
            self._run_is_ours = True
            if self.log:
                self.log.rewind(self.step)

    def _check_settings(self, checkpoint: Path, saved: dict, step: int, allow_config_change: bool) -> None:
        """Refuse, unless allowed, a resume whose schedule or optimizer differs from the checkpoint's:
        the learning rate would jump at the seam, and the run would be neither the old one nor a new one."""
        ours = {**dataclasses.asdict(self.config), "adam_betas": tuple(self.config.adam_betas)}
        changed = [f"{name} {saved[name]!r} -> {ours[name]!r}" for name in SCHEDULE_FIELDS
                   if name in saved and saved[name] != ours[name]]
        if changed and not allow_config_change:
            raise TrainingError(f"{checkpoint} was saved with other training settings: {', '.join(changed)}; "
                                "resume with the saved ones, or pass Trainer.resume(..., allow_config_change=True) "
                                f"to go on with these from step {step}")

    @staticmethod
    def _read_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        path = checkpoint / "model.safetensors"
        try:
            return load_file(str(path))
        except Exception as err:  # safetensors' own error names no file
            raise _damaged(path, err) from None

    # -- small helpers ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _holding_output_dir(self):
        """Hold output_dir's lock (lock_folder) while this trainer writes there. Rank 0 alone writes, so
        it alone locks. Reentrant: train() holds it across its saves."""
        if self.out is None or self.rank != 0 or self._lock is not None:
            yield
            return
        self.out.mkdir(parents=True, exist_ok=True)
        self._lock = lock_folder(self.out)
        try:
            yield
        finally:
            unlock_folder(self._lock)
            self._lock = None

    def _progress_bar(self):
        """A tqdm bar, or where none is wanted a context that gives None."""
        if not self.config.progress or self.rank != 0:
            return contextlib.nullcontext()
        from tqdm.auto import tqdm

        return tqdm(total=self.config.total_steps, initial=self.step, desc="training", unit="step")

    def _last_checkpoint_note(self) -> str:
        checkpoint = self.out / "checkpoint" if self.out else None
        if checkpoint and checkpoint.exists():
            return f"The last good checkpoint, kept as it was, is {checkpoint}."
        return "No checkpoint was written before it."
