"""Tables and plots for docs/concepts/checkpoint-cost.md from the benchmark's JSON.

Needs no torch: `python bench/checkpoint_bench.py --render` rewrites them from
docs/assets/bench/*.json, and tests/concepts/test_checkpoint_cost.py checks that the committed ones
are what the JSON gives.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench_measure import (CPU_JSON, GOALS, GPU_JSON, LOAD_METHODS, RECOMMENDED_LOAD, RECOMMENDED_SAVE,
                           SAVE_METHODS, TRAIN_METHODS)

# Results of schema 1 (before blocked times, the library's loads and throughput): their methods.
METHODS = {
    "raw": "raw bytes (write+fsync / read)",
    "torch_save": "`torch.save` / `torch.load`",
    "torch_load_mmap": "`torch.load(mmap=True)`",
    "safetensors": "safetensors + `torch.save` (optimizer)",
    "dcp": "`dcp.save` / `dcp.load`",
    "dcp_async": "`dcp.async_save` (total)",
}

TABLES = Path(__file__).resolve().parent.parent / "outputs" / "concepts" / "checkpoint-cost"
LANGS = ("en", "ja")


def table_name(kind: str, lang: str) -> str:
    """cpu.md / gpu.md for the English page, cpu.ja.md / gpu.ja.md for the Japanese one."""
    return f"{kind}.md" if lang == "en" else f"{kind}.{lang}.md"


# The tables' words in each language: headers, captions, labels. Code and product names
# stay as they are; numbers and units are the same in both.
TABLE_WORDS = {
    "en": {
        "cpu_stamp": "{cpu}, {cores} cores, {mem} GiB RAM, {disk} GB disk free",
        "median_runs": "median of {n} runs", "median_steps": "median of {n} steps",
        "seconds": "{s} s",
        "cpu_head": ["params", "GB", "Adam ÷ weights", "method", "save s", "save ÷ raw",
                     "load s", "load ÷ raw"],
        "methods": dict(METHODS),
        "async_head": ["params", "`async_save` blocked s", "total s", "blocked ÷ total"],
        "summary_head": ["{m}M params", "value"],
        "summary": ["Adam state ÷ weights", "checkpoint (weights + Adam)",
                    "raw write+fsync / cold read",
                    "save ÷ raw write (torch.save, safetensors, dcp)",
                    "`async_save`: blocked ÷ total"],
        "gpu_none": "CUDA",
        "gpu_head": ["after resume", "`step` on", "param tensors", "`optimizer.step()` ms",
                     "syncs per step"],
        "gpu_rows": {"recommended": "model → optimizer → `load_state_dict`",
                     "classic_loop": "+ loop moving every state tensor to cuda",
                     "fused": "`Adam(fused=True)`",
                     "fused_lost": "`Adam(fused=True)` + `load_state_dict`: the saved `fused=None` "
                                   "won, so not fused ([why](../troubleshooting/errors.md#fused-flag))"},
        "copy_caption": "GPU → CPU copy, seconds (GB/s): into buffers allocated before, and "
                        "allocated during the copy (as a first save does)",
        "copy_head": ["params", "GB", "pageable", "pinned", "pageable + allocation",
                      "pinned + allocation"],
        "old_copy_caption": "Measured before the copies were compared like with like: pageable "
                            "includes allocating fresh memory (page faults), pinned does not "
                            "include its allocation.",
        "old_copy_head": ["params", "GB", "GPU → CPU s (pageable)", "GB/s",
                          "GPU → CPU s (pinned)", "GB/s"],
    },
    "ja": {
        "cpu_stamp": "{cpu}、{cores} コア、メモリ {mem} GiB、ディスクの空き {disk} GB",
        "median_runs": "{n} 回の中央値", "median_steps": "{n} ステップの中央値",
        "seconds": "{s} 秒",
        "cpu_head": ["パラメータ数", "GB", "Adam ÷ 重み", "方法", "保存（秒）", "保存 ÷ 生データ",
                     "読み込み（秒）", "読み込み ÷ 生データ"],
        "methods": {**METHODS, "raw": "生データ（書き込みと fsync / 読み込み）",
                    "safetensors": "safetensors + `torch.save`（オプティマイザ）",
                    "dcp_async": "`dcp.async_save`（合計）"},
        "async_head": ["パラメータ数", "`async_save` で待たされる時間（秒）", "合計（秒）",
                       "待たされる時間 ÷ 合計"],
        "summary_head": ["パラメータ {m}M", "値"],
        "summary": ["Adam の状態 ÷ 重み", "チェックポイント（重み + Adam）",
                    "生データの書き込みと fsync / ディスクからの読み込み",
                    "保存 ÷ 生データの書き込み（torch.save、safetensors、dcp）",
                    "`async_save`：待たされる時間 ÷ 合計"],
        "gpu_none": "CUDA",
        "gpu_head": ["再開の手順", "`step` の場所", "パラメータのテンソル数",
                     "`optimizer.step()`（ミリ秒）", "1 ステップの同期回数"],
        "gpu_rows": {"recommended": "モデル → オプティマイザ → `load_state_dict`",
                     "classic_loop": "+ 状態のテンソルをすべて cuda に移すループ",
                     "fused": "`Adam(fused=True)`",
                     "fused_lost": "`Adam(fused=True)` + `load_state_dict`：保存された `fused=None` "
                                   "が優先され、fused にならない（[理由](../troubleshooting/errors.md#fused-flag)）"},
        "copy_caption": "GPU から CPU へのコピーの時間（秒）と速度（GB/s）：あらかじめ確保したバッファへ"
                        "のコピーと、コピーの中でバッファを確保する場合（最初の保存と同じ）",
        "copy_head": ["パラメータ数", "GB", "ページング可能", "ピン留め", "ページング可能 + 確保",
                      "ピン留め + 確保"],
        "old_copy_caption": "コピーを同じ条件で比べる前の計測です。ページング可能なメモリの時間は新しい"
                            "メモリの確保（ページフォールト）を含み、ピン留めの時間は確保を含みません。",
        "old_copy_head": ["パラメータ数", "GB", "GPU → CPU 秒（ページング可能）", "GB/s",
                          "GPU → CPU 秒（ピン留め）", "GB/s"],
    },
}


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"

# ---------------------------------------------------------------------------- rendering
def _fmt_s(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def _ratio(x: float | None, raw: float) -> str:
    return "—" if x is None else f"{x / raw:.2f}×"


def summary_v1(cpu: dict) -> dict:
    """Schema 1: the figures the page's prose referred to."""
    big = max(cpu["results"], key=lambda r: r["params"])
    m = big["methods"]
    raw_w, raw_r = m["raw"]["save_median_s"], m["raw"]["load_median_s"]
    formats = ("torch_save", "safetensors", "dcp")
    return {
        "params": big["params"],
        "adam_over_weights": big["optimizer_bytes"] / big["weights_bytes"],
        "total_gb": big["total_bytes"] / 1e9,
        "raw_write_gb_s": big["total_bytes"] / raw_w / 1e9,
        "raw_read_gb_s": big["total_bytes"] / raw_r / 1e9,
        "save_over_raw_max": max(m[k]["save_median_s"] / raw_w for k in formats),
        "save_over_raw_min": min(m[k]["save_median_s"] / raw_w for k in formats),
        "load_over_raw_max": max(m[k]["load_median_s"] / raw_r for k in formats + ("torch_load_mmap",)),
        "async_blocked_over_total": m["dcp_async"]["blocked_median_s"] / m["dcp_async"]["save_median_s"],
        "async_blocked_s": m["dcp_async"]["blocked_median_s"],
        "async_total_s": m["dcp_async"]["save_median_s"],
    }


