"""The checkpoint-cost page: its tables come from the committed benchmark results, unedited,
and what its prose concludes holds for those results. The benchmark itself is not run here
(bench/checkpoint_bench.py, `make bench`)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import torch

import bench_measure
import bench_render
from cookbook_testing.pages import DOCS, both_languages, lang_of

ASSETS = DOCS / "assets" / "bench"
PAGES = both_languages("concepts/checkpoint-cost.md")


CPU = json.loads((ASSETS / "cpu.json").read_text(encoding="utf-8"))
GPU = json.loads((ASSETS / "gpu.json").read_text(encoding="utf-8")) if (ASSETS / "gpu.json").exists() else None


V2 = CPU.get("schema", 1) >= 2
NOT_RERUN = "docs/assets/bench/cpu.json is from before the ratio benchmark: rerun `make bench`"


def test_results_record_machine_versions_and_samples():
    assert CPU["schema"] in (1, bench_measure.SCHEMA) and CPU["kind"] == "cpu"
    assert {"cpu", "cores", "memory_bytes", "disk_free_bytes"} <= set(CPU["machine"])
    assert {"python", "torch", "safetensors"} <= set(CPU["versions"])
    assert CPU["date"] and CPU["settings"]["repeats"] >= 3
    assert len(CPU["results"]) >= 2
    methods = bench_measure.METHODS if V2 else bench_render.METHODS
    for r in CPU["results"]:
        assert set(r["methods"]) == set(methods)
        for key, m in r["methods"].items():
            assert len(m["save_s" if "save_s" in m else "load_s"]) == CPU["settings"]["repeats"], key
        assert r["methods"]["dcp_async"]["blocked_median_s"] > 0


@pytest.mark.skipif(not V2, reason=NOT_RERUN)
def test_results_hold_every_ratio_the_page_shows():
    """One run: every save with its blocked and total time, every load, the throughput lost."""
    assert "disk" in CPU["machine"] and CPU["machine"]["disk"]["device"]
    for r in CPU["results"]:
        m = r["methods"]
        for key in bench_measure.SAVE_METHODS:
            assert 0 < m[key]["blocked_median_s"] <= m[key]["save_median_s"], key
        for key in bench_measure.LOAD_METHODS:
            assert m[key]["load_median_s"] > 0, key
        train = r["train"]
        assert set(train["methods"]) == set(bench_measure.TRAIN_METHODS)
        assert all(t["checkpoints"] >= 2 for t in train["methods"].values())


def test_generated_tables_are_what_the_results_give():
    """Nobody typed the numbers: the included tables are rendered from the JSON."""
    tables = bench_render.TABLES
    for lang in bench_render.LANGS:
        cpu, gpu = (tables / bench_render.table_name(k, lang) for k in ("cpu", "gpu"))
        assert cpu.read_text(encoding="utf-8") == bench_render.render_cpu(CPU, lang), cpu.name
        assert gpu.read_text(encoding="utf-8") == bench_render.render_gpu(GPU, lang), gpu.name


@pytest.mark.parametrize("gpu", [GPU, None], ids=["gpu-results", "no-gpu-results"])
def test_the_japanese_tables_have_no_english_words(gpu):
    """Headers, captions and labels of the Japanese page's tables are Japanese; what stays
    Latin is code (in backquotes), product and format names, units and numbers."""
    text = bench_render.render_cpu(CPU, "ja") + bench_render.render_gpu(gpu, "ja")
    text = re.sub(r"<!--.*?-->|`[^`]*`|\]\([^)]*\)", "", text)
    for name in ("Intel(R) Xeon(R) Processor", CPU["machine"]["cpu"], *(
            [gpu["machine"]["gpu"]] if gpu else [])):
        text = text.replace(name, "")
    allowed = {"GB", "GiB", "GB/s", "M", "Adam", "safetensors", "torch", "Python", "CUDA",
               "fsync", "dcp", "cuda", "fused", "save", "NVIDIA", "GPU", "CPU",
               "sha"}  # sha256, a name like fsync
    words = set(re.findall(r"[A-Za-z][A-Za-z/]*", text)) - allowed
    assert words == set()
    # and the same figures as the English tables
    numbers = re.compile(r"\d+\.\d+")
    assert numbers.findall(bench_render.render_cpu(CPU, "ja")) == numbers.findall(bench_render.render_cpu(CPU))


def test_pages_embed_the_tables_and_plots():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        lang = lang_of(page)
        for kind in ("cpu", "gpu"):
            name = bench_render.table_name(kind, lang)
            assert f'--8<-- "outputs/concepts/checkpoint-cost/{name}"' in text, (page.name, name)
        for png in ("save_load.png", "async_save.png"):
            assert f"../assets/bench/{png})" in text and (ASSETS / png).stat().st_size > 0
    for png in ("save_load", "async_save"):  # the Japanese site's plot has Japanese words
        assert (ASSETS / f"{png}.ja.png").read_bytes() != (ASSETS / f"{png}.png").read_bytes()


def test_the_japanese_plot_words_are_japanese_and_in_its_font():
    """`bench/checkpoint_bench.py --render` draws the .ja.png plots in IPAexGothic
    (matplotlib-fontja): every character of their words has a glyph there."""
    import importlib.util

    from fontTools.ttLib import TTFont  # importing matplotlib_fontja would change the font

    en, ja = bench_render.PLOT_LABELS["en"], bench_render.PLOT_LABELS["ja"]
    assert set(ja) == set(en) and set(ja["methods"]) == set(en["methods"])
    words = [v for k, v in ja.items() if k != "methods"] + list(ja["methods"].values())
    japanese = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
    assert all(japanese.search(v) for k, v in ja.items() if k != "methods")
    # Method names are code and stay; the ones with English words are translated.
    assert all(japanese.search(ja["methods"][k]) for k in ("raw", "safetensors", "dcp_async"))
    font = Path(importlib.util.find_spec("matplotlib_fontja").submodule_search_locations[0])
    glyphs = TTFont(font / "fonts" / "ipaexg.ttf", lazy=True)["cmap"].getBestCmap()
    assert {c for w in words for c in w if ord(c) not in glyphs and c != "\n"} == set()  # a line break is not drawn


def test_what_the_page_concludes_holds_for_these_results():
    s = bench_render.summary(CPU)
    # Adam keeps two tensors the size of each parameter (and a scalar step).
    assert s["adam_over_weights"] == pytest.approx(2.0, abs=0.01)
    for r in CPU["results"]:
        m = r["methods"]
        # async_save gives the caller back well before the files are written.
        assert m["dcp_async"]["blocked_median_s"] < 0.5 * m["dcp_async"]["save_median_s"]
        # Loading costs more than reading the same bytes raw, for every format read by torch.
        for key in ("torch_save", "torch_load_mmap", "safetensors", "dcp"):
            assert m[key]["load_median_s"] > m["raw"]["load_median_s"], (r["params"], key)
    big = max(CPU["results"], key=lambda r: r["params"])["methods"]
    # On the largest model, every format saves within a small factor of the raw write,
    assert max(big[k]["save_median_s"] for k in ("torch_save", "safetensors", "dcp")) \
        < 3 * big["raw"]["save_median_s"]
    # and one process of dcp is no faster than one torch.save file (noise allowed).
    assert big["dcp"]["save_median_s"] > 0.8 * big["torch_save"]["save_median_s"]


@pytest.mark.skipif(not V2, reason=NOT_RERUN)
def test_what_the_page_concludes_of_the_ratios_holds():
    s = bench_render.summary(CPU)
    blocked, load = s["blocked_over_sync"], s["load_over_raw"]
    # Every save that does not stop training blocks less than a synchronous torch.save,
    for key in ("dcp_async", "dcp_async_process", "background"):
        assert blocked[key] < 1, key
    # and none less than one copy of the state in memory: the floor on a CPU (noise allowed).
    for key in ("dcp_async", "dcp_async_process", "background"):
        assert blocked[key] > 0.8 * blocked["memory_copy"], key
    # The background save costs training less per checkpoint than the synchronous save.
    lost = s["lost_per_checkpoint_s"]
    assert lost["background"] < lost["save_checkpoint"]
    # load_checkpoint(fast=True) is the fastest load of a file; with its sha256 checked, faster
    # than load_checkpoint's two passes, and no faster than hashing the bytes in memory.
    files = [k for k in bench_measure.LOAD_METHODS if k not in ("raw", "sha256")]
    assert min(files, key=load.get) in ("fast_load", "fast_load_unchecked")
    assert load["fast_load"] < load["load_checkpoint"]
    assert load["fast_load"] > 0.9 * load["sha256"]


def synthetic_v2() -> dict:
    """A schema-2 result with every method, made-up numbers: to check the tables' words."""
    methods = {k: {"save_median_s": 2.0, "blocked_median_s": 0.1 if "async" in k or k == "background"
                   else 2.0} for k in bench_measure.SAVE_METHODS}
    for k in bench_measure.LOAD_METHODS:
        methods.setdefault(k, {})["load_median_s"] = 1.1
    train = {"steps": 60, "every": 20, "batch": 16, "step_s": 0.3,
             "methods": {k: {"run_s": 20.0, "checkpoints": 2, "lost_per_checkpoint_s": 1.0,
                             "lost_share": 0.1, "lost_share_per_minute": 0.017}
                         for k in bench_measure.TRAIN_METHODS}}
    return {"schema": 2, "kind": "cpu", "date": "2026-12-07", "duration_s": 600,
            "machine": {"cpu": "Some CPU", "cores": 2, "memory_bytes": 2**34, "disk_free_bytes": 1e11,
                        "disk": {"device": "/dev/vda"}},
            "versions": {"torch": "2.13.0", "python": "3.11.7", "safetensors": "0.8.0"},
            "settings": {"repeats": 5},
            "results": [{"params": 1e8, "total_bytes": 1.2e9, "weights_bytes": 4e8, "optimizer_bytes": 8e8,
                         "methods": methods, "train": train}]}


