// The site's search, in one file: the page part, the worker part and the normaliser that
// both the index and the query go through. hooks/sitebuild/search.py is the build side (the
// per-language index files, the separator, the worker's address in each page).
//
// - On a page (a <script> before Material's bundle): the reader going to the search box
//   tells the worker to load its language's index (nothing loads before), and a query that
//   arrives with no key release (pasted, dropped, committed by an input method) is searched.
// - As the search worker (Material's configuration names this file as its worker, with
//   "#lang=..&index=..&worker=.." after it): loads Material's own worker, holds its setup
//   until the index is wanted, then gives it the page language's index; every indexed word
//   goes through `terms`, every query through `normaliseQuery`, which uses `terms` too.
// - Under Node (tests/test_search_terms.py): exports the normaliser.
//
// Normalising a word (`terms`):
// - An identifier is indexed whole, in lower case, and by its parts: `GradScaler` ->
//   gradscaler, grad, scaler; `load_state_dict` -> load_state_dict, load, state, dict. The
//   parts of a CamelCase word come from its spelling in the indexed text (`identifiers`).
//   A query keeps it whole, in lower case: `gradscaler` and `GradScaler` find it alike.
// - A Japanese word (a segment of TinySegmenter, which Material uses for "ja") loses its
//   inflectional ending (`stemJapanese`), in the index and in the query: 跳ね上がる,
//   跳ね上がり, 跳ね上がっ -> 跳ね上が; 保存し -> 保存; 読み込む, 読み込み, 読み込ん -> 読み込.
//   A segment that is only an ending, an auxiliary or a particle (た, し, する, ます, ない,
//   を, の ...) is dropped.
(function (scope) {
  "use strict";

  // Material's worker protocol: `SearchMessageType` in Material's
  // src/templates/assets/javascripts/integrations/search/worker/message/index.ts
  const MESSAGE = Object.freeze({ SETUP: 0, READY: 1, QUERY: 2, RESULT: 3 });
  // Page -> worker: the reader went to the search box. Worker -> page: am I wanted yet?
  const CHANNEL = "cookbook-search";
  const SIGNAL = Object.freeze({ WANTED: "wanted", ASK: "ask" });
  const QUERY_INPUT = "[data-md-component=search-query]";
  const PIPELINE_LABEL = "cookbook-terms";

  const JAPANESE_RUN = /[\p{sc=Han}\p{sc=Hiragana}\p{sc=Katakana}ー々〆ヵヶ]+/u;
  const WORD = /[\p{sc=Han}\p{sc=Hiragana}\p{sc=Katakana}ー々〆ヵヶ]+|\w+/gu;
  const HAS_KANJI_OR_KATAKANA = /[\p{sc=Han}\p{sc=Katakana}々〆ヵヶ]/u;
  const ONLY_HIRAGANA = /^[\p{sc=Hiragana}ー]+$/u;
  // The ending of an inflected verb or adjective, after its stem: 上が|る 上が|り 上が|った
  // 読み込|む 読み込|み 読み込|んだ 保存|する 保存|し 新し|い 新し|く 跳ね|た 跳ね|ます.
  // A stem that ends in an e-row kana (跳ね, 壊れ, 使え) keeps it: it is the stem itself.
  const ENDING = new RegExp("(?:" + [
    "[っん][たてだで]?",                                  // 上がっ(た) 読み込ん(だ)
    "[いきぎしちにびみり](?:ま(?:す|した|せん)|[たて])?",  // 上がり 読み込み 書い(た) 保存し
    "[うくぐすつぬぶむる]",                                // 上がる 読み込む 新しく
    "さ(?:れ|せ)[るた]?", "する", "ま(?:す|した|せん)", "なかった", "ない", "[たて]",
  ].join("|") + ")$", "u");
  // Segments that are only an inflection, an auxiliary or a particle: no word of their own.
  const AUXILIARIES = new Set(["た", "だ", "て", "で", "る", "ます", "ました", "ません", "まし",
    "する", "し", "して", "した", "します", "され", "さ", "れ", "られ", "せ", "させ", "ない",
    "なかっ", "なく", "でき", "できる", "ん", "っ", "う", "よう",
    "は", "が", "の", "に", "を", "と", "も", "へ", "や", "か", "から", "まで", "より"]);
  const CAMEL_PART = /[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+/g;
  const CAMEL = /[a-z0-9][A-Z]|[A-Z]{2}[a-z]/;
  const MIN_PART = 2;
  const SINGLE_LETTER = /^[a-z0-9]$/;

  /** A Japanese segment without its inflectional ending; "" for an auxiliary alone. */
  function stemJapanese(segment) {
    if (ONLY_HIRAGANA.test(segment)) return AUXILIARIES.has(segment) ? "" : segment;
    const stem = segment.replace(ENDING, "");
    return stem && HAS_KANJI_OR_KATAKANA.test(stem) ? stem : segment;
  }

  /** Lower-cased CamelCase words of a text -> their parts: {gradscaler: [grad, scaler]}. */
  function identifiers(texts) {
    const found = new Map();
    for (const text of texts)
      for (const [word] of `${text}`.matchAll(/[A-Za-z][A-Za-z0-9]*/g))
        if (CAMEL.test(word) && !found.has(word.toLowerCase()))
          found.set(word.toLowerCase(), word.match(CAMEL_PART).map(p => p.toLowerCase()));
    return found;
  }

  /** The terms one word is indexed or searched by (see the top of this file). */
  function terms(word, parts = new Map()) {
    word = word.toLowerCase();
    if (JAPANESE_RUN.test(word)) {
      const stem = stemJapanese(word);
      return stem ? [stem] : [];
    }
    const pieces = word.split("_").flatMap(p => parts.get(p) || [p]);
    const all = [word, ...(pieces.length > 1 ? pieces : [])];
    return [...new Set(all.filter((t, i) => i === 0 || t.length >= MIN_PART))];
  }

  /** A query as the index holds its words: a Japanese run by its segments' stems, an
   *  identifier by itself in lower case (the index holds it whole and by its parts; Material
   *  searches each query word as a prefix, so parts here would also find every word that
   *  starts with them), stop words dropped as the index drops them, and single letters and
   *  digits dropped (`tensor a`, `cuda:1`: as a prefix one matches almost anything). The rest
   *  goes: quotes, colons, + and - of a pasted error message are not query syntax. */
  function normaliseQuery(query, segmenter, isStopWord = () => false) {
    const words = [];
    for (const [word] of query.matchAll(WORD))
      for (const w of segmenter && JAPANESE_RUN.test(word) ? segmenter.segment(word) : [word])
        words.push(...terms(w).slice(0, 1));
    return words.filter(w => !isStopWord(w) && !SINGLE_LETTER.test(w)).join(" ");
  }

  /* ------------------------------------------------------------------------------------ */

  function page() {
    const channel = new BroadcastChannel(CHANNEL);
    let wanted = false;
    const isQuery = target => target instanceof Element && target.matches(QUERY_INPUT);
    // Each language has its own index; it loads when the reader first goes to the search
    // box (a link with ?q= focuses it too), not with every page.
    document.addEventListener("focusin", event => {
      if (!isQuery(event.target)) return;
      wanted = true;
      channel.postMessage(SIGNAL.WANTED);
    });
    channel.addEventListener("message", event => {
      if (event.data === SIGNAL.ASK && wanted) channel.postMessage(SIGNAL.WANTED);
    });
    // Material searches on key releases. A query pasted with the mouse, dropped, or
    // committed by an input method sends none: search on every change of the text.
    for (const type of ["input", "compositionend"])
      document.addEventListener(type, event => {
        if (isQuery(event.target)) event.target.dispatchEvent(new KeyboardEvent("keyup"));
      });
  }

  function worker() {
    const options = new URLSearchParams(scope.location.hash.slice(1));
    const address = name => new URL(options.get(name), scope.location.href).href;
    const forwarded = new WeakSet();
    let setup = null;      // Material's setup, held until the index is wanted
    let wanted = false;
    let loading = false;
    let parts = new Map();
    let segmenter = null;
    let stopFilters = [];

    // Material's handler (loaded below) gets what this one passes on, nothing else.
    function forward(data) {
      const event = new MessageEvent("message", { data });
      forwarded.add(event);
      scope.dispatchEvent(event);
    }

    function load() {
      if (loading || !wanted || !setup) return;
      loading = true;
      loadIndex().catch(error => console.error(
        `Search is off on this page: ${error.message}. Rebuild the site (make build) and check ` +
        "that hooks/search_index.py ran."));
    }

    async function loadIndex() {
      scope.importScripts(address("worker"));   // Material's worker: lunr and its handler
      const lunr = scope.lunr;
      const response = await fetch(address("index"));
      if (!response.ok) throw new Error(`the index ${response.url} answered HTTP ${response.status}`);
      const index = await response.json();
      parts = identifiers(index.docs.map(doc => `${doc.title} ${doc.text}`));
      // lunr runs `lunr.stemmer` on every indexed word (the index config's pipeline names
      // "stemmer", so Material keeps it in): that is where the index is normalised.
      const normalise = token => terms(token.toString(), parts).map(t => token.clone(() => t));
      lunr.Pipeline.registerFunction(normalise, PIPELINE_LABEL);
      lunr.stemmer = normalise;
      forward({ type: MESSAGE.SETUP, data: { ...index, options: setup.data.options } });
      // Loaded by Material's setup for the index's languages (TinySegmenter for "ja").
      if (lunr.TinySegmenter) segmenter = new lunr.TinySegmenter();
      const filters = [lunr.stopWordFilter, ...index.config.lang.map(l => lunr[l] && lunr[l].stopWordFilter)];
      stopFilters = filters.filter(f => typeof f === "function");
    }

    // The stop words of the index's languages, which lunr leaves out of the index.
    const isStopWord = word => stopFilters.some(filter => filter(word) === undefined);

    scope.addEventListener("message", event => {
      if (forwarded.has(event)) return;
      event.stopImmediatePropagation();
      const message = event.data;
      if (message.type === MESSAGE.SETUP) {
        setup = message;   // carries only the configuration (search/search_index.json)
        load();
      } else if (message.type === MESSAGE.QUERY && typeof message.data === "string") {
        forward({ ...message, data: normaliseQuery(message.data, segmenter, isStopWord) });
      } else {
        forward(message);
      }
    });

    const channel = new BroadcastChannel(CHANNEL);
    channel.addEventListener("message", event => {
      if (event.data !== SIGNAL.WANTED) return;
      wanted = true;
      load();
    });
    channel.postMessage(SIGNAL.ASK);
  }

  const api = { MESSAGE, stemJapanese, identifiers, terms, normaliseQuery };
  if (typeof module === "object" && module.exports) module.exports = api;
  else if (typeof document !== "undefined") page();
  else if (typeof scope.importScripts === "function") worker();
})(typeof self !== "undefined" ? self : globalThis);
