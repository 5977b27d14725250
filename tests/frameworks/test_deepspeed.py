"""DeepSpeed ZeRO checkpoints (docs/frameworks/deepspeed.md): what the page says that its blocks
do not show. One 2-process ZeRO-2 checkpoint, made with the page's own functions, serves every
test; the tests share the xdist group of the page, so that DeepSpeed is imported once."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import pickle

import pytest
import torch

from cookbook_testing.devices import cuda_available
from cookbook_testing.pages import SNIPPETS, assert_quoted, section_source

PAGE = "frameworks/deepspeed.md"
DS = [pytest.mark.xdist_group("frameworks_deepspeed_md"),
      pytest.mark.skipif(cuda_available(), reason="fork-based launch: a process that used CUDA "
                                                  "cannot fork")]
pytestmark = DS
MISSING_INFO = ("AssertionError: Required universal_checkpoint_info state is missing in "
                "checkpoint. Verify that client creates this state.")
WORLD_SIZE_ERROR = ("deepspeed.runtime.zero.utils.ZeRORuntimeException: The checkpoint being "
                    "loaded used a DP world size of 2 but the current world size is 1. Automatic "
                    "adjustment of ZeRO's optimizer state partitioning with a new world size is "
                    "not currently supported.")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    pytest.importorskip("deepspeed")
    root = tmp_path_factory.mktemp("ds")
    ns = {"__name__": "frameworks_deepspeed"}
    path = SNIPPETS / "frameworks" / "deepspeed_zero.py"
    old = os.getcwd()
    os.chdir(root)
    try:
        exec(compile(section_source(path, "setup", "launch"), str(path), "exec"), ns)

        def save(folder):
            engine = ns["start"]()
            ns["train"](engine, range(3))
            engine.save_checkpoint(folder)

        ns["launch"](save, 2, str(root / "ckpt"))
    finally:
        os.chdir(old)
    return ns, root / "ckpt"


def convert(folder, universal, inject=True):
    from deepspeed.checkpoint.ds_to_universal import main as ds_to_universal

    with contextlib.redirect_stdout(io.StringIO()):
        ds_to_universal(argparse.Namespace(
            input_folder=str(folder), output_folder=str(universal), inject_missing_state=inject,
            num_extract_workers=1, num_merge_workers=1, keep_temp_folder=False, strict=True))


def test_optimizer_files_need_weights_only_false(ckpt):
    _, folder = ckpt
    torch.load(folder / "global_step3" / "mp_rank_00_model_states.pt", weights_only=True)
    for rank in range(2):
        optim = folder / "global_step3" / f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt"
        with pytest.raises(pickle.UnpicklingError, match="LossScaler"):
            torch.load(optim, weights_only=True)


def test_universal_moments_are_the_partitions_cut_at_param_shapes(ckpt, tmp_path):
    _, folder = ckpt
    universal = tmp_path / "global_step3_universal"
    convert(folder / "global_step3", universal)
    shapes = torch.load(folder / "global_step3" / "mp_rank_00_model_states.pt",
                        weights_only=True)["param_shapes"]
    parts = [torch.load(folder / "global_step3" / f"zero_pp_rank_{r}_mp_rank_00_optim_states.pt",
                        weights_only=False)["optimizer_state_dict"] for r in range(2)]
    checked = 0
    for group, group_shapes in enumerate(shapes):
        for key in ("exp_avg", "exp_avg_sq"):
            flat = torch.cat([p["base_optimizer_state"]["state"][group][key] for p in parts])
            offset = 0
            for name, shape in group_shapes.items():
                saved = torch.load(universal / "zero" / name / f"{key}.pt", weights_only=True)
                assert torch.equal(flat[offset:offset + shape.numel()].view(shape), saved["param"])
                offset += shape.numel()
                checked += 1
            assert flat.numel() - offset == sum(p["group_paddings"][group] for p in parts)
    assert checked == 8


def test_conversion_without_inject_missing_state_stops(ckpt, tmp_path):
    _, folder = ckpt
    with pytest.raises(AssertionError) as error:
        convert(folder / "global_step3", tmp_path / "universal", inject=False)
    assert f"AssertionError: {error.value}" == MISSING_INFO
    assert_quoted(PAGE, MISSING_INFO)


def test_the_trainers_resume_fails_on_another_world_size(ckpt, tmp_path):
    """transformers calls deepspeed_load_checkpoint(engine, checkpoint-N) on resume: the 2-process
    checkpoint in 1 process raises the page's error."""
    pytest.importorskip("transformers")
    import torch.multiprocessing as mp

    ns, folder = ckpt

    def trainer_load(path):
        from transformers.integrations.deepspeed import deepspeed_load_checkpoint

        deepspeed_load_checkpoint(ns["start"](), path)

    with pytest.raises(mp.ProcessRaisedException) as error:
        ns["launch"](trainer_load, 1, str(folder))
    assert str(error.value).strip().split("\n")[-1] == WORLD_SIZE_ERROR
    assert_quoted(PAGE, WORLD_SIZE_ERROR)


def test_gradient_clipping_default_and_warmup_lr_sets_lr_when_built():
    pytest.importorskip("deepspeed")
    from deepspeed.runtime.constants import GRADIENT_CLIPPING_DEFAULT
    from deepspeed.runtime.lr_schedules import WarmupLR

    assert GRADIENT_CLIPPING_DEFAULT == 1.0
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=0.5)
    WarmupLR(optimizer, warmup_max_lr=1e-2, warmup_num_steps=4)
    assert optimizer.param_groups[0]["lr"] != 0.5


def test_load_universal_adam_says_what_is_missing(ckpt, tmp_path):
    ns, folder = ckpt
    path = SNIPPETS / "frameworks" / "deepspeed_zero.py"
    exec(compile(section_source(path, "adam_state").split("\n\n\nfrom deepspeed.runtime.lr_schedules")[0], str(path),
                 "exec"), ns)
    universal = tmp_path / "global_step3_universal"
    convert(folder / "global_step3", universal)
    model = ns["build_model"]()
    with pytest.raises(ValueError, match="2 parameter groups, the optimizer 1"):
        ns["load_universal_adam"](str(universal), model, torch.optim.AdamW(model.parameters()))
    for name in os.listdir(universal / "zero" / "2.bias"):
        os.remove(universal / "zero" / "2.bias" / name)
    os.rmdir(universal / "zero" / "2.bias")
    with pytest.raises(FileNotFoundError, match="no state for parameter 2.bias"):
        ns["load_universal_adam"](str(universal), model,
                                  torch.optim.AdamW(ns["param_groups"](model)))