def test_the_ratio_tables_in_both_languages():
    """Every method and goal has its row in both languages, the same figures in each, and the
    Japanese tables keep only code, names and units in Latin letters."""
    v2 = synthetic_v2()
    en, ja = bench_render.render_cpu(v2), bench_render.render_cpu(v2, "ja")
    numbers = re.compile(r"\d+\.\d+|\d+%|[✓✗]")
    assert numbers.findall(en) == numbers.findall(ja)
    assert en.count("\n| ") == ja.count("\n| ") == (
        2 + len(bench_measure.SAVE_METHODS) + 2 + len(bench_measure.LOAD_METHODS)
        + 2 + len(bench_measure.TRAIN_METHODS) + 2 + 4)
    assert "| ≤ 0.05× | 0.05× | ✓ |" in en and "| ≤ 1% | 1.7% | ✗ |" in en
    # and the GPU run's staging and training tables
    gpu = {**(GPU or {}), "staging": [{"params": 1e8, "bytes": 1.2e9, "stage_gb_s": 20.0,
                                       "stage_share_of_pinned": 0.8, "dcp_async_process_blocked_s": 0.1,
                                       "background_blocked_s": 0.07}],
           "train": [{**v2["results"][0]["train"], "step_s": 0.05}]}
    if GPU is not None:
        gpu_en, gpu_ja = bench_render.render_gpu(gpu), bench_render.render_gpu(gpu, "ja")
        assert numbers.findall(gpu_en) == numbers.findall(gpu_ja) and "| 0.80 | 0.10 | 0.07 |" in gpu_en
        ja += gpu_ja.replace(GPU["machine"]["gpu"], "")
    text = re.sub(r"<!--.*?-->|`[^`]*`|\]\([^)]*\)", "", ja).replace("Some CPU", "")
    allowed = {"GB", "GiB", "GB/s", "M", "Adam", "safetensors", "torch", "Python", "fsync", "sha256",
               "CUDA", "cuda", "fused", "GPU", "CPU"}
    assert set(re.findall(r"[A-Za-z][A-Za-z0-9/]*", text)) - allowed == set()


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads Linux's /proc/self/maps")
def test_mmap_load_maps_the_file(tmp_path):
    """torch.load(mmap=True) maps the file rather than reading it into memory first."""
    path = tmp_path / "mapped.pt"
    torch.save({"w": torch.zeros(1000)}, path)

    def mapped():
        return str(path) in Path("/proc/self/maps").read_text()

    plain = torch.load(path, weights_only=True)
    assert not mapped()
    lazy = torch.load(path, weights_only=True, mmap=True)
    assert mapped() and torch.equal(lazy["w"], plain["w"])


