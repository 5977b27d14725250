"""The words the search index holds and the query searches for: the normaliser of
docs/assets/javascripts/cookbook/search.js, run under Node with the segmenter Material loads
for Japanese (lunr's TinySegmenter). The browser runs the same file: tests/site/test_search.py."""

from __future__ import annotations

import json
from pathlib import Path
import shutil
import subprocess

import pytest

import material

from cookbook_testing.pages import ROOT

SEARCH_JS = ROOT / "docs" / "assets" / "javascripts" / "cookbook" / "search.js"
TINYSEG = Path(material.__file__).parent / "templates" / "assets" / "javascripts" / "lunr" / "tinyseg.js"
# Reads {"texts": [...], "words": [...], "queries": [...]}; writes what search.js makes of them.
DRIVER = """
const search = require(process.argv[1]);
const lunr = {}; require(process.argv[2])(lunr);
const segmenter = new lunr.TinySegmenter();
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const parts = search.identifiers(input.texts);
const stop = new Set(["the", "a", "of", "to", "on", "in"]);  // some of lunr's English stop words
console.log(JSON.stringify({
  // as Material's tokenizer does: a word with Japanese in it is segmented first
  index: input.words.map(w => [w, (/[ぁ-んァ-ヴ一-龠]/.test(w) ? segmenter.segment(w) : [w])
    .flatMap(s => search.terms(s, parts))]),
  query: input.queries.map(q => [q, search.normaliseQuery(q, segmenter, w => stop.has(w))]),
}));
"""
PAGE_TEXT = ["Save the <code>GradScaler</code> with <code>OneCycleLR</code>, "
             "<code>ReduceLROnPlateau</code> and <code>_pickle.UnpicklingError</code>"]


IDENTIFIERS = ["GradScaler", "gradscaler", "OneCycleLR", "ReduceLROnPlateau", "UnpicklingError",
               "param_groups", "load_state_dict"]
QUERIES = ["gradscaler", "GradScaler", "optimizer.load_state_dict()",
           'Unexpected key(s) in state_dict: "_orig_mod."', "The size of tensor a must match",
           "cuda:0 to cuda:1", "損失が跳ね上がった", "オプティマイザの状態を読み込んだ", "学習を再開した",
           "途中で切れたファイル", "チェックポイント"]
# Each group: the forms a reader or a page writes, which must all become the same word.
INFLECTIONS = [
    ["跳ね上がる", "跳ね上がり", "跳ね上がった", "跳ね上がります"],
    ["保存する", "保存した", "保存し", "保存して", "保存します", "保存"],
    ["読み込む", "読み込み", "読み込んだ", "読み込んで", "読み込みます"],
    ["変わる", "変わった", "変わり"],
    ["止まる", "止まった", "止まり"],
    ["壊れる", "壊れた", "壊れ"],
    ["新しい", "新しく"],
    ["中断する", "中断された", "中断"],
]


@pytest.fixture(scope="module")
def normalised() -> tuple[dict, dict]:
    """(index terms by word, normalised query by query), from one run of Node."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on the PATH: the site build needs it too (KaTeX); install Node.js")
    forms = [f for group in INFLECTIONS for f in group]
    data = {"texts": PAGE_TEXT, "words": IDENTIFIERS + forms, "queries": QUERIES + forms}
    proc = subprocess.run([node, "-e", DRIVER, str(SEARCH_JS), str(TINYSEG)], capture_output=True,
                          text=True, encoding="utf-8", input=json.dumps(data))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    return dict(out["index"]), dict(out["query"])


def test_identifiers_are_indexed_whole_in_lower_case_and_by_their_parts(normalised):
    index, _ = normalised
    assert index["GradScaler"] == index["gradscaler"] == ["gradscaler", "grad", "scaler"]
    assert index["OneCycleLR"] == ["onecyclelr", "one", "cycle", "lr"]
    assert index["ReduceLROnPlateau"] == ["reducelronplateau", "reduce", "lr", "on", "plateau"]
    assert index["UnpicklingError"] == ["unpicklingerror", "unpickling", "error"]
    assert index["param_groups"] == ["param_groups", "param", "groups"]
    assert index["load_state_dict"] == ["load_state_dict", "load", "state", "dict"]


def test_a_query_keeps_an_identifier_whole_in_lower_case_and_drops_the_syntax_of_a_message(normalised):
    _, query = normalised
    assert query["gradscaler"] == query["GradScaler"] == "gradscaler"
    assert query["optimizer.load_state_dict()"] == "optimizer load_state_dict"
    assert query['Unexpected key(s) in state_dict: "_orig_mod."'] == "unexpected key state_dict _orig_mod"
    assert query["The size of tensor a must match"] == "size tensor must match"
    assert query["cuda:0 to cuda:1"] == "cuda cuda"


@pytest.mark.parametrize("forms", INFLECTIONS, ids=[f[0] for f in INFLECTIONS])
def test_japanese_inflections_become_one_word_in_the_index_and_in_the_query(normalised, forms):
    index, query = normalised
    words = {" ".join(index[f]) for f in forms}
    assert len(words) == 1, index  # the pages' forms, indexed
    assert {query[f] for f in forms} == words, query  # what readers type finds them


def test_japanese_particles_and_auxiliaries_alone_are_not_words_and_nouns_stay_whole(normalised):
    _, query = normalised
    assert query["損失が跳ね上がった"] == "損失 跳ね上が"
    assert query["オプティマイザの状態を読み込んだ"] == "オプティマイザ 状態 読み込"
    assert query["学習を再開した"] == "学習 再開"
    assert query["途中で切れたファイル"] == "途中 切れ ファイル"
    assert query["チェックポイント"] == "チェックポイント"
