"""Training frameworks (docs/frameworks/*.md): what the pages say about Hugging Face's Trainer,
Lightning and Accelerate that their blocks do not show.

Each test runs the definitions of its page's snippet (tiny models, a few steps, offline) and
imports its framework only when it runs: importing them costs seconds, and a GPU machine that
runs `make test-gpu` may not have them. Each framework's tests share the xdist group of its
page, so that the framework is imported once, in the worker that runs the page's blocks.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import warnings

import pytest
import torch

from sitebuild.layout import LIBRARY

from cookbook_testing.pages import SNIPPETS, assert_quoted, section_source, sections_namespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def definitions(snippet: str, *sections: str) -> dict:
    return sections_namespace(f"frameworks/{snippet}.py", *sections, module=f"frameworks_{snippet}")


def same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


# --- Hugging Face Trainer --------------------------------------------------------------------

HF = pytest.mark.xdist_group("frameworks_hugging_face_md")
NO_RNG_FILE = ("Didn't find an RNG file, if you are resuming a training that was launched in a "
               "distributed fashion, reproducibility is not guaranteed.")


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    pytest.importorskip("transformers")
    ns = definitions("hugging_face", "setup", "plain_optimizer")
    root = tmp_path_factory.mktemp("hf")
    ns["make_trainer"](str(root / "full"), max_steps=2, save_steps=1).train()
    ns["make_trainer"](str(root / "light"), max_steps=2, save_steps=1, save_only_model=True).train()
    return ns, root


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@HF
def test_hf_save_only_model_resume_says_so_only_at_info_level(hf):
    import transformers

    ns, root = hf
    logger = logging.getLogger("transformers")
    handler, old = _Records(), transformers.logging.get_verbosity()
    logger.addHandler(handler)
    transformers.logging.set_verbosity_info()
    try:
        resumed = ns["make_trainer"](str(root / "light"), max_steps=2, save_steps=1,
                                     save_only_model=True)
        resumed.train(resume_from_checkpoint=str(root / "light" / "checkpoint-1"))
    finally:
        transformers.logging.set_verbosity(old)
        logger.removeHandler(handler)
    about_rng = [r for r in handler.records if "RNG file" in r.getMessage()]
    assert [(r.levelno, r.getMessage()) for r in about_rng] == [(logging.INFO, NO_RNG_FILE)]
    # Nothing at WARNING or above mentions the optimizer, the scheduler or the missing files.
    loud = [r.getMessage() for r in handler.records if r.levelno >= logging.WARNING]
    assert not any(w in m.lower() for m in loud for w in ("optimizer", "scheduler", "rng"))
    # A fresh AdamW: one step taken since the resume, not two.
    assert int(resumed.optimizer.state_dict()["state"][0]["step"]) == 1
    assert_quoted("frameworks/hugging-face.md", NO_RNG_FILE)


@HF
def test_hf_rng_state_needs_numpy_globals(hf):
    _, root = hf
    path = root / "full" / "checkpoint-1" / "rng_state.pth"
    with pytest.raises(pickle.UnpicklingError, match="numpy"):
        torch.load(path, weights_only=True)
    from transformers.trainer_pt_utils import safe_globals
    with safe_globals():
        assert sorted(torch.load(path, weights_only=True)) == ["cpu", "numpy", "python"]


@HF
def test_hf_decay_rule_is_the_trainers(hf):
    from transformers.trainer_pt_utils import get_parameter_names

    ns, root = hf
    trainer = ns["make_trainer"](str(root / "unused"))
    ours = get_parameter_names(trainer.model, [torch.nn.LayerNorm], ns["NO_DECAY"])
    assert ours == trainer.get_decay_parameter_names(trainer.model)
    # The groups the Trainer builds: the decay names first, in named_parameters order.
    trainer.create_optimizer()
    names = {p: n for n, p in trainer.model.named_parameters()}
    groups = [[names[p] for p in g["params"]] for g in trainer.optimizer.param_groups]
    assert groups[0] == [n for n in names.values() if n in ours]
    assert groups[1] == [n for n in names.values() if n not in ours]


@HF
def test_hf_optimizer_pt_needs_the_trainers_groups_in_its_order(hf):
    """Other groups than the Trainer's: a clear ValueError, whichever way they differ."""
    from transformers import GPT2LMHeadModel

    ns, root = hf
    model = GPT2LMHeadModel(ns["make_trainer"](str(root / "unused")).model.config)
    saved = torch.load(root / "full" / "checkpoint-1" / "optimizer.pt", weights_only=True)
    one_group = torch.optim.AdamW(model.parameters(), fused=True)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        one_group.load_state_dict(saved)
    ours, _ = ns["optimizer_from_trainer_checkpoint"](model, root / "full" / "checkpoint-1",
                                                      weight_decay=0.01, total_steps=2)
    swapped = torch.optim.AdamW(ours.param_groups[::-1], fused=True)
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        swapped.load_state_dict(saved)


