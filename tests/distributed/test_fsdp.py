"""FSDP2 on CPU with gloo: sharding, equivalence with one process, resume on 2 and on 1, HF export."""

import csv
import glob
import json
import os
import re
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp

from helpers import ROOT
from pedgpt.common.errors import CheckpointError
from pedgpt.training.checkpointing import verify_checkpoint

pytestmark = pytest.mark.distributed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tiny_init(tmp_path_factory):
    """A tiny HF export (model + tokenizer trained on the demo corpus) to start every run from."""
    from helpers import compose
    from pedgpt.training.pipeline import prepare_initial_export

    run = tmp_path_factory.mktemp("run")
    cfg = compose(
        [
            f"paths.cache_dir={tmp_path_factory.mktemp('cache')}",
            "model.arch.hidden_size=32",
            "model.arch.intermediate_size=64",
            "model.arch.num_hidden_layers=2",
        ]
    )
    return prepare_initial_export(cfg, str(run))


def _shard_worker(rank: int, world: int, port: int, init_dir: str, out_dir: str, q) -> None:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh

    from pedgpt.distributed.fsdp import build_sharded, gather_full_state_dict
    from pedgpt.models.build import load_pretrained
    from pedgpt.models.logps import SequenceLogProbs

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        mesh = init_device_mesh("cpu", (world,))
        net = build_sharded(
            init_dir,
            lambda lm: lm,
            lambda lm: SequenceLogProbs(lm),
            mesh,
            torch.device("cpu"),
            {"param_dtype": "float32", "reduce_dtype": "float32"},
        )
        shapes = {n: (tuple(p.to_local().shape), tuple(p.shape)) for n, p in net.named_parameters()}
        ids = torch.arange(3, 19).view(2, 8)
        with torch.no_grad():
            sharded = net(ids, ids)[0]
        # one AdamW step, then the bytes this rank really holds for parameters, gradients and optimizer state
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
        loss = -net(ids, ids)[0].sum()
        loss.backward()
        opt.step()
        local = lambda t: t.to_local() if hasattr(t, "to_local") else t  # noqa: E731
        held = {
            "params": sum(local(p).numel() * local(p).element_size() for p in net.parameters()),
            "grads": sum(local(p.grad).numel() * local(p.grad).element_size() for p in net.parameters()),
            "optimizer": sum(
                local(v).numel() * local(v).element_size()
                for st in opt.state.values()
                for k, v in st.items()
                if k != "step"
            ),
        }
        q.put(("held", rank, held))
        with torch.no_grad():
            trained = net(ids, ids)[0]
        full = gather_full_state_dict(net.lm)
        if rank == 0:
            net.lm.save_pretrained(out_dir, state_dict=full)
            ref = SequenceLogProbs(load_pretrained(init_dir))
            with torch.no_grad():
                unsharded = ref(ids, ids)[0]
                reloaded = SequenceLogProbs(load_pretrained(out_dir))(ids, ids)[0]
            q.put(("result", sharded.tolist(), unsharded.tolist(), trained.tolist(), reloaded.tolist()))  # plain data
        q.put(("shapes", rank, shapes))
    finally:
        dist.destroy_process_group()


