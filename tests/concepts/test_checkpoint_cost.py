"""The checkpoint-cost page: its tables come from the committed benchmark results, unedited,
and what its prose concludes holds for those results. The benchmark itself is not run here
(bench/checkpoint_bench.py, `make bench`)."""

from __future__ import annotations

import json
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


def test_results_record_machine_versions_and_samples():
    assert CPU["schema"] == bench_measure.SCHEMA and CPU["kind"] == "cpu"
    assert {"cpu", "cores", "memory_bytes", "disk_free_bytes"} <= set(CPU["machine"])
    assert {"python", "torch", "safetensors"} <= set(CPU["versions"])
    assert CPU["date"] and CPU["settings"]["repeats"] >= 3
    assert len(CPU["results"]) >= 2
    for r in CPU["results"]:
        assert set(r["methods"]) == set(bench_measure.METHODS)
        for key, m in r["methods"].items():
            assert len(m["save_s" if key != "torch_load_mmap" else "load_s"]) == CPU["settings"]["repeats"]
        assert r["methods"]["dcp_async"]["blocked_median_s"] > 0


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
               "fsync", "dcp", "cuda", "fused", "save", "NVIDIA", "GPU", "CPU"}
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
    assert {c for w in words for c in w if ord(c) not in glyphs} == set()


def test_what_the_page_concludes_holds_for_these_results():
    s = bench_render.summary(CPU)
    # Adam keeps two tensors the size of each parameter (and a scalar step).
    assert s["adam_over_weights"] == pytest.approx(2.0, abs=0.01)
    for r in CPU["results"]:
        m = r["methods"]
        # async_save gives the caller back well before the files are written.
        assert m["dcp_async"]["blocked_median_s"] < 0.5 * m["dcp_async"]["save_median_s"]
        # Loading costs more than reading the same bytes raw, for every format.
        for key in ("torch_save", "torch_load_mmap", "safetensors", "dcp"):
            assert m[key]["load_median_s"] > m["raw"]["load_median_s"], (r["params"], key)
    big = max(CPU["results"], key=lambda r: r["params"])["methods"]
    # On the largest model, every format saves within a small factor of the raw write,
    assert s["save_over_raw_max"] < 3
    # one process of dcp is no faster than one torch.save file (noise allowed),
    assert big["dcp"]["save_median_s"] > 0.8 * big["torch_save"]["save_median_s"]
    # and async_save's total is longer than a synchronous dcp.save.
    assert big["dcp_async"]["save_median_s"] > big["dcp"]["save_median_s"]


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