@HF
def test_hf_resume_warns_only_about_the_recorded_arguments(hf):
    """A new learning_rate, accumulation or number of processes: no warning on resume; only
    per_device_train_batch_size (and logging/eval/save steps) are compared with the folder."""
    import transformers
    from transformers.trainer_callback import TrainerState
    from transformers.trainer_utils import compare_trainer_and_checkpoint_args

    ns, root = hf
    state = TrainerState.load_from_json(str(root / "full" / "checkpoint-1" / "trainer_state.json"))
    assert not [k for k in vars(state) if "world" in k and k != "is_world_process_zero"]

    def warnings_for(**changed):
        args = ns["make_trainer"](str(root / "unused"), max_steps=2, save_steps=1, **changed).args
        logger = logging.getLogger("transformers")
        handler, old = _Records(), transformers.logging.get_verbosity()
        logger.addHandler(handler)
        transformers.logging.set_verbosity_warning()
        try:
            compare_trainer_and_checkpoint_args(args, state)
        finally:
            transformers.logging.set_verbosity(old)
            logger.removeHandler(handler)
        return [r.getMessage() for r in handler.records if r.levelno >= logging.WARNING]

    assert warnings_for(learning_rate=1e-3) == []
    assert warnings_for(gradient_accumulation_steps=2) == []
    # warning_once: a value no other run of this session uses
    (message,) = warnings_for(per_device_train_batch_size=2)
    assert message.endswith("per_device_train_batch_size: 2 (from args) != 8 (from trainer_state.json)")