def test_two_processes_each_hold_half_of_every_parameter_and_match_one_process(tiny_init, tmp_path):
    env_before = dict(os.environ)
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    port = _free_port()
    procs = [
        ctx.Process(target=_shard_worker, args=(r, 2, port, tiny_init, str(tmp_path / "export"), q)) for r in range(2)
    ]
    for p in procs:
        p.start()
    msgs = [q.get(timeout=240) for _ in range(5)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert dict(os.environ) == env_before
    shapes = {m[1]: m[2] for m in msgs if m[0] == "shapes"}
    for name, (local0, full) in shapes[0].items():
        local1 = shapes[1][name][0]
        assert local0[0] + local1[0] == full[0], name  # the two shards make up dim 0
        assert abs(local0[0] - local1[0]) <= 1, name  # each holds half
        assert local0[1:] == full[1:]
    sharded, unsharded, trained, reloaded = (torch.tensor(x) for x in next(m for m in msgs if m[0] == "result")[1:])
    assert torch.allclose(sharded, unsharded, atol=1e-5)
    assert not torch.allclose(trained, unsharded, atol=1e-3)  # the step changed the model
    assert torch.allclose(reloaded, trained, atol=1e-5)  # the consolidated HF export is the trained model
    # the dry-run planner's model-state bytes equal what rank 0 (the largest shards) really holds
    from pedgpt.models.build import load_pretrained
    from pedgpt.training.planner import model_state_bytes

    tensors = [(tuple(p.shape), True) for p in load_pretrained(tiny_init).parameters()]
    held0 = next(m[2] for m in msgs if m[0] == "held" and m[1] == 0)
    assert model_state_bytes(tensors, 2) == held0


def _train(args, run_dir, timeout=600):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pedgpt.train",
            *args,
            f"hydra.run.dir={run_dir}",
            "logger=csv",
            "progress_bar=false",
            "trainer.log_every_n_steps=1",
            "trainer.limit_val_batches=1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if r.returncode:
        open(os.path.join(os.path.dirname(run_dir), "failed.log"), "w").write(r.stderr)
    assert r.returncode == 0, r.stderr[-2000:]
    return r


def _losses(run_dir, stage):
    out = {}
    for f in sorted(glob.glob(os.path.join(run_dir, stage, "metrics.csv"))):
        for row in csv.DictReader(open(f)):
            if row.get("train/loss"):
                out[int(row["step"])] = float(row["train/loss"])
    return out


FSDP2 = [
    "trainer=fsdp",
    "trainer.accelerator=cpu",
    "trainer.devices=2",
    "trainer.fsdp.param_dtype=float32",
    "trainer.gradient_clip_val=null",
]
ONE = ["trainer=cpu", "trainer.gradient_clip_val=null"]


@pytest.mark.slow
def test_fsdp_two_processes_equal_one_process_and_resume_on_two_and_one(tiny_init, tmp_path):
    common = [
        f"init_from={tiny_init}",
        "pipeline=[sft,dfpo,mole]",
        "trainer.max_steps=4",
        "checkpoint_every_n_steps=2",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "sft.packing=false",
    ]
    per_stage_2 = [f"{s}.batch_size=2" for s in ("sft", "dfpo", "mole")]
    per_stage_1 = [f"{s}.batch_size=4" for s in ("sft", "dfpo", "mole")]
    two, one = str(tmp_path / "two"), str(tmp_path / "one")
    _train(FSDP2 + common + per_stage_2, two)
    _train(ONE + common + per_stage_1, one)
    for stage in ("sft", "dfpo", "mole"):
        a, b = _losses(two, stage), _losses(one, stage)
        assert sorted(a) == sorted(b) == [0, 1, 2, 3], stage  # logged at the pre-step global_step
        for s in a:
            assert a[s] == pytest.approx(b[s], rel=1e-4, abs=1e-5), (stage, s, a[s], b[s])
    assert os.path.exists(os.path.join(two, "sft", "export", "model.safetensors"))
    # resume the sharded SFT checkpoint of step 2 on 2 processes and on 1
    ckpt = os.path.join(two, "sft", "checkpoints", "step=2.ckpt")
    assert os.path.isdir(ckpt)
    for devices, bs in ((2, 2), (1, 4)):
        run = str(tmp_path / f"resume{devices}")
        _train(
            [
                "trainer=fsdp",
                "trainer.accelerator=cpu",
                f"trainer.devices={devices}",
                "trainer.fsdp.param_dtype=float32",
                "trainer.gradient_clip_val=null",
                f"init_from={tiny_init}",
                "pipeline=[sft]",
                "trainer.max_steps=4",
                f"paths.cache_dir={tmp_path / 'cache'}",
                "sft.packing=false",
                f"sft.batch_size={bs}",
                f"ckpt_path='{ckpt}'",
            ],
            run,
        )
        resumed, full = _losses(run, "sft"), _losses(two, "sft")
        assert sorted(resumed) == [2, 3], devices
        for s in (2, 3):
            assert resumed[s] == pytest.approx(full[s], rel=1e-4, abs=1e-5), (devices, s)
    # every rank's shard files carry a checksum; damage in rank 1's shard is one line naming that file
    listed = set(json.load(open(os.path.join(ckpt, "checksums.json")))["files"])
    on_disk = set(os.listdir(ckpt)) - {"checksums.json"}
    assert listed == on_disk and any(f.startswith("__0_") for f in listed) and any(f.startswith("__1_") for f in listed)
    shard = os.path.join(ckpt, sorted(f for f in listed if f.startswith("__1_"))[0])
    with open(shard, "r+b") as f:
        f.seek(os.path.getsize(shard) // 2)
        f.write(b"\xff" * 64)
    with pytest.raises(CheckpointError, match=rf"^{re.escape(shard)}: sha256 differs from its checksum record"):
        verify_checkpoint(ckpt)


@pytest.mark.slow
def test_accumulation_on_two_processes_equals_one_big_batch_on_one(tiny_init, tmp_path):
    """2 processes × 2 accumulated micro-batches of 1 = one process with batches of 4, step for step, for SFT,
    DFPO and MoE-LoRA (a token router: no noise draws that differ between the layouts)."""
    common = [
        f"init_from={tiny_init}",
        "pipeline=[sft,dfpo,mole]",
        "trainer.max_steps=3",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "sft.packing=false",
        "adapter.router=token",
        "gen.enabled=false",
    ]
    two, one = str(tmp_path / "two"), str(tmp_path / "one")
    _train(
        FSDP2 + common + ["trainer.accumulate_grad_batches=2"] + [f"{s}.batch_size=1" for s in ("sft", "dfpo", "mole")],
        two,
    )
    _train(ONE + common + [f"{s}.batch_size=4" for s in ("sft", "dfpo", "mole")], one)
    for stage in ("sft", "dfpo", "mole"):
        a, b = _losses(two, stage), _losses(one, stage)
        assert sorted(a) == sorted(b) == [0, 1, 2], stage
        for s in a:
            assert a[s] == pytest.approx(b[s], rel=1e-4, abs=1e-5), (stage, s, a[s], b[s])