def render_cpu_v1(cpu: dict, lang: str = "en") -> str:
    w = TABLE_WORDS[lang]
    mach, ver, st = cpu["machine"], cpu["versions"], cpu["settings"]
    comma = "、" if lang == "ja" else ", "
    machine = w["cpu_stamp"].format(cpu=mach["cpu"], cores=mach["cores"],
                                    mem=f"{mach['memory_bytes'] / 2**30:.0f}",
                                    disk=f"{mach['disk_free_bytes'] / 1e9:.0f}")
    lines = [
        "<!-- Generated by bench/checkpoint_bench.py from docs/assets/bench/cpu.json. Do not edit. -->",
        "",
        f"`{cpu['date']}` · {machine} · "
        f"torch `{ver['torch']}`{comma}safetensors `{ver.get('safetensors', '—')}`{comma}Python `{ver['python']}` · "
        f"{w['median_runs'].format(n=st['repeats'])} · {w['seconds'].format(s=round(cpu['duration_s']))}",
        "",
        _row(w["cpu_head"]),
        "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in cpu["results"]:
        m = r["methods"]
        raw_w, raw_r = m["raw"]["save_median_s"], m["raw"]["load_median_s"]
        first = True
        for key, label in w["methods"].items():
            e = m[key]
            save = e.get("save_median_s")
            load = e.get("load_median_s")
            head = (f"{r['params'] / 1e6:.1f}M | {r['total_bytes'] / 1e9:.2f} | "
                    f"{r['optimizer_bytes'] / r['weights_bytes']:.2f}" if first else " | | ")
            if key == "torch_load_mmap":
                save = None
            lines.append(f"| {head} | {label} | {_fmt_s(save)} | {_ratio(save, raw_w)} | "
                         f"{_fmt_s(load)} | {_ratio(load, raw_r)} |")
            first = False
    lines += ["", _row(w["async_head"]), "| ---: | ---: | ---: | ---: |"]
    for r in cpu["results"]:
        a = r["methods"]["dcp_async"]
        lines.append(f"| {r['params'] / 1e6:.1f}M | {a['blocked_median_s']:.2f} | {a['save_median_s']:.2f} | "
                     f"{a['blocked_median_s'] / a['save_median_s']:.2f} |")
    s = summary_v1(cpu)
    head = [w["summary_head"][0].format(m=f"{s['params'] / 1e6:.1f}"), w["summary_head"][1]]
    values = [f"{s['adam_over_weights']:.2f}", f"{s['total_gb']:.2f} GB",
              f"{s['raw_write_gb_s']:.2f} / {s['raw_read_gb_s']:.2f} GB/s",
              f"{s['save_over_raw_min']:.2f}× – {s['save_over_raw_max']:.2f}×",
              f"{s['async_blocked_over_total']:.2f}"]
    lines += ["", _row(head), "| --- | ---: |",
              *(_row([name, value]) for name, value in zip(w["summary"], values)), ""]
    return "\n".join(lines)


def render_gpu(gpu: dict | None, lang: str = "en") -> str:
    w = TABLE_WORDS[lang]
    head = "<!-- Generated by bench/checkpoint_bench.py from docs/assets/bench/gpu.json. Do not edit. -->"
    if gpu is None:
        return "\n".join([head, "", f"| {w['gpu_none']} | |", "| --- | --- |",
                          "| — | `python bench/checkpoint_bench.py --gpu --quick` |", ""])
    ver = gpu["versions"]
    comma = "、" if lang == "ja" else ", "
    lines = [head, "",
             f"`{gpu['date']}` · {gpu['machine']['gpu']} · torch `{ver['torch']}`{comma}CUDA `{ver.get('cuda')}` · "
             f"{w['median_steps'].format(n=gpu['settings']['steps'])} · "
             f"{w['seconds'].format(s=round(gpu['duration_s']))}", "",
             _row(w["gpu_head"]),
             "| --- | --- | ---: | ---: | ---: |"]
    names = {k: w["gpu_rows"][k] for k in ("recommended", "classic_loop", "fused")}
    for r in gpu["step"]:
        if r["variant"] == "fused" and not r["step_device"].startswith("cuda"):
            # Measured before the benchmark set fused=True again after loading.
            names["fused"] = w["gpu_rows"]["fused_lost"]
        lines.append(f"| {names[r['variant']]} | `{r['step_device']}` | {r['param_tensors']} | "
                     f"{r['step_median_ms']:.2f} | {r['syncs_per_step']} |")
    if "pageable_alloc_s" in gpu["copy"][0]:
        lines += ["", w["copy_caption"], "", _row(w["copy_head"]),
                  "| ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in gpu["copy"]:
            cells = " | ".join(f"{r[k]:.3f} ({r[k.replace('_s', '_gb_s')]:.1f})" for k in
                               ("pageable_s", "pinned_s", "pageable_alloc_s", "pinned_alloc_s"))
            lines.append(f"| {r['params'] / 1e6:.1f}M | {r['bytes'] / 1e9:.2f} | {cells} |")
    else:  # results from before the like-with-like measurement
        lines += ["", w["old_copy_caption"], "", _row(w["old_copy_head"]),
                  "| ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in gpu["copy"]:
            lines.append(f"| {r['params'] / 1e6:.1f}M | {r['bytes'] / 1e9:.2f} | {r['pageable_s']:.3f} | "
                         f"{r['pageable_gb_s']:.1f} | {r['pinned_s']:.3f} | {r['pinned_gb_s']:.1f} |")
    lines += render_gpu_v2(gpu, lang)
    lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- schema 2
# The words of the ratio tables (schema 2), added to TABLE_WORDS.
TABLE_WORDS["en"] |= {
    "cpu_stamp2": "{cpu}, {cores} cores, {mem} GiB RAM, disk {disk} ({free} GB free)",
    "save_caption": "Save: *blocked* until the call gives the training loop back, *total* until "
                    "the files are fsync'ed.",
    "save_head": ["params", "GB", "method", "blocked s", "blocked ÷ `torch.save`", "total s",
                  "total ÷ raw write"],
    "load_caption": "Load, from a cold page cache into a model and Adam, every page written once.",
    "load_head": ["params", "GB", "method", "load s", "load ÷ raw read"],
    "train_caption": "Training with a checkpoint every {every} steps ({steps} steps, batch {batch}): "
                     "the training time each checkpoint costs, and the throughput lost.",
    "train_head": ["params", "step s", "method", "s lost per checkpoint",
                   "lost, one every {every} steps", "lost, one a minute"],
    "save_methods": dict(SAVE_METHODS),
    "load_methods": dict(LOAD_METHODS),
    "goals_head": ["{m}M params", "goal", "measured", "met"],
    "goals": ["blocked time of `BackgroundCheckpointer.save` ÷ synchronous `torch.save`",
              "throughput lost at one checkpoint a minute, `BackgroundCheckpointer`",
              "load ÷ raw read, `load_checkpoint(fast=True)`, sha256 checked",
              "load ÷ raw read, `load_checkpoint(fast=True)`, no sha256 file"],
    "staging_caption": "Saves that do not stop training, on the GPU: the staging copy to pinned "
                       "host memory (a stager kept between saves) against the pinned copy "
                       "measured above, and the time each save blocks the caller.",
    "staging_head": ["params", "GB", "staging GB/s", "÷ pinned copy", "`dcp.async_save` blocked s",
                     "`BackgroundCheckpointer.save` blocked s"],
}
TABLE_WORDS["ja"] |= {
    "cpu_stamp2": "{cpu}、{cores} コア、メモリ {mem} GiB、ディスク {disk}（空き {free} GB）",
    "save_caption": "保存：*待たされる時間* は呼び出しが学習ループに戻るまで、*合計* はファイルを "
                    "fsync し終えるまでです。",
    "save_head": ["パラメータ数", "GB", "方法", "待たされる時間（秒）", "待たされる時間 ÷ `torch.save`",
                  "合計（秒）", "合計 ÷ 生データの書き込み"],
    "load_caption": "読み込み：ページキャッシュにない状態から、モデルと Adam へ。すべてのページに一度書き込むまで。",
    "load_head": ["パラメータ数", "GB", "方法", "読み込み（秒）", "読み込み ÷ 生データの読み込み"],
    "train_caption": "{every} ステップごとにチェックポイントを保存する学習（{steps} ステップ、バッチ {batch}）："
                     "チェックポイント 1 回で失う学習時間と、失うスループット。",
    "train_head": ["パラメータ数", "1 ステップ（秒）", "方法", "1 回で失う時間（秒）",
                   "{every} ステップごとのとき失う割合", "1 分ごとのとき失う割合"],
    "save_methods": {**SAVE_METHODS, "raw": "生データ（書き込みと fsync）",
                     "torch_save": "`torch.save` と `fsync`",
                     "memory_copy": "状態のメモリ上のコピー（ディスクなし）",
                     "save_checkpoint": "`save_checkpoint`（sha256 ファイル、`latest`）",
                     "safetensors": "safetensors + `torch.save`（オプティマイザ）",
                     "dcp_async": "`dcp.async_save`（スレッド）",
                     "dcp_async_process": "`dcp.async_save`（プロセス、ステージャを再利用）"},
    "load_methods": {**LOAD_METHODS, "raw": "生データ（ディスクからの読み込み）",
                     "safetensors": "safetensors + `torch.load`（オプティマイザ）",
                     "load_checkpoint": "`load_checkpoint`（sha256 を確認）",
                     "fast_load": "`load_checkpoint(fast=True)`（sha256 を確認）",
                     "fast_load_unchecked": "`load_checkpoint(fast=True)`（sha256 ファイルなし）",
                     "sha256": "メモリ上のバイト列の sha256"},
    "goals_head": ["パラメータ {m}M", "目標", "計測値", "達成"],
    "goals": ["`BackgroundCheckpointer.save` で待たされる時間 ÷ 同期の `torch.save`",
              "1 分ごとにチェックポイントを保存したときに失うスループット（`BackgroundCheckpointer`）",
              "読み込み ÷ 生データの読み込み：`load_checkpoint(fast=True)`、sha256 を確認",
              "読み込み ÷ 生データの読み込み：`load_checkpoint(fast=True)`、sha256 ファイルなし"],
    "staging_caption": "学習を止めない保存（GPU）：ピン留めしたホストメモリへのステージングのコピー"
                       "（ステージャを保存のたびに再利用）の速度を上のピン留めのコピーと比べたものと、"
                       "保存 1 回で待たされる時間です。",
    "staging_head": ["パラメータ数", "GB", "ステージング GB/s", "÷ ピン留めのコピー",
                     "`dcp.async_save` で待たされる時間（秒）",
                     "`BackgroundCheckpointer.save` で待たされる時間（秒）"],
}
SAVES, LOADS = tuple(SAVE_METHODS), tuple(LOAD_METHODS)


def _median(entry: dict | None, name: str) -> float | None:
    return None if not entry else entry.get(f"{name}_median_s")


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def summary(cpu: dict) -> dict:
    """The figures the page's prose refers to, at the largest size, derived from the JSON
    (tests check these). None where the run did not measure a method."""
    if cpu.get("schema", 1) < 2:
        return summary_v1(cpu)
    big = max(cpu["results"], key=lambda r: r["params"])
    m = big["methods"]
    raw_w, raw_r = _median(m["raw"], "save"), _median(m["raw"], "load")
    sync = _median(m["torch_save"], "save")
    out = {
        "params": big["params"],
        "adam_over_weights": big["optimizer_bytes"] / big["weights_bytes"],
        "total_gb": big["total_bytes"] / 1e9,
        "raw_write_gb_s": big["total_bytes"] / raw_w / 1e9,
        "raw_read_gb_s": big["total_bytes"] / raw_r / 1e9,
        "sha256_gb_s": big["total_bytes"] / _median(m["sha256"], "load") / 1e9,
        "blocked_over_sync": {}, "total_over_raw": {}, "load_over_raw": {},
        "lost_per_minute": {}, "lost_every": {}, "lost_per_checkpoint_s": {},
    }
    for k in SAVES:
        blocked, total = _median(m.get(k), "blocked"), _median(m.get(k), "save")
        out["blocked_over_sync"][k] = None if blocked is None else blocked / sync
        out["total_over_raw"][k] = None if total is None else total / raw_w
    for k in LOADS:
        load = _median(m.get(k), "load")
        out["load_over_raw"][k] = None if load is None else load / raw_r
    train = big.get("train", {}).get("methods", {})
    for k in TRAIN_METHODS:
        t = train.get(k)
        out["lost_per_minute"][k] = None if t is None else t["lost_share_per_minute"]
        out["lost_every"][k] = None if t is None else t["lost_share"]
        out["lost_per_checkpoint_s"][k] = None if t is None else t["lost_per_checkpoint_s"]
    out["goals"] = [(GOALS["blocked_over_sync"], out["blocked_over_sync"][RECOMMENDED_SAVE]),
                    (GOALS["lost_per_minute"], out["lost_per_minute"][RECOMMENDED_SAVE]),
                    (GOALS["load_over_raw"], out["load_over_raw"][RECOMMENDED_LOAD]),
                    (GOALS["load_over_raw"], out["load_over_raw"]["fast_load_unchecked"])]
    return out


def _stamp(cpu: dict, lang: str) -> str:
    w = TABLE_WORDS[lang]
    mach, ver, st = cpu["machine"], cpu["versions"], cpu["settings"]
    comma = "、" if lang == "ja" else ", "
    disk = mach.get("disk", {})
    disk = " ".join(x for x in (f"`{disk.get('device', '?')}`", disk.get("model", "")) if x)
    machine = w["cpu_stamp2"].format(cpu=mach["cpu"], cores=mach["cores"],
                                     mem=f"{mach['memory_bytes'] / 2**30:.0f}", disk=disk,
                                     free=f"{mach['disk_free_bytes'] / 1e9:.0f}")
    return (f"`{cpu['date']}` · {machine} · "
            f"torch `{ver['torch']}`{comma}safetensors `{ver.get('safetensors', '—')}`{comma}"
            f"Python `{ver['python']}` · {w['median_runs'].format(n=st['repeats'])} · "
            f"{w['seconds'].format(s=round(cpu['duration_s']))}")


def render_cpu(cpu: dict, lang: str = "en") -> str:
    if cpu.get("schema", 1) < 2:
        return render_cpu_v1(cpu, lang)
    w = TABLE_WORDS[lang]
    lines = ["<!-- Generated by bench/checkpoint_bench.py from docs/assets/bench/cpu.json. Do not edit. -->",
             "", _stamp(cpu, lang), "", w["save_caption"], "", _row(w["save_head"]),
             "| ---: | ---: | --- | ---: | ---: | ---: | ---: |"]

    def head(r, first):
        return f"{r['params'] / 1e6:.1f}M | {r['total_bytes'] / 1e9:.2f}" if first else " | "

    for r in cpu["results"]:
        m = r["methods"]
        sync, raw_w = _median(m["torch_save"], "save"), _median(m["raw"], "save")
        for i, k in enumerate(SAVES):
            blocked, total = _median(m.get(k), "blocked"), _median(m.get(k), "save")
            lines.append(f"| {head(r, i == 0)} | {w['save_methods'][k]} | {_fmt_s(blocked)} | "
                         f"{_ratio(blocked, sync)} | {_fmt_s(total)} | {_ratio(total, raw_w)} |")
    lines += ["", w["load_caption"], "", _row(w["load_head"]), "| ---: | ---: | --- | ---: | ---: |"]
    for r in cpu["results"]:
        m = r["methods"]
        raw_r = _median(m["raw"], "load")
        for i, k in enumerate(LOADS):
            load = _median(m.get(k), "load")
            lines.append(f"| {head(r, i == 0)} | {w['load_methods'][k]} | {_fmt_s(load)} | "
                         f"{_ratio(load, raw_r)} |")
    trained = [r for r in cpu["results"] if r.get("train")]
    if trained:
        t0 = trained[0]["train"]
        lines += ["", w["train_caption"].format(every=t0["every"], steps=t0["steps"], batch=t0["batch"]),
                  "", _row([c.format(every=t0["every"]) for c in w["train_head"]]),
                  "| ---: | ---: | --- | ---: | ---: | ---: |"]
        for r in trained:
            t = r["train"]
            for i, k in enumerate(TRAIN_METHODS):
                e = t["methods"].get(k)
                first = f"{r['params'] / 1e6:.1f}M | {t['step_s']:.3f}" if i == 0 else " | "
                lines.append(f"| {first} | {w['save_methods'][k]} | "
                             f"{_fmt_s(e and e['lost_per_checkpoint_s'])} | {_pct(e and e['lost_share'])} | "
                             f"{_pct(e and e['lost_share_per_minute'])} |")
    s = summary(cpu)
    lines += ["", _row([w["goals_head"][0].format(m=f"{s['params'] / 1e6:.1f}"), *w["goals_head"][1:]]),
              "| --- | ---: | ---: | :---: |"]
    fmts = (_ratio, _pct, _ratio, _ratio)
    for name, (goal, value), fmt in zip(w["goals"], s["goals"], fmts):
        shown_goal = f"≤ {goal * 100:.0f}%" if fmt is _pct else f"≤ {goal:.2f}×"
        shown = fmt(value) if fmt is _pct else _ratio(value, 1.0)
        met = "—" if value is None else ("✓" if value <= goal else "✗")
        lines.append(_row([name, shown_goal, shown, met]))
    lines.append("")
    return "\n".join(lines)


def render_gpu_v2(gpu: dict, lang: str) -> list[str]:
    """The staging and throughput rows of a schema-2 GPU run."""
    w = TABLE_WORDS[lang]
    lines = []
    if gpu.get("staging"):
        lines += ["", w["staging_caption"], "", _row(w["staging_head"]),
                  "| ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in gpu["staging"]:
            share = r.get("stage_share_of_pinned")
            lines.append(f"| {r['params'] / 1e6:.1f}M | {r['bytes'] / 1e9:.2f} | {r['stage_gb_s']:.1f} | "
                         f"{'—' if share is None else f'{share:.2f}'} | "
                         f"{_fmt_s(r.get('dcp_async_process_blocked_s'))} | {_fmt_s(r.get('background_blocked_s'))} |")
    if gpu.get("train"):
        t0 = gpu["train"][0]
        lines += ["", w["train_caption"].format(every=t0["every"], steps=t0["steps"], batch=t0["batch"]),
                  "", _row([c.format(every=t0["every"]) for c in w["train_head"]]),
                  "| ---: | ---: | --- | ---: | ---: | ---: |"]
        params = [r["params"] for r in gpu["staging"]] if gpu.get("staging") else [None] * len(gpu["train"])
        for n, t in zip(params, gpu["train"]):
            for i, k in enumerate(TRAIN_METHODS):
                e = t["methods"].get(k)
                size = "—" if n is None else f"{n / 1e6:.1f}M"
                first = f"{size} | {t['step_s']:.4f}" if i == 0 else " | "
                lines.append(f"| {first} | {w['save_methods'][k]} | "
                             f"{_fmt_s(e and e['lost_per_checkpoint_s'])} | {_pct(e and e['lost_share'])} | "
                             f"{_pct(e and e['lost_share_per_minute'])} |")
    return lines


# The plots' words in each language; the Japanese page shows the .ja.png files.
PLOT_LABELS = {
    "en": {
        "stamp": "{date} · torch {torch} · {cpu}, {cores} cores · median of {repeats} runs",
        "save": "save (fsync'ed)", "load": "load (cold, into model + Adam)",
        "params_millions": "parameters (millions), Adam state included",
        "params": "parameters, Adam state included", "seconds": "seconds",
        "methods": {k: v.replace("`", "") for k, v in METHODS.items()},
        "dcp_save": "dcp.save (blocked throughout)",
        "async_total": "dcp.async_save: total", "async_blocked": "dcp.async_save: blocked",
    },
    "ja": {
        "stamp": "{date} · torch {torch} · {cpu}、{cores} コア · {repeats} 回の中央値",
        "save": "保存（fsync まで）", "load": "読み込み（ディスクから、モデルと Adam へ）",
        "params_millions": "パラメータ数（百万、Adam の状態を含む）",
        "params": "パラメータ数（Adam の状態を含む）", "seconds": "秒",
        "methods": {**{k: v.replace("`", "") for k, v in METHODS.items()},
                    "raw": "生データ（書き込みと fsync / 読み込み）",
                    "safetensors": "safetensors + torch.save（オプティマイザ）",
                    "dcp_async": "dcp.async_save（合計）"},
        "dcp_save": "dcp.save（終わるまで待たされる）",
        "async_total": "dcp.async_save：合計", "async_blocked": "dcp.async_save：待たされる時間",
    },
}


def plot_cpu(cpu: dict, out: Path) -> list[Path]:
    """save_load.png and async_save.png, and their Japanese versions (.ja.png: mkdocs-static-i18n,
    suffix structure with no fallback, publishes to the Japanese site only .ja files)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib_fontja  # noqa: F401  registers IPAexGothic, a font with Japanese glyphs

    paths = []
    for lang, font in (("en", "DejaVu Sans"), ("ja", "IPAexGothic")):
        with plt.rc_context({"font.family": font}):
            plot = _plot_cpu if cpu.get("schema", 1) >= 2 else _plot_cpu_v1
            paths += plot(cpu, out, PLOT_LABELS[lang], "" if lang == "en" else ".ja")
    return paths


def _plot_cpu_v1(cpu: dict, out: Path, words: dict, suffix: str) -> list[Path]:
    import matplotlib.pyplot as plt

    mach, ver = cpu["machine"], cpu["versions"]
    stamp = words["stamp"].format(date=cpu["date"], torch=ver["torch"], cpu=mach["cpu"],
                                  cores=mach["cores"], repeats=cpu["settings"]["repeats"])
    xs = [r["params"] / 1e6 for r in cpu["results"]]
    styles = {"raw": dict(color="black", linestyle="--", marker="o"),
              "torch_save": dict(color="tab:blue", marker="s"),
              "torch_load_mmap": dict(color="tab:cyan", marker="v"),
              "safetensors": dict(color="tab:green", marker="^"),
              "dcp": dict(color="tab:red", marker="D"),
              "dcp_async": dict(color="tab:purple", marker="x")}
    labels = words["methods"]
    paths = []

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), dpi=90, sharey=False)
    for ax, op in ((axes[0], "save"), (axes[1], "load")):
        for key, style in styles.items():
            ys = [r["methods"][key].get(f"{op}_median_s") for r in cpu["results"]]
            if key == "torch_load_mmap" and op == "save" or all(y is None for y in ys):
                continue
            ax.plot(xs, ys, label=labels[key], linewidth=1.5, markersize=5, **style)
        ax.set_title(words[op], fontsize=10)
        ax.set_xlabel(words["params_millions"])
        ax.set_ylabel(words["seconds"])
        ax.grid(alpha=0.3)
    for ax in axes:
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(stamp, fontsize=7.5)
    fig.tight_layout()
    paths.append(out / f"save_load{suffix}.png")
    fig.savefig(paths[-1])
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=90)
    blocked = [r["methods"]["dcp_async"]["blocked_median_s"] for r in cpu["results"]]
    total = [r["methods"]["dcp_async"]["save_median_s"] for r in cpu["results"]]
    sync = [r["methods"]["dcp"]["save_median_s"] for r in cpu["results"]]
    pos = range(len(xs))
    ax.bar([p - 0.2 for p in pos], sync, width=0.4, color="tab:red", label=words["dcp_save"])
    ax.bar([p + 0.2 for p in pos], total, width=0.4, color="#d9c6ea", label=words["async_total"])
    ax.bar([p + 0.2 for p in pos], blocked, width=0.4, color="tab:purple", label=words["async_blocked"])
    ax.set_xticks(list(pos), [f"{x:.0f}M" for x in xs])
    ax.set_xlabel(words["params"])
    ax.set_ylabel(words["seconds"])
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    fig.suptitle(stamp, fontsize=6.5)
    fig.tight_layout()
    paths.append(out / f"async_save{suffix}.png")
    fig.savefig(paths[-1])
    plt.close(fig)
    for p in paths:
        _shrink_png(p)
    return paths


# Schema 2: the words of the ratio plots (keys "save:<method>", "load:<method>", "train:<method>"
# in "methods", the others beside them).
PLOT_LABELS["en"] |= {
    "blocked_over_sync": "blocked ÷ synchronous torch.save", "load_over_raw": "load ÷ raw cold read",
    "lost_per_minute": "throughput lost (%)\none checkpoint a minute", "goal": "goal",
    "save_panel": "save: time the training loop waits", "load_panel": "load (cold, into model + Adam)",
}
PLOT_LABELS["ja"] |= {
    "blocked_over_sync": "待たされる時間 ÷ 同期の torch.save", "load_over_raw": "読み込み ÷ 生データの読み込み",
    "lost_per_minute": "失うスループット（%）\n1 分ごとに保存したとき", "goal": "目標",
    "save_panel": "保存：学習ループが待たされる時間", "load_panel": "読み込み（ディスクから、モデルと Adam へ）",
}
for _lang in LANGS:
    _words = TABLE_WORDS[_lang]
    PLOT_LABELS[_lang]["methods"] |= {
        **{f"save:{k}": v.replace("`", "") for k, v in _words["save_methods"].items()},
        **{f"load:{k}": v.replace("`", "") for k, v in _words["load_methods"].items()},
    }


def _plot_cpu(cpu: dict, out: Path, words: dict, suffix: str) -> list[Path]:
    """Schema 2: save_load.png (blocked ÷ torch.save and load ÷ raw read against size, with the
    goals) and async_save.png (throughput lost at one checkpoint a minute, with the goal)."""
    import matplotlib.pyplot as plt

    mach, ver = cpu["machine"], cpu["versions"]
    stamp = words["stamp"].format(date=cpu["date"], torch=ver["torch"], cpu=mach["cpu"],
                                  cores=mach["cores"], repeats=cpu["settings"]["repeats"])
    labels = words["methods"]
    results = cpu["results"]
    xs = [r["params"] / 1e6 for r in results]
    colors = dict(zip([*SAVES, *LOADS], plt.get_cmap("tab10").colors * 3))
    markers = "osv^Dxph*P"
    paths = []

    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.8), dpi=90)
    panels = ((axes[0], "save", [k for k in SAVES if k not in ("raw", "torch_save", "save_checkpoint",
                                                               "safetensors", "dcp")], "blocked",
               "torch_save", "save", GOALS["blocked_over_sync"], words["blocked_over_sync"]),
              (axes[1], "load", [k for k in LOADS if k != "raw"], "load", "raw", "load",
               GOALS["load_over_raw"], words["load_over_raw"]))
    for ax, op, keys, name, ref, ref_name, goal, ylabel in panels:
        for i, k in enumerate(keys):
            ys = [(_median(r["methods"].get(k), name) or float("nan")) / _median(r["methods"][ref], ref_name)
                  for r in results]
            if all(y != y for y in ys):
                continue
            ax.plot(xs, ys, label=labels[f"{op}:{k}"], color=colors[k], marker=markers[i % len(markers)],
                    linewidth=1.3, markersize=4)
        ax.axhline(goal, color="black", linestyle="--", linewidth=1, label=f"{words['goal']} {goal:g}")
        if op == "save":
            ax.set_yscale("log")
        ax.set_title(words[f"{op}_panel"], fontsize=10)
        ax.set_xlabel(words["params_millions"])
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="best")
    fig.suptitle(stamp, fontsize=7.5)
    fig.tight_layout()
    paths.append(out / f"save_load{suffix}.png")
    fig.savefig(paths[-1])
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=90)
    keys = list(TRAIN_METHODS)
    width = 0.8 / len(keys)
    for i, k in enumerate(keys):
        ys = [100 * ((r.get("train", {}).get("methods", {}).get(k) or {}).get("lost_share_per_minute")
                     or 0.0) for r in results]
        ax.bar([p + (i - (len(keys) - 1) / 2) * width for p in range(len(xs))], ys, width=width,
               color=colors[k], label=labels[f"save:{k}"])
    ax.axhline(100 * GOALS["lost_per_minute"], color="black", linestyle="--", linewidth=1,
               label=f"{words['goal']} {100 * GOALS['lost_per_minute']:g}%")
    ax.set_xticks(list(range(len(xs))), [f"{x:.0f}M" for x in xs])
    ax.set_xlabel(words["params"])
    ax.set_ylabel(words["lost_per_minute"])
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    fig.suptitle(stamp, fontsize=6.5)
    fig.tight_layout()
    paths.append(out / f"async_save{suffix}.png")
    fig.savefig(paths[-1])
    plt.close(fig)
    for p in paths:
        _shrink_png(p)
    return paths


def _shrink_png(path: Path) -> None:
    """A palette PNG: the plots have few colours, and the page loads faster."""
    try:
        from PIL import Image
    except ImportError:
        return
    img = Image.open(path).convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    img.save(path, optimize=True)


def render_all(out: Path, tables: Path = TABLES) -> list[Path]:
    written = []
    cpu_path, gpu_path = out / CPU_JSON, out / GPU_JSON
    gpu = json.loads(gpu_path.read_text()) if gpu_path.exists() else None
    tables.mkdir(parents=True, exist_ok=True)
    if cpu_path.exists():
        cpu = json.loads(cpu_path.read_text())
        for lang in LANGS:
            (tables / table_name("cpu", lang)).write_text(render_cpu(cpu, lang), encoding="utf-8")
            written.append(tables / table_name("cpu", lang))
        written += plot_cpu(cpu, out)
    written += write_gpu_tables(gpu, tables)
    return written


def write_gpu_tables(gpu: dict | None, tables: Path = TABLES) -> list[Path]:
    """gpu.md and gpu.ja.md."""
    tables.mkdir(parents=True, exist_ok=True)
    for lang in LANGS:
        (tables / table_name("gpu", lang)).write_text(render_gpu(gpu, lang), encoding="utf-8")
    return [tables / table_name("gpu", lang) for lang in LANGS]