@HF
def test_hf_position_is_computed_from_global_step_in_the_new_units(hf):
    """epochs done = global_step // steps per epoch, batches skipped in that epoch =
    (global_step % steps per epoch) x accumulation, steps per epoch being the new setup's
    (2 processes of 8 on 64 samples: 4 per epoch; 4 processes: 2)."""
    ns, root = hf
    for steps_per_epoch, accumulation, expected in [(8, 1, (0, 1)), (4, 1, (0, 1)), (2, 1, (0, 1)),
                                                    (4, 2, (0, 2)), (1, 1, (1, 0))]:
        trainer = ns["make_trainer"](str(root / "unused"), max_steps=8,
                                     gradient_accumulation_steps=accumulation)
        got = trainer._init_training_state(8, steps_per_epoch, 8, str(root / "full" / "checkpoint-1"), None)
        assert got == (1 // steps_per_epoch, (1 % steps_per_epoch) * accumulation) == expected


@HF
def test_hf_each_process_reads_the_rng_file_of_its_rank(hf, tmp_path, monkeypatch):
    """rng_state_<rank>.pth for the process of that rank when there are several processes,
    rng_state.pth for one; simulated on one CPU process by setting world_size and rank."""
    import random

    import numpy as np
    from transformers import TrainingArguments

    ns, root = hf
    states = {}
    for rank in range(4):
        torch.manual_seed(100 + rank)
        states[rank] = torch.get_rng_state()
        torch.save({"python": random.getstate(), "numpy": np.random.get_state(),
                    "cpu": states[rank]}, tmp_path / f"rng_state_{rank}.pth")
    trainer = ns["make_trainer"](str(root / "unused"))
    monkeypatch.setattr(TrainingArguments, "world_size", property(lambda self: 2))
    for rank in (0, 1):
        monkeypatch.setattr(TrainingArguments, "process_index", property(lambda self, r=rank: r))
        torch.manual_seed(0)
        trainer._load_rng_state(str(tmp_path))
        assert torch.equal(torch.get_rng_state(), states[rank])
    monkeypatch.setattr(TrainingArguments, "world_size", property(lambda self: 1))
    torch.manual_seed(0)
    before = torch.get_rng_state()
    trainer._load_rng_state(str(tmp_path))  # looks for rng_state.pth: not there, goes on
    assert torch.equal(torch.get_rng_state(), before)


@HF
def test_hf_stream_iterator_draws_from_torchs_generator(hf):
    """Why the page's stream with ignore_data_skip=True needs RestoreRandomState: the Trainer's
    loader over a stream has no generator of its own, so starting its iterator (the first
    batch) draws a seed from torch's generator, after the Trainer restored it."""
    ns, root = hf
    stream = definitions("hugging_face", "setup", "stream_dataset")
    trainer = stream["stream_trainer"](str(root / "unused"), stream["TokenStream"]())
    loader = trainer.get_train_dataloader()
    before = torch.get_rng_state()
    iterator = iter(loader)
    assert torch.equal(torch.get_rng_state(), before)  # a generator: nothing runs yet
    next(iterator)
    assert not torch.equal(torch.get_rng_state(), before)


@HF
def test_hf_set_learning_rate_refuses_one_rate_for_groups_that_differ(hf):
    ns = definitions("hugging_face", "set_lr_callback")
    p, q = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([{"params": [p], "lr": 1e-2}, {"params": [q], "lr": 1e-3}])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5)
    with pytest.raises(ValueError, match=r"one lr \(0.001\) for 2 parameter groups that have "
                                         r"different ones \(\[0.01, 0.001\]\); give a list"):
        ns["SetLearningRate"](1e-3).on_train_begin(None, None, None, optimizer=optimizer,
                                                   lr_scheduler=scheduler)
    ns["SetLearningRate"]([2e-2, 2e-3]).on_train_begin(None, None, None, optimizer=optimizer,
                                                       lr_scheduler=scheduler)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([1e-2, 1e-3])
    assert scheduler.base_lrs == [2e-2, 2e-3]


# --- Lightning -------------------------------------------------------------------------------

LIGHTNING = pytest.mark.xdist_group("frameworks_lightning_md")
STATEFUL_INTO_PLAIN = ("RuntimeError: The CombinedLoader has 0 stateful loaders, but found 1 "
                       "states in the checkpoint. Please make sure you define the same "
                       "dataloaders that were used when saving the checkpoint.")


@pytest.fixture(scope="module")
def pl():
    pytest.importorskip("lightning")
    return definitions("lightning_ckpt", "setup", "rng_callback", "set_lr")


def _quiet():
    warnings.simplefilter("ignore")  # inside catch_warnings: Lightning's advice on every run
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)


@LIGHTNING
def test_lightning_stateful_checkpoint_does_not_resume_with_a_plain_loader(pl, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        _quiet()
        every_step = pl["ModelCheckpoint"](dirpath="ckpt", every_n_train_steps=1, save_top_k=-1)
        pl["make_trainer"]([every_step], max_steps=1).fit(pl["Regressor"](), pl["loader"]())
        with pytest.raises(RuntimeError) as error:
            pl["make_trainer"](max_steps=2).fit(pl["Regressor"](), pl["loader"](stateful=False),
                                               ckpt_path="ckpt/epoch=0-step=1.ckpt")
    assert f"RuntimeError: {error.value}" == STATEFUL_INTO_PLAIN
    assert_quoted("frameworks/lightning.md", STATEFUL_INTO_PLAIN)


# Each family with two parameter groups of their own rates (1e-2 and 1e-3 before, 3e-3 and
# 5e-4 after), saved after 3 steps and resumed to 7; the page's own case is StepLR on one group.
PL_SCHEDULERS = {
    "LambdaLR warm-up": (lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda s: min(1.0, (s + 1) / 5)), {}),
    "OneCycleLR": (lambda o: torch.optim.lr_scheduler.OneCycleLR(
        o, max_lr=[g["lr"] for g in o.param_groups], total_steps=10), {}),
    "ReduceLROnPlateau": (lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(
        o, factor=0.5, patience=0), {"monitor": "constant"}),
    "StepLR": (lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5), {}),
    "CosineAnnealingLR": (lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(
        o, T_max=8, eta_min=1e-5), {}),
}
OLD_LRS, NEW_LRS, STOP, END = [1e-2, 1e-3], [3e-3, 5e-4], 3, 7


