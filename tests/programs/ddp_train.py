"""Train a tiny classifier for a few steps, in one process or under torchrun, and save its weights.

    python tests/programs/ddp_train.py OUT.safetensors
    python -m torch.distributed.run --nproc_per_node=2 tests/programs/ddp_train.py OUT.safetensors

The global batch is 8 either way: one process takes all 8, two processes take 4 each and
DistributedDataParallel averages their gradients. Dropout is off, so both runs must end with the
same weights. tests/test_training_loop.py runs both and compares.

With --rank0-out-of-time, rank 0 alone gets a time budget it has already used up, as when one
machine is slower: every process must still stop at the same step, save, and exit.
"""

import sys

import torch
from safetensors.torch import save_file

import minibert
from minibert.training.loop import StepData, Trainer, TrainingConfig, setup_distributed, teardown_distributed


def collate(rows, generators):
    ids = torch.stack([r[0] for r in rows])
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.stack([r[1] for r in rows])}


def main(out: str, rank0_out_of_time: bool = False) -> None:
    rank, world = setup_distributed()
    config = minibert.BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=24, max_position_embeddings=16, hidden_dropout_prob=0.0,
                                 attention_probs_dropout_prob=0.0)
    config.num_labels = 3
    torch.manual_seed(0)
    model = minibert.BertForSequenceClassification(config)
    if torch.cuda.is_available():  # under torchrun on GPUs: one GPU per process, nccl between them
        model = model.to(f"cuda:{torch.cuda.current_device()}")
    g = torch.Generator().manual_seed(1)
    examples = [(torch.randint(1, 60, (10,), generator=g), torch.randint(0, 3, (), generator=g)) for _ in range(64)]
    data = StepData(examples, batch_size=8, collate=collate, seed=3, rank=rank, world_size=world)
    config = TrainingConfig(total_steps=4, learning_rate=1e-3, warmup_steps=1, progress=False)
    if rank0_out_of_time:
        config.output_dir = out + ".run"  # every process meets at the final save
        config.max_seconds = 0.0 if rank == 0 else None
    trainer = Trainer(model, config)
    losses = trainer.train(data)
    sys.stdout.write(f"rank {rank}: {len(losses)} steps\n")  # one write: the other process shares the pipe
    sys.stdout.flush()
    if rank == 0:
        if torch.distributed.is_initialized():
            print(f"backend {torch.distributed.get_backend()}, {world} process(es)", flush=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, out)
    teardown_distributed()


if __name__ == "__main__":
    main(sys.argv[1], "--rank0-out-of-time" in sys.argv[2:])
