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

from cookbook_testing.pages import assert_quoted, sections_namespace

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


@LIGHTNING
def test_lightning_set_learning_rate_holds_for_lambda_lr(pl, tmp_path, monkeypatch):
    """LambdaLR computes lr = base_lr * factor(step): the callback's base_lrs make it hold."""
    monkeypatch.chdir(tmp_path)

    def factor(step):
        return 1 / (1 + step)

    class WithLambda(pl["Regressor"]):
        def configure_optimizers(self):
            optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def lr_after(callbacks):
        trainer = pl["make_trainer"](callbacks, max_steps=3)
        trainer.fit(WithLambda(), pl["loader"](), ckpt_path="ckpt/epoch=0-step=1.ckpt")
        return trainer.optimizers[0].param_groups[0]["lr"]

    with warnings.catch_warnings():
        _quiet()
        every_step = pl["ModelCheckpoint"](dirpath="ckpt", every_n_train_steps=1, save_top_k=-1)
        pl["make_trainer"]([every_step], max_steps=1).fit(WithLambda(), pl["loader"]())
        assert lr_after([pl["SetLearningRate"](1e-3)]) == pytest.approx(1e-3 * factor(3))
        assert lr_after([]) == pytest.approx(1e-2 * factor(3))  # the saved base_lrs


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