def _expected_lrs(name):
    """The rates of steps STOP+1..END as a run planned with NEW_LRS uses them (for
    ReduceLROnPlateau, whose new rate holds from the resume on: the saved run's curve scaled
    to the new rates), in plain torch, stepped as Lightning steps it."""
    make, config = PL_SCHEDULERS[name]
    base = OLD_LRS if "monitor" in config else NEW_LRS
    p, q = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([{"params": [p], "lr": base[0]}, {"params": [q], "lr": base[1]}])
    scheduler, lrs = make(optimizer), []
    for _ in range(END):
        lrs.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step(1.0) if "monitor" in config else scheduler.step()
    if "monitor" in config:
        at_resume = lrs[STOP]
        return [[lr * new / old for lr, new, old in zip(row, NEW_LRS, at_resume)] for row in lrs[STOP:]]
    return lrs[STOP:]


@LIGHTNING
@pytest.mark.parametrize("name", list(PL_SCHEDULERS))
def test_lightning_set_learning_rate_follows_each_scheduler_family(pl, name, tmp_path, monkeypatch):
    """The rates of every step after the resume are those of a run planned with the new ones,
    per parameter group: the callback hands the scheduler to set_hyperparameters."""
    monkeypatch.chdir(tmp_path)
    make, config = PL_SCHEDULERS[name]
    seen = []

    class TwoGroups(pl["Regressor"]):
        def training_step(self, batch, batch_idx):
            self.log("constant", 1.0)  # what ReduceLROnPlateau watches: never improves
            return super().training_step(batch, batch_idx)

        def configure_optimizers(self):
            first, last = self.net[0], self.net[3]
            optimizer = torch.optim.Adam([{"params": first.parameters(), "lr": OLD_LRS[0]},
                                          {"params": last.parameters(), "lr": OLD_LRS[1]}])
            return {"optimizer": optimizer,
                    "lr_scheduler": {"scheduler": make(optimizer), "interval": "step", **config}}

    class Record(pl["Callback"]):
        def on_train_batch_start(self, trainer, *args):
            seen.append([g["lr"] for g in trainer.optimizers[0].param_groups])

    with warnings.catch_warnings():
        _quiet()
        every = pl["ModelCheckpoint"](dirpath="ckpt", every_n_train_steps=STOP, save_top_k=-1)
        pl["make_trainer"]([every], max_steps=STOP).fit(TwoGroups(), pl["loader"]())
        pl["make_trainer"]([pl["SetLearningRate"](NEW_LRS), Record()], max_steps=END).fit(
            TwoGroups(), pl["loader"](), ckpt_path=f"ckpt/epoch=0-step={STOP}.ckpt")
    flat = lambda rows: [lr for row in rows for lr in row]  # noqa: E731
    assert flat(seen) == pytest.approx(flat(_expected_lrs(name)), rel=1e-9, abs=1e-15)


ONE_RATE_FOR_TWO_GROUPS = ("ValueError: set_hyperparameters: one lr (0.001) for 2 parameter groups "
                           "that have different ones ([0.01, 0.001]); give a list with one value per group")