@pytest.mark.skipif(GPU is None, reason="no GPU results committed (bench --gpu not run)")
def test_what_the_page_says_of_the_gpu_run_holds():
    step = {r["variant"]: r for r in GPU["step"]}
    loop, right = step["classic_loop"], step["recommended"]
    assert loop["step_device"].startswith("cuda") and right["step_device"] == "cpu"
    # the loop: two syncs per parameter tensor (foreach), and a slower step; the right order
    # one per step at most, whatever the number of tensors
    assert loop["syncs_per_step"] == 2 * loop["param_tensors"]
    assert right["syncs_per_step"] <= 1
    assert loop["step_median_ms"] > right["step_median_ms"]
    fused = step["fused"]
    assert fused["step_device"].startswith("cuda") and fused["syncs_per_step"] == 0
    assert fused["step_median_ms"] < right["step_median_ms"]
    # pinned memory: the faster GPU-to-CPU copy at every size, like with like; fresh pageable
    # memory slower than pageable memory touched before; a fresh pinned buffer nearly free
    for r in GPU["copy"]:
        assert r["pinned_gb_s"] > r["pageable_gb_s"] > r["pageable_alloc_gb_s"]
        assert r["pinned_alloc_gb_s"] > r["pageable_alloc_gb_s"]
        assert r["pinned_alloc_gb_s"] > 0.5 * r["pinned_gb_s"]