@LIGHTNING
def test_lightning_set_learning_rate_refuses_one_rate_for_groups_that_differ(pl, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    class TwoGroups(pl["Regressor"]):
        def configure_optimizers(self):
            return torch.optim.Adam([{"params": self.net[0].parameters(), "lr": 1e-2},
                                     {"params": self.net[3].parameters(), "lr": 1e-3}])

    with warnings.catch_warnings():
        _quiet()
        with pytest.raises(ValueError) as error:
            pl["make_trainer"]([pl["SetLearningRate"](1e-3)], max_steps=1).fit(
                TwoGroups(), pl["loader"]())
    assert f"ValueError: {error.value}" == ONE_RATE_FOR_TWO_GROUPS
    assert_quoted("frameworks/lightning.md", ONE_RATE_FOR_TWO_GROUPS)


@LIGHTNING
def test_lightning_torch_rng_keeps_every_gpu_generator(pl, monkeypatch):
    """Where CUDA is available the callback saves torch.cuda.get_rng_state_all() beside the CPU
    generator, the .ckpt keeps it (weights_only=True) and the resume restores it; another
    number of GPUs is a warning, not a silent mismatch. The GPUs are stand-ins here: the
    cuda-marked test below runs it on a real one."""
    states = [torch.full((16,), 1, dtype=torch.uint8), torch.full((16,), 2, dtype=torch.uint8)]
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [s.clone() for s in states])
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda new: restored.append(new))
    import io
    buffer = io.BytesIO()
    torch.save({"callbacks": {"TorchRNG": pl["TorchRNG"]().state_dict()}}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)["callbacks"]["TorchRNG"]
    callback = pl["TorchRNG"]()
    callback.load_state_dict(saved)
    callback.on_train_start(None, None)
    assert len(restored) == 1 and same(restored[0], states)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.warns(UserWarning, match="holds the generators of 2 GPUs, this process sees 1"):
        callback.on_train_start(None, None)
    assert len(restored) == 1


@LIGHTNING
@pytest.mark.cuda
def test_lightning_resume_on_a_gpu_is_bitwise_with_torch_rng(pl, tmp_path, monkeypatch):
    """Dropout on a GPU draws from its CUDA generator: with the callback the resumed run is
    bitwise equal, with the CPU generator alone it is not."""
    monkeypatch.chdir(tmp_path)
    L = pl["L"]

    def fit(callbacks, max_steps, ckpt_path=None):
        L.seed_everything(0, verbose=False)
        module = pl["Regressor"]()
        L.Trainer(max_steps=max_steps, accelerator="gpu", devices=1, callbacks=callbacks,
                  enable_checkpointing=any(isinstance(c, pl["ModelCheckpoint"]) for c in callbacks),
                  logger=False, enable_progress_bar=False, enable_model_summary=False,
                  default_root_dir=".").fit(module, pl["loader"](), ckpt_path=ckpt_path)
        return [p.detach().cpu() for p in module.parameters()]

    class CpuOnly(pl["TorchRNG"]):
        def state_dict(self):
            return {"torch_rng": torch.get_rng_state()}

    with warnings.catch_warnings():
        _quiet()
        every = pl["ModelCheckpoint"](dirpath="ckpt", every_n_train_steps=5, save_top_k=-1)
        reference = fit([every, pl["TorchRNG"]()], 8)
        assert same(fit([pl["TorchRNG"]()], 8, "ckpt/epoch=0-step=5.ckpt"), reference)
        cpu_only = pl["ModelCheckpoint"](dirpath="cpu", every_n_train_steps=5, save_top_k=-1)
        fit([cpu_only, CpuOnly()], 5)
        assert not same(fit([CpuOnly()], 8, "cpu/epoch=0-step=5.ckpt"), reference)


NO_LIGHTNING = """
import sys
for name in ("lightning", "pytorch_lightning", "lightning_fabric"):
    sys.modules[name] = None  # import lightning now raises ImportError
"""


@LIGHTNING
@pytest.mark.slow
def test_lightning_ckpt_loads_into_plain_pytorch_without_lightning(pl, tmp_path, monkeypatch):
    """The page's loading blocks, run in a new interpreter where Lightning cannot be imported:
    the same weights, Adam state and scheduler as loaded beside Lightning."""
    import subprocess
    import sys

    from cookbook_testing.pages import ROOT
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        _quiet()
        every = pl["ModelCheckpoint"](dirpath="ckpt", every_n_train_steps=5, save_top_k=-1)
        pl["make_trainer"]([every, pl["TorchRNG"]()], max_steps=5).fit(pl["Regressor"](), pl["loader"]())
    path = SNIPPETS / "frameworks" / "lightning_ckpt.py"
    script = NO_LIGHTNING + section_source(path, "plain_load", "plain_build") + """
torch.save({"net": net.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict()}, "plain.pt")
import lightning  # must fail: nothing above needed it
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(LIBRARY)})
    assert "global_step: 5 - Adam's step: 5 - scheduler last_epoch: 5" in done.stdout, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(
        "ModuleNotFoundError: import of lightning halted"), done.stderr
    ns = definitions("lightning_ckpt", "plain_load", "plain_build")  # beside Lightning
    got = torch.load(tmp_path / "plain.pt", weights_only=True)
    assert same(got["net"].values(), ns["net"].state_dict().values())
    assert all(same(a.values(), b.values()) for a, b in zip(
        got["optimizer"]["state"].values(), ns["optimizer"].state_dict()["state"].values()))
    assert got["scheduler"] == ns["scheduler"].state_dict()


def test_stateful_dataloader_next_epoch_after_a_mid_epoch_restore():
    """torchdata's StatefulDataLoader restored in the middle of an epoch: the rest of the epoch
    as the run that never stopped, the next epoch in another order."""
    from torchdata.stateful_dataloader import StatefulDataLoader

    def make():
        return StatefulDataLoader(list(range(16)), batch_size=4, shuffle=True,
                                  generator=torch.Generator().manual_seed(0))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = make()
        epochs = [[b.tolist() for b in reference] for _ in range(2)]
        stopped = make()
        it = iter(stopped)
        done = [next(it).tolist() for _ in range(2)]
        resumed = make()
        resumed.load_state_dict(stopped.state_dict())
        rest = [b.tolist() for b in resumed]
        next_epoch = [b.tolist() for b in resumed]
    assert done + rest == epochs[0]
    assert next_epoch != epochs[1]


# --- Accelerate ------------------------------------------------------------------------------

ACCELERATE = pytest.mark.xdist_group("frameworks_accelerate_md")
COUNT_MISMATCH = "does not match the number of registered objects"


@pytest.fixture(scope="module")
def acc(tmp_path_factory):
    pytest.importorskip("accelerate")
    ns = definitions("accelerate_state", "setup")
    path = tmp_path_factory.mktemp("acc") / "ckpt"
    reference = ns["build"]()
    ns["train_until"](reference, ns["TOTAL_STEPS"])
    first = ns["build"]()
    ns["train_until"](first, 5)
    first[0].save_state(str(path))
    return ns, path, ns["params"](reference)


def _resume(ns, path):
    run = ns["build"]()
    run[0].load_state(str(path))
    ns["train_until"](run, ns["TOTAL_STEPS"])
    return ns["params"](run)


@ACCELERATE
def test_accelerate_missing_random_states_is_only_an_info_line(acc, tmp_path, caplog):
    ns, path, expected = acc
    assert same(_resume(ns, path), expected)  # the complete folder resumes bitwise
    partial = tmp_path / "ckpt"
    shutil.copytree(path, partial)
    (partial / "random_states_0.pkl").unlink()
    with caplog.at_level(logging.INFO):
        got = _resume(ns, partial)
    assert any(m.endswith("Could not load random states") for m in caplog.messages)
    assert not any(r.levelno >= logging.WARNING and "random" in r.getMessage() for r in caplog.records)
    assert not same(got, expected)


@ACCELERATE
def test_accelerate_registered_objects_must_match_the_files(acc, tmp_path):
    ns, path, _ = acc
    partial = tmp_path / "ckpt"
    shutil.copytree(path, partial)
    (partial / "custom_checkpoint_0.pkl").unlink()
    with pytest.raises(RuntimeError, match=COUNT_MISMATCH):
        ns["build"]()[0].load_state(str(partial))
    assert_quoted("frameworks/accelerate.md", COUNT_MISMATCH, "Could not load random states")


@ACCELERATE
def test_accelerate_random_states_file_is_not_weights_only(acc):
    _, path, _ = acc
    with pytest.raises(pickle.UnpicklingError, match="numpy"):
        torch.load(path / "random_states_0.pkl", weights_only=True)


@ACCELERATE
def test_accelerate_loader_without_its_own_generator_breaks_bitwise(acc, tmp_path):
    from torch.utils.data import DataLoader

    data = list(range(8))
    before = torch.get_rng_state()
    iter(DataLoader(data, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(torch.get_rng_state(), before)
    iter(DataLoader(data, shuffle=True))
    assert not torch.equal(torch.get_rng_state(), before)

    # The page's run, its loaders drawing from torch's global generator (build() looks the
    # name up when it runs):
    plain = definitions("accelerate_state", "setup")
    plain["DataLoader"] = lambda *args, generator=None, **kwargs: DataLoader(*args, **kwargs)
    reference = plain["build"]()
    plain["train_until"](reference, plain["TOTAL_STEPS"])
    first = plain["build"]()
    plain["train_until"](first, 5)
    first[0].save_state(str(tmp_path / "ckpt"))
    assert not same(_resume(plain, tmp_path / "ckpt"), plain["params"](reference))


class _Payload:
    """A harmless crafted pickle: unpickling it makes the folder `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _craft(folder, name, marker):
    torch.save(_Payload(marker), folder / name)


@ACCELERATE
@pytest.mark.parametrize("name", ["custom_checkpoint_0.pkl", "optimizer.bin", "scheduler.bin",
                                  "random_states_0.pkl"])
def test_accelerate_load_state_runs_what_the_custom_checkpoint_names(acc, tmp_path, name):
    """load_state unpickles the registered objects' files with weights_only=False: a crafted
    one runs its call. The other files go through weights_only=True: refused, not run."""
    ns, path, _ = acc
    crafted, marker = tmp_path / "crafted", tmp_path / "payload_ran"
    shutil.copytree(path, crafted)
    _craft(crafted, name, marker)
    if name == "random_states_0.pkl":  # refused inside a try: "Could not load random states"
        ns["build"]()[0].load_state(str(crafted))
    else:
        with pytest.raises((pickle.UnpicklingError, TypeError)):
            ns["build"]()[0].load_state(str(crafted))
    assert marker.exists() == (name == "custom_checkpoint_0.pkl")


@ACCELERATE
def test_accelerate_checked_load_refuses_the_crafted_folder_before_anything_runs(acc, tmp_path):
    ns, path, expected = acc
    checked = definitions("accelerate_state", "setup", "load_state_checked")
    crafted, marker = tmp_path / "crafted", tmp_path / "payload_ran"
    shutil.copytree(path, crafted)
    _craft(crafted, "custom_checkpoint_0.pkl", marker)
    with pytest.raises(RuntimeError, match="custom_checkpoint_0.pkl is not plain data .*GLOBAL "
                                           "posix.mkdir.*do not load this folder"):
        checked["load_state_checked"](checked["build"]()[0], str(crafted))
    assert not marker.exists()
    run = checked["build"]()
    checked["load_state_checked"](run[0], str(path))
    checked["train_until"](run, checked["TOTAL_STEPS"])
    assert same(checked["params"](run), expected)


@ACCELERATE
def test_accelerate_without_registered_objects_no_custom_file_is_opened(acc, tmp_path):
    """State kept by the project itself, not registered: a planted custom_checkpoint file
    stops load_state with the count error before it is unpickled."""
    ns, path, _ = acc
    from accelerate import Accelerator

    crafted, marker = tmp_path / "crafted", tmp_path / "payload_ran"
    shutil.copytree(path, crafted)
    _craft(crafted, "custom_checkpoint_0.pkl", marker)
    with pytest.raises(RuntimeError, match=COUNT_MISMATCH):
        Accelerator(cpu=True).load_state(str(crafted))
    assert not marker.exists()


@ACCELERATE
def test_accelerate_load_state_without_a_folder_takes_the_highest_number(acc, tmp_path):
    """With automatic_checkpoint_naming, load_state() loads the entry of
    <project_dir>/checkpoints with the highest number in its name, whoever put it there."""
    ns, _, _ = acc
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    def accelerator():
        a = Accelerator(cpu=True, project_config=ProjectConfiguration(
            project_dir=str(tmp_path), automatic_checkpoint_naming=True))
        a.register_for_checkpointing(ns["Progress"]())
        return a

    accelerator().save_state()
    saved = tmp_path / "checkpoints"
    assert sorted(p.name for p in saved.iterdir()) == ["checkpoint_0"]
    shutil.copytree(saved / "checkpoint_0", saved / "checkpoint_9")
    marker = tmp_path / "payload_ran"
    _craft(saved / "checkpoint_9", "custom_checkpoint_0.pkl", marker)
    with pytest.raises(TypeError):
        accelerator().load_state()
    assert marker.exists()