def test_async_save_stages_into_pageable_memory_by_default(tmp_path, monkeypatch):
    """The page: async_save's default stager does not pin (torch 2.13)."""
    import socket
    import warnings

    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp
    import torch.distributed.checkpoint.state_dict_saver as saver
    from torch.distributed.checkpoint.staging import DefaultStager, StagingOptions

    configs = []

    class Recording(DefaultStager):
        def __init__(self, config=StagingOptions()):
            configs.append(config)
            super().__init__(config)

    monkeypatch.setattr(saver, "DefaultStager", Recording)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dcp.async_save({"w": torch.ones(3)}, checkpoint_id=tmp_path / "ckpt").result()
    finally:
        dist.destroy_process_group()
    assert [c.use_pinned_memory for c in configs] == [False]
    assert StagingOptions(use_pinned_memory=True).use_pinned_memory  # the page's remedy exists


# ---------------------------------------------------------------------------- the fast load
def a_checkpoint(directory, step=1):
    """A checkpoint with what a real one holds: two parameter groups, tied weights, a float64
    and a bfloat16 tensor, views of one storage, a transposed tensor, an empty one, a
    Parameter, Python values, and the state dict's `_metadata` (module versions)."""
    import checkpoint_files

    emb = torch.nn.Embedding(10, 4)
    model = torch.nn.Sequential(emb, torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 10))
    model[2].weight = emb.weight
    optimizer = torch.optim.Adam([{"params": [emb.weight], "lr": 1e-2},
                                  {"params": [*model[1].parameters(), model[2].bias], "betas": (0.8, 0.9)}])
    model(torch.tensor([1, 2, 3])).sum().backward()
    optimizer.step()
    base = torch.arange(12.0, dtype=torch.float64)
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
             "extra": [base, base[2:5], (base.view(3, 4).t(), "name"), torch.ones(3, dtype=torch.bfloat16),
                       torch.empty(0, 5), torch.nn.Parameter(torch.ones(2), requires_grad=False)]}
    return state, checkpoint_files.save_checkpoint(state, str(directory), step, log=lambda *a: None)


def assert_same(a, b, where="state"):
    assert type(a) is type(b), where
    if isinstance(a, torch.Tensor):
        assert (a.dtype, a.shape, a.stride(), a.storage_offset(), a.requires_grad) == \
            (b.dtype, b.shape, b.stride(), b.storage_offset(), b.requires_grad), where
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert list(a) == list(b) and getattr(a, "_metadata", None) == getattr(b, "_metadata", None), where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def shared(state):
    """Which tensors of a loaded checkpoint share memory: as saved, or not."""
    model, extra = state["model"], state["extra"]
    return (model["0.weight"].data_ptr() == model["2.weight"].data_ptr(),
            extra[1].untyped_storage().data_ptr() == extra[0].untyped_storage().data_ptr())


def test_fast_load_gives_what_torch_load_gives(tmp_path):
    import checkpoint_files

    _, path = a_checkpoint(tmp_path)
    plain = checkpoint_files.load_checkpoint(path)
    fast = checkpoint_files.load_checkpoint(path, fast=True)
    assert_same(plain, fast)
    assert shared(fast) == shared(plain) == (True, True)


def test_fast_load_reads_the_file_once(tmp_path, monkeypatch):
    """The page: one read of the file, where load_checkpoint reads it twice (sha256, then
    torch.load)."""
    import builtins

    import checkpoint_files

    _, path = a_checkpoint(tmp_path)
    big = torch.zeros(1 << 20)  # 4 MiB: the file is mostly tensor data, as a real one is
    path = checkpoint_files.save_checkpoint({"big": big}, str(tmp_path), 2, log=lambda *a: None)
    size = os.path.getsize(path)
    read = {"bytes": 0}

    class Counting:
        def __init__(self, f):
            self.f = f

        def read(self, n=-1):
            data = self.f.read(n)
            read["bytes"] += len(data)
            return data

        def readinto(self, b):
            n = self.f.readinto(b)
            read["bytes"] += n or 0
            return n

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    def counting_open(file, mode="r", *args, **kwargs):
        f = builtins.open(file, mode, *args, **kwargs)
        return Counting(f) if file == path and "b" in mode else f

    monkeypatch.setattr(checkpoint_files, "open", counting_open, raising=False)
    for fast, low, high in ((False, 2.0, 2.2), (True, 1.0, 1.1)):
        read["bytes"] = 0
        state = checkpoint_files.load_checkpoint(path, fast=fast)
        assert torch.equal(state["big"], big)
        assert low * size <= read["bytes"] <= high * size, (fast, read["bytes"] / size)


@pytest.mark.parametrize("damage", ["flipped byte", "truncated", "empty", "bad checksum file",
                                    "no checksum file", "not a checkpoint"])
def test_fast_load_fails_as_load_checkpoint_fails(tmp_path, damage):
    import checkpoint_files

    _, path = a_checkpoint(tmp_path)
    data = bytearray(open(path, "rb").read())
    if damage == "flipped byte":
        data[len(data) // 2] ^= 1
    elif damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "empty":
        data = b""
    elif damage == "not a checkpoint":
        data = b"#!/bin/sh\n" * 100
    if damage == "bad checksum file":
        open(path + ".sha256", "w").write("not a sha256\n")
    if damage in ("no checksum file", "not a checkpoint"):
        os.remove(path + ".sha256")
    open(path, "wb").write(data)
    kwargs = {"require_checksum": True} if damage == "no checksum file" else {}
    errors = []
    for fast in (False, True):
        with pytest.raises(checkpoint_files.CheckpointError) as caught:
            checkpoint_files.load_checkpoint(path, fast=fast, **kwargs)
        errors.append(str(caught.value))
    assert errors[0] == errors[1] and path in errors[0]


def test_fast_load_loads_what_it_does_not_read_itself_with_torch_load(tmp_path):
    """An old-format file (before the zip format): torch.load, same result."""
    import checkpoint_files

    state = {"w": torch.arange(6.0).view(2, 3), "step": 3}
    path = str(tmp_path / "old.pt")
    torch.save(state, path, _use_new_zipfile_serialization=False)
    assert_same(checkpoint_files.load_checkpoint(path, fast=True), state)


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads Linux's /proc/self/maps")
def test_fast_load_maps_nothing_so_saving_over_the_file_is_safe(tmp_path):
    """The page: the loaded tensors are the process's own memory. Saving over the file in
    place (what kills a process that loaded it with mmap=True: tests/recipes/
    test_save_and_resume.py) and rotating it away leave the resumed training untouched."""
    import checkpoint_files

    saved, path = a_checkpoint(tmp_path)
    state, loaded = checkpoint_files.load_latest(str(tmp_path), fast=True, log=lambda *a: None)
    assert loaded == path and str(path) not in Path("/proc/self/maps").read_text()
    expected = {k: v.clone() for k, v in state["model"].items()}
    with open(path, "r+b") as f:  # in place: the file truncated and written again
        f.truncate(0)
        torch.save({"other": torch.zeros(3)}, f)
    for step in (2, 3):  # keep=1: the loaded ckpt-00000001.pt rotated away
        checkpoint_files.save_checkpoint(state, str(tmp_path), step, keep=1, log=lambda *a: None)
    assert not os.path.exists(path)
    assert all(torch.equal(state["model"][k], v) for k, v in expected.items())
    assert_same(state["optimizer"], saved["optimizer"])
